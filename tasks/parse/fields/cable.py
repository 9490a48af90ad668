"""Assemble one record from the field parsers: normalised text in, CableRecord out.

The cable is cut into regions once: the routing header (before the
classification line), the preamble (caveats, E.O., TAGS, SUBJECT, REF,
Classified By) and the numbered text. Each field parser reads its region.
"""

from __future__ import annotations

from dataclasses import dataclass

from cablestream.schemas.record import CableRecord, NoCable, ParseResult, ReleaseMetadata
from cablestream.tasks.parse import guard
from cablestream.tasks.parse.fields import (
    body,
    classification,
    created,
    declassification,
    reference_id,
    release_metadata,
    routing,
    station,
)
from cablestream.tasks.parse.fields.classified_by import parse_classified_by
from cablestream.tasks.parse.fields.references import parse_references
from cablestream.tasks.parse.fields.stations import canonical_station, station_from_post
from cablestream.tasks.parse.fields.topics import parse_subject, parse_tags
from cablestream.tasks.parse.normalize import normalize

# Where the preamble starts in a headerless extract.
_PREAMBLE_FIELD = guard.compile(r"(?im)^[ \t]*(?:E\.? ?O\.?[ \t]*\d|TAGS?\b|SUBJ(?:ECT)?\b)")


@dataclass(slots=True)
class Regions:
    header: str
    preamble: str
    text: str
    serial: classification.SerialLine
    # The numbered paragraph openings of `text`, found in one scan for every field.
    openings: list[body.Opening]


def cut_regions(text: str) -> Regions:
    """Header / preamble / numbered text, split at the classification line and paragraph 1."""
    serial = classification.find_serial_line(text)
    if serial.end:
        header, rest = text[: serial.start], text[serial.end :]
    else:
        field = _PREAMBLE_FIELD.search(text)
        cut = field.start() if field else len(text)
        header, rest = text[:cut], text[cut:]
    openings = body.numbered_openings(rest)
    paragraph = body.first_paragraph_start(rest, openings)
    preamble = rest if paragraph is None else rest[:paragraph]
    return Regions(header, preamble, rest, serial, openings)


def parse_cable(raw: str, rendering: str, release: ReleaseMetadata | None = None) -> ParseResult:
    """Parse one cable's raw text (any rendering) into a record, or say it holds no cable."""
    normalized = normalize(raw, rendering)
    text = normalized.text
    regions = cut_regions(text)
    release = release_metadata.merged(
        release or ReleaseMetadata(),
        release_metadata.find_release_metadata(f"{regions.header}\n{regions.preamble}"),
    )
    warnings: list[str] = []
    record = CableRecord(
        body=text, rendering=normalized.rendering, is_partial=normalized.is_partial
    )

    record.transmission_id = routing.parse_transmission_id(regions.header)
    fm_origin = routing.parse_origin(regions.header) or routing.parse_unwrapped_origin(
        f"{regions.header}\n{regions.preamble}"
    )
    routing_lines = routing.parse_routing_lines(regions.header)
    record.recipients, record.info_recipients = routing_lines.to, routing_lines.info
    record.rescued = routing_lines.rescued

    record.nondisclosure_deadline, decl_marker = declassification.parse_declassification(
        regions.preamble
    )
    record.tags = parse_tags(regions.preamble)
    record.subject = parse_subject(regions.preamble)
    record.classified_by, record.classification_reasons = parse_classified_by(
        regions.text[: _second_paragraph_end(regions)]
    )
    text_body, record.signed_by = body.split_signature(regions.text)
    offset = len(regions.preamble)
    record.paragraphs, repaired = body.parse_paragraphs(
        text_body,
        [
            opening
            for opening in regions.openings
            if opening.start >= offset and opening.end <= len(text_body)
        ],
        offset,
    )
    if repaired:
        warnings.append("paragraph_number_repaired")
    record.summary = body.parse_summary(regions.text, regions.openings)

    slot_lines = [regions.serial.trailer, *_caveat_slot(regions.preamble).split("\n")]
    caveats = [
        *regions.serial.caveats,
        *classification.parse_caveat_lines(slot_lines[1:]),
        *classification.parse_caveat_words(slot_lines),
    ]
    if decl_marker:
        caveats.append(decl_marker)
    decided = classification.decide_classification(
        regions.serial, regions.header, release.classification, classification.dedupe(caveats)
    )
    record.classification, record.caveats = decided.value, decided.caveats
    warnings += decided.warnings

    when = created.decide_created(
        regions.header,
        regions.preamble,
        release.created,
        record.nondisclosure_deadline,
        regions.text,
    )
    record.created, record.precedence = when.value, when.precedence
    warnings += when.warnings
    if record.precedence is None and record.recipients:
        record.precedence = record.recipients[0].precedence
    if record.recipients and (record.recipients[0].precedence or "").startswith("NIACT"):
        record.precedence = record.recipients[0].precedence

    serial_station = canonical_station(regions.serial.station)
    de_serial = routing.parse_de_serial(regions.header)
    if reference_id.names_another_cable(regions.serial.serial, de_serial):
        # The routing header's post, with its number: the serial line is another cable's.
        serial_station = station_from_post(fm_origin) or serial_station
    identity = reference_id.decide_reference_id(
        serial_station or station_from_post(fm_origin),
        regions.serial.serial,
        de_serial,
        when.year,
        release.reference_id,
    )
    record.reference_id = identity.value
    warnings += identity.warnings
    record.origin = station.decide_origin(fm_origin, release.origin, serial_station)
    record.station = station.decide_station(
        record.reference_id, serial_station, fm_origin, release.origin
    )
    record.references = parse_references(regions.preamble, when.year)
    if record.subject is None:
        warnings.append("subject_missing")

    if not _looks_like_cable(record, regions):
        return NoCable("no_cable", "no classification line, header or cable fields found")
    record.parse_warnings = warnings
    return record


def _caveat_slot(preamble: str) -> str:
    """Where handling caveats stand: after the serial line, before the E.O./TAGS/SUBJECT lines.

    A `SENSITIVE BUT UNCLASSIFIED` note further down is prose, and the release does not
    count it as a marking either.
    """
    field = _PREAMBLE_FIELD.search(preamble)
    return preamble[: field.start()] if field else preamble


def _second_paragraph_end(regions: Regions) -> int:
    """Classified By sits in the preamble or, in some cables, inside paragraph 1."""
    openings = regions.openings
    return openings[1].start if len(openings) > 1 else len(regions.text)


def _looks_like_cable(record: CableRecord, regions: Regions) -> bool:
    return bool(
        regions.serial.end
        or record.origin
        or record.subject
        or record.tags
        or record.nondisclosure_deadline
        or record.classified_by
        or (record.created and record.paragraphs)
    )
