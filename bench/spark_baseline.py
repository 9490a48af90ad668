"""The peer baseline: the same inbox through Spark Structured Streaming (issue 15, item 6).

pyspark `local[2]` (both cores), the streaming file source (`binaryFile`, so gzip files
and undecoded bytes reach the parser as the ingest's do), `Trigger.AvailableNow` (every
file there, then stop), this project's parser (`parse_source`, applied per Arrow batch
with `mapInArrow`) and a Parquet sink. Spark does less than the ingest: no validation,
no ledger, no quarantine, and a few columns of each record rather than the lake's 30.

Optional: `make install-spark` (pyspark from requirements-spark.lock; needs a JDK 17,
`java` on the PATH). `bench/ingest_bench.py --release N --spark` runs it on the same files.
Alone: `.venv/bin/python bench/spark_baseline.py --files DIR --out DIR`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

HOST = "127.0.0.1"

# What the sink keeps of each record (record_id is the ingest's, so counts compare).
OUTPUT = pa.schema(
    [
        ("record_id", pa.string()),
        ("reference_id", pa.string()),
        ("created", pa.timestamp("us", tz="UTC")),
        ("classification", pa.string()),
        ("origin", pa.string()),
        ("station", pa.string()),
        ("subject", pa.string()),
        ("body", pa.string()),
        ("source_path", pa.string()),
    ]
)


# The binaryFile source's own columns (a streaming source is given its schema).
BINARY_FILE = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


def parse_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The UDF: (path, content) rows of the file source -> one row per parsed cable."""
    from cablestream.schemas.record import CableRecord
    from cablestream.tasks.parse import parse_source

    for batch in batches:
        columns: dict[str, list[Any]] = {name: [] for name in OUTPUT.names}
        paths = batch.column("path").to_pylist()
        for path, content in zip(paths, batch.column("content").to_pylist(), strict=True):
            for record in parse_source(content, path):
                if isinstance(record, CableRecord):
                    for name in OUTPUT.names:
                        columns[name].append(getattr(record, name))
        yield pa.RecordBatch.from_pydict(columns, schema=OUTPUT)


def _source_glob(files: Path) -> str:
    """The file source's path: the folder, or its subfolders (a generated corpus).

    Folders, never one glob entry per file: Spark lists many paths with a job of its own.
    """
    if any(child.is_dir() for child in files.iterdir()):
        return str(files / "*")
    return str(files)


def run(files: Path, out: Path, cores: int = 2) -> dict[str, Any]:
    """Ingest `files` with Spark; cables written, seconds (session start excluded)."""
    from pyspark.sql import SparkSession
    from pyspark.sql.pandas.types import from_arrow_schema

    shutil.rmtree(out, ignore_errors=True)
    os.environ.setdefault("SPARK_LOCAL_IP", HOST)  # 127.0.0.1 only, as every server here
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers with this venv (the parser, pyarrow)
    # ... and this folder: the UDF is pickled by reference to this module.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    started = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("cablestream-spark-baseline")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", HOST)
        .config("spark.driver.bindAddress", HOST)
        .config("spark.sql.shuffle.partitions", str(cores))
        .config("spark.driver.memory", "2g")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    session_seconds = time.perf_counter() - started
    try:
        started = time.perf_counter()
        source = spark.readStream.format("binaryFile").schema(BINARY_FILE).load(_source_glob(files))
        parsed = source.select("path", "content").mapInArrow(
            parse_batches, from_arrow_schema(OUTPUT)
        )
        query = (
            parsed.writeStream.format("parquet")
            .option("path", str(out / "data"))
            .option("checkpointLocation", str(out / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination()
        seconds = time.perf_counter() - started
    finally:
        spark.stop()
    written = ds.dataset(out / "data", format="parquet").to_table(columns=["record_id"])
    ids = {str(value) for value in written.column("record_id").to_pylist()}
    return {
        "cores": cores,
        "session_start_seconds": round(session_seconds, 2),
        "seconds": round(seconds, 2),
        "cables": written.num_rows,
        "distinct_record_ids": len(ids),
        "record_ids": ids,
        "cables_per_s": round(written.num_rows / seconds, 1),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    result = run(args.files, args.out, args.cores)
    result.pop("record_ids")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
