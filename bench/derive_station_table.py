"""Write the parser's station table from `../shared/stations/stations.tsv`.

Run: `.venv/bin/python bench/derive_station_table.py [--stations PATH]`

The parser must work without `../shared`, so the table is committed as a Python
module (`tasks/parse/fields/station_table.py`): station -> the release's Origin text.
Rerun this when stations.tsv changes; tests check the two agree.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATIONS = REPO_ROOT.parent / "shared" / "stations" / "stations.tsv"
TABLE_MODULE = REPO_ROOT / "tasks" / "parse" / "fields" / "station_table.py"


def read_stations(path: Path) -> list[tuple[str, str, int]]:
    """(station, release origin, cables) rows of stations.tsv, in file order."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return [(row["station"], row["origin"], int(row["cables"])) for row in rows]


def render_table(rows: list[tuple[str, str, int]]) -> str:
    lines = [
        '"""Stations of the release and their usual Origin text, generated: do not edit.',
        "",
        "Source: ../shared/stations/stations.tsv (the release's own metadata: the station part",
        "of its reference ids and its Origin cells), written by bench/derive_station_table.py.",
        '"""',
        "",
        "# station -> (release Origin text, cables the mirrors hold of it)",
        "STATIONS: dict[str, tuple[str, int]] = {",
    ]
    lines += [f"    {station!r}: ({origin!r}, {cables})," for station, origin, cables in rows]
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=Path, default=DEFAULT_STATIONS)
    args = parser.parse_args()
    TABLE_MODULE.write_text(render_table(read_stations(args.stations)), encoding="utf-8")
    print(f"wrote {TABLE_MODULE}")


if __name__ == "__main__":
    main()
