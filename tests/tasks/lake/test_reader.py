from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cablestream.tasks.lake.reader import existing_reference_ids


def _write(lake: Path, relative: str, rows: list[tuple[str, str]]) -> Path:
    path = lake / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    ids, hashes = zip(*rows, strict=True)
    pq.write_table(pa.table({"reference_id": list(ids), "source_sha256": list(hashes)}), path)
    return path


def _ids(*values: str) -> pa.Array:
    return pa.array(values, pa.string())


def test_the_lake_reference_ids_follow_files_added_and_removed_between_calls(
    tmp_path: Path,
) -> None:
    wanted = _ids("08A1", "08A2", "08A3", "08A4")
    first = _write(tmp_path, "year=2008/month=1/part-a-0.parquet", [("08A1", "s1")])
    _write(tmp_path, "year=2008/month=2/part-a-0.parquet", [("08A2", "s2")])
    assert existing_reference_ids(tmp_path, wanted) == {"08A1", "08A2"}

    # A file written since the last call is read; one gone (a compaction) no longer counts,
    # while the files read together with it still do.
    _write(tmp_path, "year=2008/month=3/part-b-0.parquet", [("08A3", "s3"), ("08A4", "s4")])
    first.unlink()
    assert existing_reference_ids(tmp_path, wanted) == {"08A2", "08A3", "08A4"}
    # The rows of a source the batch replaces are its own older version.
    assert existing_reference_ids(tmp_path, wanted, frozenset({"s3"})) == {"08A2", "08A4"}
