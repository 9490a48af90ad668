"""How many real cables each row rule drops or flags (issue 15: no real cable kept out).

Run: `.venv/bin/python bench/row_rules.py [FOLDER ...] [--batch-rows 1000]`

Every file under the folders (default: `../shared/corpus/files` and
`../shared/corpus-bulk/files`) is parsed with `parse_source`; the cables are validated
by the ingest's own `validate_batch` in batches of `--batch-rows` against an empty lake
(no quality tables written). Printed: cables, rows dropped per `drop` rule (a real cable
there is one kept out of the lake) and rows flagged per `warn` rule (`quality_flags`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.expectations import RULES
from cablestream.schemas.record import CableRecord
from cablestream.tasks.parse import parse_source
from cablestream.tasks.quality.validate import validate_batch

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
DEFAULT_FOLDERS = [SHARED / "corpus" / "files", SHARED / "corpus-bulk" / "files"]


def cables(folders: list[Path]) -> list[CableRecord]:
    found: list[CableRecord] = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                found += [
                    r for r in parse_source(path.read_bytes(), rel) if isinstance(r, CableRecord)
                ]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=DEFAULT_FOLDERS)
    parser.add_argument("--batch-rows", type=int, default=1000)
    args = parser.parse_args()

    records = cables(args.folders)
    dropped: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as lake:
        for start in range(0, len(records), args.batch_rows):
            batch = records_to_table(records[start : start + args.batch_rows])
            outcome = validate_batch(batch, f"rules-{start}", Path(lake))
            dropped.update(rejection.reason for rejection in outcome.rejections)
            for flags in outcome.accepted.column("quality_flags").to_pylist():
                flagged.update(flags)
    policy = {rule.name: rule.policy for rule in RULES}
    print(
        json.dumps(
            {
                "cables": len(records),
                "rows_dropped": sum(dropped.values()),
                "dropped": {name: dropped[name] for name in policy if policy[name] == "drop"},
                "flagged": dict(flagged.most_common()),
                "validate_seconds": round(time.perf_counter() - started, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
