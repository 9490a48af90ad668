"""The commit protocol on an S3 lake (moto's server): a batch that dies before its point of
no return leaves no object (its staged keys are deleted); one that dies after it is
finished by recovery. Another host's recovery: tests/flows/test_object_store.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds

from cablestream.schemas import lake as layout
from cablestream.tasks.batch import claim, commit, group, route
from cablestream.tasks.inbox.settle import Settler
from cablestream.tasks.inbox.store import ObjectInbox, inbox_files
from cablestream.tasks.lake import writer
from cablestream.tasks.lake.store import bind_store, open_filesystem, open_store
from cablestream.tasks.ledger.sqlite import SqliteLedger

from ...conftest import S3Server, batch_owner_dies

SEED = Path(__file__).resolve().parents[3] / ".." / "shared" / "seeds"


def _two_seeds_in_an_s3_inbox(
    s3_server: S3Server, control: Path
) -> tuple[str, ObjectInbox, SqliteLedger]:
    """A bucket with the two seed cables under `inbox/`, and `control` bound to the lake
    `s3://BUCKET/lake`: the bucket, the inbox and the control folder's ledger."""
    bucket = s3_server.bucket()
    for seed in sorted(SEED.glob("*.txt"))[:2]:
        s3_server.put(bucket, f"inbox/{seed.name}", seed.read_bytes())
    inbox = ObjectInbox(f"s3://{bucket}/inbox", *open_filesystem(f"s3://{bucket}/inbox"))
    bind_store(control, f"s3://{bucket}/lake")
    return bucket, inbox, SqliteLedger(layout.ledger_path(control))


def test_recovery_on_an_s3_lake_at_both_sides_of_the_point_of_no_return(
    s3_server: S3Server, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    bucket, inbox, ledger = _two_seeds_in_an_s3_inbox(s3_server, control)

    def claimed() -> claim.ClaimedBatch:
        ready = Settler(0).ready(claim.fresh_files(inbox, ledger))
        return claim.read_and_claim(inbox, ready, ledger, claim.new_batch_id(), 10**7)

    staging = "lake.cablestream/staging/"

    # Dies after staging (its files pushed to the store's staging prefix), before the
    # ledger recorded anything: no reader sees them; recovery deletes them.
    batch = claimed()
    parsed = route.parse_batch(batch)
    assert writer.stage_rows(parsed.table, control, batch.batch_id)
    writer.push_staging(control, batch.batch_id)
    assert s3_server.keys(bucket, staging) and s3_server.keys(bucket, "lake/") == []
    batch_owner_dies(ledger.path)
    assert commit.recover(control, ledger) == [batch.batch_id]
    assert s3_server.keys(bucket, "lake") == []  # neither staged nor published keys
    assert ledger.counts() == {}  # the files are taken again

    # Dies past the point of no return, one object copied: recovery copies the rest, commits.
    batch = claimed()
    assert len(batch.files) == len(list(inbox_files(inbox))) == 2
    parsed = route.parse_batch(batch)
    staged = writer.stage_rows(parsed.table, control, batch.batch_id)
    writer.push_staging(control, batch.batch_id)
    ledger.prepare_commit(batch.batch_id, [item.relative for item in staged], parsed.outcomes)
    open_store(f"s3://{bucket}/lake").publish_staged(batch.batch_id, staged[0].relative)
    batch_owner_dies(ledger.path)
    assert commit.recover(control, ledger) == [batch.batch_id]
    assert ledger.batch_state(batch.batch_id) == "committed"
    assert s3_server.keys(bucket, "lake") == sorted(f"lake/{item.relative}" for item in staged)
    assert commit.recover(control, ledger) == []


def test_a_group_staged_on_another_machine_is_committed_from_the_store(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """A group task on a worker of another machine (its own folder for the control data)
    stages onto the store; the flow's host commits it from there."""
    flow_host, worker_host = tmp_path / "flow-host", tmp_path / "worker-host"
    bucket, inbox, ledger = _two_seeds_in_an_s3_inbox(s3_server, flow_host)
    inbox_url, lake_url = inbox.url, f"s3://{bucket}/lake"
    ready = Settler(0).ready(claim.fresh_files(inbox, ledger))
    batch = claim.read_and_claim(
        inbox, ready, ledger, claim.new_batch_id(), 10**7, keep_bytes=False
    )
    job = group.GroupJob(inbox_url, str(worker_host), batch, 10**7, lake_url=lake_url)
    staged = group.process(job)  # on the "worker": its folder is bound to the lake there
    assert not layout.staging_dir(worker_host, batch.batch_id).exists()
    assert s3_server.keys(bucket, f"lake.cablestream/staging/{batch.batch_id}/")
    summary = commit.commit_staged(flow_host, ledger, staged)
    assert summary.rows_written == staged.rows_written > 0
    lake = ds.dataset(lake_url, format="parquet", partitioning="hive")
    assert lake.count_rows() == staged.rows_written
    assert s3_server.keys(bucket, "lake.cablestream") == []


def test_recovery_sweeps_what_was_staged_after_its_batch_was_given_up(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """A group task on another machine goes on staging after the flow's process died and
    its batch was undone: the next recovery deletes those keys (settled batches only)."""
    control = tmp_path / "control"
    bucket, inbox, ledger = _two_seeds_in_an_s3_inbox(s3_server, control)
    files = Settler(0).ready(claim.fresh_files(inbox, ledger))
    given_up = claim.read_and_claim(inbox, files[:1], ledger, claim.new_batch_id(), 10**7)
    working = claim.read_and_claim(inbox, files[1:], ledger, claim.new_batch_id(), 10**7)
    assert ledger.abort(given_up.batch_id, "recovered")
    for batch in (given_up, working):  # the late worker, and a batch still worked on
        writer.stage_rows(route.parse_batch(batch).table, control, batch.batch_id)
        writer.push_staging(control, batch.batch_id)
    assert commit.recover(control, ledger) == []
    staged = s3_server.keys(bucket, "lake.cablestream/staging/")
    assert staged and {key.split("/")[2] for key in staged} == {working.batch_id}
