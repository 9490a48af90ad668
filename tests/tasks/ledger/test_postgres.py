"""What only a shared ledger must do: several processes and hosts claiming at once.

The rules every ledger keeps run on PostgreSQL too, in test_sql.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter

from cablestream.tasks.ledger.postgres import PostgresLedger, safe_url
from cablestream.tasks.ledger.protocol import Candidate, FileOutcome

CLAIMERS = 4
FILES = 300
TWINS = 30  # files whose content is also in another file, under another name


def _candidates() -> list[Candidate]:
    files = [Candidate(f"f{n:03}.txt", f"h{n:03}", 10, 1) for n in range(FILES)]
    twins = [Candidate(f"copy-of-f{n:03}.txt", f"h{n:03}", 10, 1) for n in range(TWINS)]
    return files + twins


def _claim_until_none_left(url: str, worker: int, start_at: float) -> list[tuple[str, str, bool]]:
    """One ingesting process: claim random micro-batches of the whole inbox until none is left.

    Returns (path, sha256, is a duplicate) of every file it claimed.
    """
    ledger = PostgresLedger(url)
    offered = _candidates()
    rng = random.Random(worker)
    taken: list[tuple[str, str, bool]] = []
    time.sleep(max(0.0, start_at - time.time()))  # all processes start together
    idle = 0
    for number in range(10_000):
        known = {path for path, _, _ in ledger.fingerprints()}
        left = [item for item in offered if item.path not in known]
        if not left:
            idle += 1
            if idle > 3:  # the others may still hold files they will release
                break
            time.sleep(0.05)
            continue
        batch_id = f"w{worker}-{number}"
        claimed = ledger.claim(batch_id, rng.sample(left, min(10, len(left))))
        taken += [(c.path, c.sha256, c.duplicate_of is not None) for c in claimed]
        if claimed:
            ledger.prepare_commit(
                batch_id, [], {c.file_id: FileOutcome("committed") for c in claimed}
            )
            ledger.commit(batch_id)
    return taken


def test_concurrent_claimers_take_every_file_once_and_every_content_once(
    postgres_url: str,
) -> None:
    PostgresLedger(postgres_url)  # the tables exist before the race (creating them is locked too)
    start_at = time.time() + 2
    # Real processes, each running this file's `_claim_until_none_left`.
    run = (
        "import json, runpy, sys; claim = runpy.run_path(sys.argv[1])['_claim_until_none_left'];"
        " print(json.dumps(claim(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))"
    )
    claimers = [
        subprocess.Popen(
            [sys.executable, "-c", run, __file__, postgres_url, str(n), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(CLAIMERS)
    ]
    outputs = [claimer.communicate(timeout=120)[0] for claimer in claimers]
    assert [claimer.returncode for claimer in claimers] == [0] * CLAIMERS
    results: list[list[tuple[str, str, bool]]] = [
        [tuple(entry) for entry in json.loads(output)] for output in outputs
    ]
    claimed = [entry for result in results for entry in result]
    per_file = Counter((path, sha) for path, sha, _ in claimed)
    assert len(per_file) == FILES + TWINS and set(per_file.values()) == {1}
    # Each content is ingested by exactly one file; its other name is recorded a duplicate.
    ingested = Counter(sha for _, sha, duplicate in claimed if not duplicate)
    assert len(ingested) == FILES and set(ingested.values()) == {1}
    assert sum(1 for result in results if result) > 1, "the claimers did not overlap"
    assert PostgresLedger(postgres_url).counts() == {"committed": FILES + TWINS}


def test_another_hosts_batch_is_stale_only_when_its_lease_ran_out(postgres_url: str) -> None:
    ledger = PostgresLedger(postgres_url)
    ledger.claim("b1", [Candidate("x", "h", 1, 1)])
    with ledger._transaction() as db:  # as if a process on another host had claimed it
        db.execute(
            "UPDATE batches SET owner = 'elsewhere:1', lease_until = ? WHERE batch_id = 'b1'",
            (time.time() + 60,),
        )
    assert ledger.stale_batches() == []  # its pid cannot be checked from here: trust the lease
    with ledger._transaction() as db:  # the host died: its lease runs out
        db.execute("UPDATE batches SET lease_until = 0 WHERE batch_id = 'b1'")
    (stale,) = ledger.stale_batches()
    assert stale.batch_id == "b1" and ledger.abort("b1", "recovered")
    assert [c.path for c in ledger.claim("b2", [Candidate("x", "h", 1, 1)])] == ["x"]


def test_messages_name_the_database_without_its_password(postgres_url: str) -> None:
    ledger = PostgresLedger(postgres_url)
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in repr(ledger)
    assert safe_url(postgres_url).startswith("postgresql://cablestream@127.0.0.1:")
