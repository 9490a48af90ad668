"""The dataframe GE sees: the lake columns the suite reads, converted once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas.expectations import JOIN_SEPARATOR

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


_PLAIN_COLUMNS = (
    "record_id",
    "reference_id",
    "precedence",
    "transmission_id",
    "origin",
    "station",
    "classification",
    "subject",
    "rendering",
    "source_path",
    "source_sha256",
    "parser_version",
)


def _joined(column: pa.ChunkedArray, struct_field: str | None = None) -> list[str]:
    """Per row, the non-null elements of a list column joined by `|` ("" for none)."""
    out = [""] * len(column)
    row_offset = 0
    for chunk in column.chunks:
        values = chunk.flatten()
        parents = pc.list_parent_indices(chunk)
        if struct_field is not None:
            values = pc.struct_field(values, struct_field)
        parts: dict[int, list[str]] = {}
        for parent, value in zip(parents.to_pylist(), values.to_pylist(), strict=True):
            if value is not None:
                parts.setdefault(parent, []).append(value)
        for parent, items in parts.items():
            out[row_offset + parent] = JOIN_SEPARATOR.join(items)
        row_offset += len(chunk)
    return out


def build_frame(table: pa.Table) -> pd.DataFrame:
    """The lake columns the suite reads, as GE sees them (pandas, one conversion).

    List columns become their elements joined by `|` (routing indicators for
    `recipients`), `nondisclosure_deadline` a UTC timestamp comparable with
    `created`. `body` is converted too, as plain `str` objects: GE measures its length
    with `astype(str)`, which on an Arrow-backed column builds a fixed-width numpy array
    of rows x the longest body x 4 bytes (765 MB and 5.7 s for 2,000 rows beside one
    100,000-character body), while on `str` objects it is a no-op.
    """

    columns: dict[str, Any] = {name: table.column(name) for name in (*_PLAIN_COLUMNS, "body")}
    # Seconds, never nanoseconds: a nanosecond timestamp ends in 2262, and a cable may
    # carry any year (a DTG of 9999, a DECL of 2308). pandas 2 keeps the unit.
    columns["created"] = table.column("created")
    columns["nondisclosure_deadline"] = pc.cast(
        table.column("nondisclosure_deadline"), pa.timestamp("s", tz="UTC")
    )
    columns["recipients"] = pa.array(_joined(table.column("recipients"), "route"), pa.string())
    columns["info_recipients"] = pa.array(
        _joined(table.column("info_recipients"), "route"), pa.string()
    )
    for name in ("caveats", "tags", "classification_reasons", "parse_warnings"):
        columns[name] = pa.array(_joined(table.column(name)), pa.string())
    frame: pd.DataFrame = pa.table(columns).to_pandas()
    return frame
