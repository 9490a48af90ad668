"""Route a claimed batch's files: parse them, and send what is not a cable to the quarantine.

Pure: bytes in, records and quarantine entries out (no I/O, no ledger).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from cablestream.schemas.arrow import CABLE_SCHEMA, records_to_table
from cablestream.schemas.record import CableRecord, NoCable
from cablestream.tasks.batch.claim import ClaimedBatch
from cablestream.tasks.lake.quarantine import QuarantineEntry
from cablestream.tasks.ledger.protocol import FileOutcome
from cablestream.tasks.parse import parse_source


@dataclass(slots=True)
class ParsedBatch:
    batch_id: str
    table: pa.Table
    entries: list[QuarantineEntry]
    outcomes: dict[int, FileOutcome]
    source_copies: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes
    cables: int = 0
    duplicates: int = 0


def parse_batch(batch: ClaimedBatch, drop_subjects: bool = False) -> ParsedBatch:
    """Split and parse every claimed file; NoCable results and read failures become entries.

    `drop_subjects` is fault injection for validation tests: it blanks the
    subject of every record, as a broken parser would.
    """
    records: list[CableRecord] = []
    entries: list[QuarantineEntry] = []
    outcomes: dict[int, FileOutcome] = {}
    copies: dict[str, bytes] = {}
    duplicates = 0
    for item in batch.files:
        claim = item.claim
        if claim.duplicate_of is not None:
            outcomes[claim.file_id] = FileOutcome(
                "duplicate", f"same content as {claim.duplicate_of}"
            )
            duplicates += 1
            continue
        if item.data is None:
            entries.append(
                QuarantineEntry(claim.path, claim.sha256, item.failure or "unreadable", item.detail)
            )
            outcomes[claim.file_id] = FileOutcome("quarantined", item.failure)
            continue
        results = parse_source(item.data, claim.path)
        cables = [result for result in results if isinstance(result, CableRecord)]
        for result in results:
            if isinstance(result, NoCable):
                entries.append(
                    QuarantineEntry(
                        claim.path,
                        claim.sha256,
                        result.reason,
                        result.detail,
                        source_offset=result.source_offset,
                    )
                )
        if cables:
            records.extend(cables)
            outcomes[claim.file_id] = FileOutcome("committed")
        else:
            copies[claim.sha256] = item.data
            reason = next(
                (e.reason for e in reversed(entries) if e.source_path == claim.path), None
            )
            outcomes[claim.file_id] = FileOutcome("quarantined", reason)
    if drop_subjects:
        for record in records:
            record.subject = None
    table = records_to_table(records) if records else CABLE_SCHEMA.empty_table()
    return ParsedBatch(
        batch.batch_id, table, entries, outcomes, copies, cables=len(records), duplicates=duplicates
    )
