"""The ingest ledger: which source file (path + content hash) went into which batch.

`Ledger` is the interface the flow uses; `SqliteLedger` is the embedded
default in the control folder's `state/ledger.sqlite` (WAL, `schemas/lake.py`). A server database can replace
it by implementing the same Protocol.

A batch moves `claimed` -> `publishing` -> `committed` (roll-forward commit):

1. `claim` (or `begin` for a compaction): the batch is this process's, under a lease.
2. `prepare_commit`: in ONE transaction, check that the batch is still `claimed` by
   this owner (the fence: a batch whose lease was taken over is `aborted` and
   raises `BatchLost`), record its output files, the files it replaces and every
   file's outcome, and set it `publishing`. This is the point of no return.
3. rename the staged outputs into place (readers see them from here on);
4. `commit`: `publishing` -> `committed` (idempotent).

Nothing is visible before 2, so a `claimed` batch is undone by forgetting its
claims and its staging folder; a `publishing` batch is finished, never undone
(renaming the staged files that are left and deleting what it replaces are both
idempotent), so a reader never sees a row that recovery later removes. A batch is
*stale* when its process is gone, its lease ran out, or it belongs to this process
but no code of it is running it any more (`running`). A live process renews the
leases of the batches it works on (a heartbeat, `sql.SqlLedger.renew_leases`), so
a batch that runs longer than its lease is not taken from a live host.

States of a file row: `claimed` (a batch is working on it), then from step 2
`committed` (its cables are in the lake), `duplicate` (same content as a
committed file under another name, not ingested again), `quarantined` (rejected
whole) or `held` (validation could not run on it: kept out, not quarantined); a
committed file becomes `superseded` when a newer version of it (same path, other
content) replaced its rows (`tasks/batch/replace.py`): the same content under that
path again is a new version once more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class BatchLost(RuntimeError):
    """The batch is no longer this process's: its lease was taken over and it was undone."""


class LedgerUnavailable(RuntimeError):
    """The ledger's database cannot be reached; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ready file with its content hash, offered for claiming."""

    path: str
    sha256: str
    size: int
    mtime_ns: int
    unreadable: bool = False  # `sha256` is a stand-in: read it again after READ_RETRY_SECONDS


@dataclass(frozen=True, slots=True)
class ClaimedFile:
    file_id: int
    path: str
    sha256: str
    size: int
    mtime_ns: int
    duplicate_of: str | None = None  # set: same content is (being) ingested under that path


@dataclass(frozen=True, slots=True)
class StaleBatch:
    batch_id: str
    state: str  # claimed (undo it) | publishing (finish it)
    outputs: list[str]
    files: int
    # Files a compaction's outputs replace (deleted when it is finished).
    replaced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OlderVersion:
    """A committed file under the same path as a file of the batch, with other content."""

    file_id: int
    path: str
    sha256: str
    newer_file_id: int  # the batch's file (the newer version)
    shared: bool  # the same content is also held under another path (committed or duplicate)


@dataclass(frozen=True, slots=True)
class FileOutcome:
    state: str  # committed | duplicate | quarantined | held
    reason: str | None = None


class Ledger(Protocol):
    def fingerprints(self) -> set[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file the ledger holds: those need no hashing."""
        ...

    def claim(self, batch_id: str, candidates: list[Candidate]) -> list[ClaimedFile]:
        """Claim the candidates not yet known, in one transaction; returns what was claimed."""
        ...

    def begin(self, batch_id: str, note: str = "") -> None:
        """Open a batch that claims no inbox files (a compaction of the lake)."""
        ...

    def prepare_commit(
        self,
        batch_id: str,
        outputs: list[str],
        outcomes: dict[int, FileOutcome],
        note: str = "",
        replaced: list[str] | None = None,
        superseded: list[int] | None = None,
    ) -> None:
        """Fence, then record outputs, replaced files and outcomes: the point of no return.

        `superseded` are committed files (of other batches) whose rows this batch's
        outputs replace. Raises BatchLost when the batch is no longer claimed by this process.
        """
        ...

    def older_versions(self, batch_id: str) -> list[OlderVersion]:
        """Committed files under the paths of the batch's claimed files, with other content."""
        ...

    def source_paths(self, sha256: str) -> list[str]:
        """Every path the ledger saw with this content (where to read it again)."""
        ...

    def commit(self, batch_id: str) -> None:
        """Settle a `publishing` batch once its outputs are in place (idempotent)."""
        ...

    def record_failure(self, batch_id: str, reason: str) -> int:
        """Count one failed attempt for every file of the batch; returns the highest count."""
        ...

    def release(self, batch_id: str, note: str = "") -> None:
        """Give the batch's files back (they will be claimed again) and mark it failed."""
        ...

    def abort(self, batch_id: str, note: str = "") -> bool:
        """Forget a `claimed` batch's claims; False when it is not claimed (any more)."""
        ...

    def batch_state(self, batch_id: str) -> str | None:
        """The batch's state, None when the ledger has no such batch."""
        ...

    def stale_batches(self) -> list[StaleBatch]:
        """Unsettled batches nobody works on: owner gone, lease run out, or left by this process."""
        ...

    def publishing_batch(self, batch_id: str) -> StaleBatch | None:
        """The outputs and replaced files of a `publishing` batch (to finish it)."""
        ...

    def live_outputs(self) -> set[str]:
        """Outputs of committed batches that no committed batch (a compaction, a
        replacement) replaced: the lake."""
        ...
