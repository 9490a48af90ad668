"""The cable record: one row per cable, field names fixed by DESIGN.md section 4.

Plain dataclasses, so the parser and the `parse` CLI never import pyarrow;
the Arrow side lives in `schemas.arrow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

PARSER_VERSION = "0.4.1"


@dataclass(frozen=True, slots=True)
class ReleaseMetadata:
    """What the release itself says about a cable, next to its text."""

    reference_id: str | None = None
    created: datetime | None = None
    classification: str | None = None
    origin: str | None = None
    references: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recipient:
    """One TO/INFO routing line: `RUEHC/SECSTATE WASHDC IMMEDIATE 2481`."""

    route: str | None
    name: str
    precedence: str | None
    mcn: str | None


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of the REF line: `A. STATE 55259` -> bullet A, kind cable, id 08STATE55259."""

    bullet: str | None
    kind: str
    id: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A numbered paragraph `1. (S) text`; number is the repaired one."""

    number: int | None
    classification: str | None
    text: str


@dataclass(slots=True)
class CableRecord:
    """Everything the parser derives from one cable's text, plus provenance set by the reader."""

    reference_id: str | None = None
    created: datetime | None = None
    precedence: str | None = None
    transmission_id: str | None = None
    origin: str | None = None
    # The sending post as reference ids spell it (`ASTANA`, `THEHAGUE`, `STATE`): the join key.
    station: str | None = None
    recipients: list[Recipient] = field(default_factory=list)
    info_recipients: list[Recipient] = field(default_factory=list)
    classification: str | None = None
    caveats: list[str] = field(default_factory=list)
    nondisclosure_deadline: date | None = None
    tags: list[str] = field(default_factory=list)
    subject: str | None = None
    references: list[Reference] = field(default_factory=list)
    classified_by: str | None = None
    classification_reasons: list[str] = field(default_factory=list)
    summary: str | None = None
    paragraphs: list[Paragraph] = field(default_factory=list)
    signed_by: list[str] = field(default_factory=list)
    is_partial: bool = False
    body: str = ""
    rendering: str = "telegram"
    parse_warnings: list[str] = field(default_factory=list)
    rescued: list[str] = field(default_factory=list)
    parser_version: str = PARSER_VERSION
    # Provenance: filled by whoever read the bytes, not by the field parsers.
    record_id: str = ""
    source_path: str = ""
    source_sha256: str = ""
    source_offset: int = 0
    # Set by the ingest flow when the row is written.
    batch_id: str | None = None
    ingested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoCable:
    """A piece of input in which no cable could be recognised (a typed result, not an error)."""

    reason: str
    detail: str
    source_path: str = ""
    source_sha256: str = ""
    source_offset: int = 0


ParseResult = CableRecord | NoCable
