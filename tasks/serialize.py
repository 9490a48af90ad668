"""JSON form of a record: the record's field names, dates and times as ISO-8601."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from cablestream.schemas.record import CableRecord


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _iso(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_iso(item) for item in value]
    return value


def record_to_json_dict(record: CableRecord) -> dict[str, Any]:
    """A JSON-ready dict of every record field."""
    return {key: _iso(value) for key, value in dataclasses.asdict(record).items()}
