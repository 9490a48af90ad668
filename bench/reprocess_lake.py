"""Reprocess a whole lake written by an older parser: counts, and its cost against ingest.

Run: `.venv/bin/python bench/reprocess_lake.py [--files 567] [--archive-share 0.5]`

In one run: the corpus is ingested (part of it archived on the way), every data file
is rewritten as schema version 1 with parser 0.1.0 stamped on its rows (the lake an
earlier release left), one source is removed from the archive, then `reprocess_flow`
runs. It prints the rows before and after, how many rows carry the current parser
version and a `station`, the sources listed as unavailable, and the flow time of the
reprocess against the flow time of the ingest of the same files (a ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "files"


def _downgrade(data_file: Path) -> None:
    """As schema version 1 wrote it: no `station`, no version key, parser 0.1.0."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cablestream.schemas import versions

    old = versions.as_version(pq.read_table(data_file), versions.FIRST_VERSION)
    index = old.schema.get_field_index("parser_version")
    old = old.set_column(index, "parser_version", pa.array(["0.1.0"] * old.num_rows))
    scratch = data_file.with_name(data_file.name + ".old")
    pq.write_table(old, scratch, compression="zstd")
    os.replace(scratch, data_file)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=567)
    parser.add_argument("--archive-share", type=float, default=0.5)
    args = parser.parse_args()

    import pyarrow.dataset as ds

    from cablestream.flows.ingest import ingest_flow
    from cablestream.flows.reprocess import reprocess_flow
    from cablestream.schemas import versions
    from cablestream.schemas.record import PARSER_VERSION
    from cablestream.tasks.batch.audit import audit_lake
    from cablestream.tasks.lake.partition import data_files

    sources = sorted(CORPUS.iterdir())[: args.files]
    archived = int(len(sources) * args.archive_share)
    with tempfile.TemporaryDirectory() as tmp:
        inbox, archive, lake = Path(tmp) / "inbox", Path(tmp) / "archive", Path(tmp) / "lake"
        inbox.mkdir()
        for source in sources[:archived]:
            shutil.copy(source, inbox / source.name)
        first = ingest_flow(
            inbox=str(inbox), lake=str(lake), settle_seconds=0, archive=str(archive)
        )
        for source in sources[archived:]:
            shutil.copy(source, inbox / source.name)
        second = ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0)
        ingest_seconds = first["seconds"] + second["seconds"]
        for data_file in data_files(lake):
            _downgrade(data_file)
        gone = next(path for path in sorted(archive.iterdir()) if path.is_file())
        gone.unlink()

        def rows() -> list[dict[str, object]]:
            dataset = ds.dataset(lake, schema=versions.read_schema(), partitioning="hive")
            columns = ["record_id", "parser_version", "station"]
            return dataset.to_table(columns=columns).to_pylist()

        before = rows()
        result = reprocess_flow(lake=str(lake), inbox=str(inbox), archive=str(archive))
        after = rows()
        figures = {
            "source_files": len(sources),
            "rows_before": len(before),
            "rows_after": len(after),
            "distinct_ids_after": len({row["record_id"] for row in after}),
            "same_ids": {r["record_id"] for r in before} == {r["record_id"] for r in after},
            "rows_at_current_parser": sum(r["parser_version"] == PARSER_VERSION for r in after),
            "rows_with_station": sum(r["station"] is not None for r in after),
            "rows_replaced": result["rows_replaced"],
            "unavailable": result["unavailable"],
            "batches": result["batches"],
            "audit_problems": audit_lake(lake),
            "ingest_flow_seconds": round(ingest_seconds, 2),
            "reprocess_flow_seconds": round(result["seconds"], 2),
            "reprocess_vs_ingest": round(result["seconds"] / ingest_seconds, 2),
        }
    print(json.dumps(figures, indent=2))
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "reprocess_lake.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
