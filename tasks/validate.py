"""Validation of one micro-batch (contract only; the Great Expectations suite is being written).

The ingest flow calls `validate_batch` once per batch and `record_quality`
after the batch is settled. This placeholder accepts every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa


@dataclass(slots=True)
class RowRejection:
    """A row the `drop` policy sends to the quarantine, with the expectation as reason."""

    record_id: str
    reason: str
    detail: str


@dataclass(slots=True)
class ValidationOutcome:
    accepted: pa.Table
    rejections: list[RowRejection] = field(default_factory=list)
    # Names of `fail`-policy expectations that did not pass: non-empty keeps the batch out.
    failed_expectations: list[str] = field(default_factory=list)
    # One dict per expectation for lake/_quality/validations.
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.failed_expectations)


def validate_batch(table: pa.Table, batch_id: str, lake_root: Path) -> ValidationOutcome:
    return ValidationOutcome(accepted=table)


def record_quality(outcome: ValidationOutcome, batch_id: str, lake_root: Path) -> None:
    return None
