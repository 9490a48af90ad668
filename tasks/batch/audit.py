"""Check a lake against its ledger: the exactly-once promise as code.

Used by the fault harness (tests/flows/test_faults.py, bench/faults.py) after
every fault, and usable by an operator on a quiet lake (no run in progress).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from cablestream.schemas import lake as layout
from cablestream.tasks.lake.partition import data_files
from cablestream.tasks.lake.quarantine import read_reasons
from cablestream.tasks.lake.reader import lake_record_ids
from cablestream.tasks.lake.snapshot import current_snapshot, snapshot_files
from cablestream.tasks.ledger.sqlite import open_ledger


def audit_lake(
    lake: Path, expected_ids: set[str] | None = None, ledger_url: str | None = None
) -> list[str]:
    """Every way the lake breaks the promise, one line each (empty: it holds).

    - every cable exactly once: no record_id twice among the rows, none both in the
      rows and in the quarantine, and (given `expected_ids`) none missing or extra;
    - no stray files: nothing in staging, nothing in the lake folder but data files;
    - no duplicate quarantine rows;
    - the ledger agrees: no batch left unsettled, every data file is an output of a
      committed batch (and not replaced by a later compaction), and every such
      output exists (in the ledger at `ledger_url`, else the lake's own);
    - the current snapshot holds exactly the committed data files.
    """
    problems: list[str] = []
    rows = lake_record_ids(lake)
    counted = Counter(rows)
    twice = sum(count - 1 for count in counted.values() if count > 1)
    if twice:
        problems.append(f"{twice} rows are in the lake more than once")
    reasons = read_reasons(lake).to_pylist()
    quarantined = {str(r["record_id"]) for r in reasons if r["record_id"] is not None}
    both = quarantined & set(counted)
    if both:
        problems.append(f"{len(both)} cables are both in the lake and in the quarantine")
    if expected_ids is not None:
        missing = expected_ids - set(counted) - quarantined
        extra = (set(counted) | quarantined) - expected_ids
        if missing:
            problems.append(f"{len(missing)} cables are missing (neither written nor quarantined)")
        if extra:
            problems.append(f"{len(extra)} rows are not cables of the inbox")
    keys = Counter(
        (r["source_path"], r["source_sha256"], r["reason"], r["source_offset"], r["record_id"])
        for r in reasons
    )
    repeated = sum(count - 1 for count in keys.values() if count > 1)
    if repeated:
        problems.append(f"{repeated} quarantine rows are repeated")

    data = {path.relative_to(lake).as_posix() for path in data_files(lake)}
    strays = [
        path.relative_to(lake).as_posix()
        for path in lake.rglob("*")
        if path.is_file() and path.relative_to(lake).as_posix() not in data
    ]
    if strays:
        problems.append(f"stray files in the lake folder: {sorted(strays)[:5]}")
    staging = layout.control_root(lake) / layout.STAGING_DIR
    if staging.is_dir() and any(staging.iterdir()):
        problems.append(f"staging is not empty: {sorted(p.name for p in staging.iterdir())[:5]}")

    if ledger_url is None and not layout.ledger_path(lake).exists():
        if data:
            problems.append("data files but no ledger")
        return problems
    ledger = open_ledger(lake, ledger_url)
    unsettled = ledger.unsettled_batches()
    if unsettled:
        problems.append(f"batches left unsettled: {unsettled}")
    live = {path for path in ledger.live_outputs() if not path.startswith(layout.QUARANTINE_DIR)}
    unknown = data - live
    if unknown:
        problems.append(
            f"{len(unknown)} data files no committed batch wrote: {sorted(unknown)[:3]}"
        )
    lost = live - data
    if lost:
        problems.append(f"{len(lost)} committed data files are missing: {sorted(lost)[:3]}")
    snapshot = current_snapshot(lake)
    if (snapshot_files(snapshot) if snapshot is not None else set()) != live:
        problems.append(f"the current snapshot ({snapshot}) is not the committed data files")
    return problems
