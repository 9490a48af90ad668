"""The quality dashboard: one self-contained HTML page that works offline (no CDN).

`cablestream report --lake DIR` reads

- `quality/batches/` and `quality/validations/` (written by validation),
- `quarantine/reasons/` (written by the ingest flow),
- the lake's accepted rows (only the columns needed, one at a time),

(the first two in the lake's control folder, `schemas/lake.py`) and writes
`quality/report.html` there (plotly.js inlined once). Every number a
chart shows is also in an HTML table, so people (and the browser test) can
read it without the charts; the page links to the GE Data Docs.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import CABLE_SCHEMA
from cablestream.schemas.expectations import RULES_BY_NAME
from cablestream.tasks.quality import DATA_DOCS_DIR

TOP_REASONS = 15


@dataclass(slots=True)
class BatchRow:
    batch_id: str
    ran_at: datetime | None
    rows_in: int
    rows_written: int
    rows_quarantined: int
    verdict: str
    docs_page: str | None

    @property
    def rows_held_back(self) -> int:
        """Rows of a batch a `fail` expectation kept out (its files wait for a retry)."""
        return self.rows_in if self.verdict == "failed" else 0


@dataclass(slots=True)
class ExpectationRow:
    expectation: str
    column: str
    policy: str
    runs: int
    passed_runs: int
    unexpected: int
    elements: int

    @property
    def pass_rate(self) -> float:
        return 100.0 * self.passed_runs / self.runs if self.runs else 0.0

    @property
    def row_pass_rate(self) -> float:
        return 100.0 * (1 - self.unexpected / self.elements) if self.elements else 100.0


@dataclass(slots=True)
class Dashboard:
    lake: Path
    generated_at: datetime
    batches: list[BatchRow] = field(default_factory=list)
    expectations: list[ExpectationRow] = field(default_factory=list)
    reasons: list[tuple[str, int]] = field(default_factory=list)
    warnings: list[tuple[str, int]] = field(default_factory=list)
    completeness: list[tuple[str, int, int]] = field(default_factory=list)  # field, filled, rows
    rows_in_lake: int = 0

    @property
    def totals(self) -> dict[str, int]:
        return {
            "batches": len(self.batches),
            "rows_in": sum(b.rows_in for b in self.batches),
            "rows_written": self.rows_in_lake,
            "rows_quarantined": sum(b.rows_quarantined for b in self.batches),
            "rows_held_back": sum(b.rows_held_back for b in self.batches),
            "failed_batches": sum(b.verdict == "failed" for b in self.batches),
        }


# --- reading ----------------------------------------------------------------------------------


def _lake_dataset(lake: Path) -> Any:
    import pyarrow.dataset as ds

    if not lake.is_dir():
        return None
    dataset = ds.dataset(str(lake), format="parquet", partitioning="hive")
    return dataset if dataset.files else None


def _counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    if len(column) == 0:
        return {}
    counted = pc.value_counts(column)
    return {
        str(item["values"]): int(item["counts"])
        for item in counted.to_pylist()
        if item["values"] is not None
    }


def _filled(column: pa.ChunkedArray) -> int:
    """Rows where a field has a value: not null, and not an empty list or string."""
    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return int(
            pc.sum(pc.greater(pc.fill_null(pc.list_value_length(column), 0), 0)).as_py() or 0
        )
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        lengths = pc.fill_null(pc.utf8_length(column), 0)
        return int(pc.sum(pc.greater(lengths, 0)).as_py() or 0)
    return int(len(column) - column.null_count)


def collect(lake: Path) -> Dashboard:
    """Everything the dashboard shows, read from the lake's tables."""
    from cablestream.tasks.quality import read_quality_table
    from cablestream.tasks.quarantine import read_reasons

    board = Dashboard(lake=lake, generated_at=datetime.now(UTC))
    batches = read_quality_table(lake, "batches")
    validations = read_quality_table(lake, "validations")
    reasons = read_reasons(lake)
    dataset = _lake_dataset(lake)

    written: dict[str, int] = {}
    if dataset is not None:
        batch_ids = dataset.to_table(columns=["batch_id"]).column("batch_id")
        board.rows_in_lake = len(batch_ids)
        written = _counts(batch_ids)
    quarantined = _counts(reasons.column("batch_id")) if reasons.num_rows else {}

    if batches is not None:
        for row in sorted(batches.to_pylist(), key=lambda r: (r["ran_at"], r["batch_id"])):
            board.batches.append(
                BatchRow(
                    batch_id=row["batch_id"],
                    ran_at=row["ran_at"],
                    rows_in=int(row["rows_in"]),
                    rows_written=written.get(row["batch_id"], 0),
                    rows_quarantined=quarantined.get(row["batch_id"], 0),
                    verdict="failed" if row["batch_failed"] else "passed",
                    docs_page=row["data_docs_page"],
                )
            )
    # Batches in the lake or quarantine without a validation run (e.g. every file unreadable).
    seen = {b.batch_id for b in board.batches}
    for batch_id in sorted((set(written) | set(quarantined)) - seen):
        board.batches.append(
            BatchRow(
                batch_id,
                None,
                0,
                written.get(batch_id, 0),
                quarantined.get(batch_id, 0),
                "not validated",
                None,
            )
        )

    if validations is not None:
        per: dict[str, ExpectationRow] = {}
        for row in validations.to_pylist():
            name = row["expectation"]
            rule = RULES_BY_NAME.get(name)
            entry = per.setdefault(
                name,
                ExpectationRow(
                    name, row["column"], rule.policy if rule else row["policy"], 0, 0, 0, 0
                ),
            )
            entry.runs += 1
            entry.passed_runs += bool(row["success"])
            entry.unexpected += int(row["unexpected_count"] or 0)
            entry.elements += int(row["element_count"] or 0)
        order = {name: i for i, name in enumerate(RULES_BY_NAME)}
        board.expectations = sorted(per.values(), key=lambda e: order.get(e.expectation, 999))

    if reasons.num_rows:
        board.reasons = sorted(
            _counts(reasons.column("reason")).items(), key=lambda kv: (-kv[1], kv[0])
        )

    if dataset is not None:
        warnings = dataset.to_table(columns=["parse_warnings"]).column("parse_warnings")
        codes = pc.list_flatten(warnings)
        board.warnings = sorted(_counts(codes).items(), key=lambda kv: (-kv[1], kv[0]))
        present = set(dataset.schema.names)
        for name in CABLE_SCHEMA.names:
            if name in present:
                # Streamed batch by batch: `body` of a big lake never sits in memory whole.
                filled = rows = 0
                for batch in dataset.scanner(columns=[name]).to_batches():
                    column = pa.chunked_array([batch.column(0)], batch.schema.field(0).type)
                    filled += _filled(column)
                    rows += batch.num_rows
                board.completeness.append((name, filled, rows))
    return board


# --- rendering --------------------------------------------------------------------------------


def _table(table_id: str, headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(f"<td>{cell}</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return (
        f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _charts(board: Dashboard) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go

    charts: list[tuple[str, Any]] = []
    if board.batches:
        labels = [
            (b.ran_at.strftime("%Y-%m-%d %H:%M:%S") if b.ran_at else b.batch_id)
            for b in board.batches
        ]
        fig = go.Figure()
        for name, values in (
            ("rows in", [b.rows_in for b in board.batches]),
            ("written", [b.rows_written for b in board.batches]),
            ("quarantined", [b.rows_quarantined for b in board.batches]),
            ("held back (batch failed)", [b.rows_held_back for b in board.batches]),
        ):
            fig.add_trace(
                go.Scatter(
                    x=labels,
                    y=values,
                    name=name,
                    mode="lines+markers",
                    text=[b.batch_id for b in board.batches],
                )
            )
        fig.update_layout(title="Rows per batch over time", xaxis_title="validated at (UTC)")
        charts.append(("chart-batches", fig))
    if board.expectations:
        fig = go.Figure(
            go.Bar(
                x=[round(e.pass_rate, 1) for e in board.expectations],
                y=[f"{e.expectation} [{e.policy}]" for e in board.expectations],
                orientation="h",
                marker_color=[
                    {"fail": "#c0392b", "drop": "#e67e22", "warn": "#2980b9"}.get(e.policy, "#777")
                    for e in board.expectations
                ],
            )
        )
        fig.update_layout(
            title="Pass rate per expectation (% of batch runs)",
            xaxis_range=[0, 100],
            height=max(400, 22 * len(board.expectations)),
            yaxis_autorange="reversed",
        )
        charts.append(("chart-expectations", fig))
    if board.reasons:
        top = board.reasons[:TOP_REASONS]
        fig = go.Figure(go.Bar(x=[c for _, c in top], y=[r for r, _ in top], orientation="h"))
        fig.update_layout(title="Top quarantine reasons (rows)", yaxis_autorange="reversed")
        charts.append(("chart-reasons", fig))
    if board.warnings:
        fig = go.Figure(go.Bar(x=[w for w, _ in board.warnings], y=[c for _, c in board.warnings]))
        fig.update_layout(title="Parse-warning codes (rows in the lake)")
        charts.append(("chart-warnings", fig))
    if board.completeness:
        fig = go.Figure(
            go.Bar(
                x=[name for name, _, _ in board.completeness],
                y=[
                    round(100.0 * filled / rows, 1) if rows else 0
                    for _, filled, rows in board.completeness
                ],
            )
        )
        fig.update_layout(title="Field completeness (% of rows in the lake)", yaxis_range=[0, 100])
        charts.append(("chart-completeness", fig))
    return charts


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.failed{color:#c0392b;font-weight:bold} .muted{color:#777}
.totals td{font-size:1.1em}
"""


def render(board: Dashboard, report_path: Path) -> str:
    """The dashboard page; links are relative to `report_path`."""
    import plotly.io as pio

    docs_dir = layout.quality_dir(board.lake) / DATA_DOCS_DIR

    def docs_link(page: str | None, text: str) -> str:
        if not page:
            return '<span class="muted">-</span>'
        target = os.path.relpath(docs_dir / page, report_path.parent)
        return f'<a href="{_esc(Path(target).as_posix())}">{_esc(text)}</a>'

    parts: list[str] = []
    totals = board.totals
    parts.append(
        _table(
            "totals",
            [
                "batches",
                "rows in",
                "rows in lake",
                "rows quarantined",
                "rows held back",
                "failed batches",
            ],
            [
                [
                    totals["batches"],
                    totals["rows_in"],
                    totals["rows_written"],
                    totals["rows_quarantined"],
                    totals["rows_held_back"],
                    totals["failed_batches"],
                ]
            ],
        ).replace('<table id="totals">', '<table id="totals" class="totals">')
    )
    index_link = docs_link("index.html", "Great Expectations Data Docs")
    parts.append(
        f"<p>{index_link}: every validation run in full (shipped styles, works offline). "
        "Rows in = written + quarantined + held back; a held-back batch's files are "
        "retried, then quarantined whole.</p>"
    )

    charts = dict(_charts(board))
    first = True

    def chart(chart_id: str) -> str:
        nonlocal first
        fig = charts.get(chart_id)
        if fig is None:
            return '<p class="muted">No data yet.</p>'
        out = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=first,
            div_id=chart_id,
            config={"responsive": True},
        )
        first = False
        return str(out)

    parts.append("<h2>Rows per batch</h2>")
    parts.append(chart("chart-batches"))
    parts.append(
        _table(
            "batches",
            [
                "batch",
                "validated at (UTC)",
                "rows in",
                "written",
                "quarantined",
                "held back",
                "verdict",
                "Data Docs",
            ],
            [
                [
                    _esc(b.batch_id),
                    _esc(b.ran_at.strftime("%Y-%m-%d %H:%M:%S") if b.ran_at else "-"),
                    b.rows_in,
                    b.rows_written,
                    b.rows_quarantined,
                    b.rows_held_back,
                    f'<span class="failed">{b.verdict}</span>'
                    if b.verdict == "failed"
                    else b.verdict,
                    docs_link(b.docs_page, "results"),
                ]
                for b in board.batches
            ],
        )
    )

    parts.append("<h2>Expectations</h2>")
    parts.append(chart("chart-expectations"))
    parts.append(
        _table(
            "expectations",
            [
                "expectation",
                "field",
                "policy",
                "runs",
                "passed runs",
                "pass rate %",
                "unexpected rows",
                "rows checked",
                "row pass rate %",
            ],
            [
                [
                    _esc(e.expectation),
                    _esc(e.column),
                    _esc(e.policy),
                    e.runs,
                    e.passed_runs,
                    f"{e.pass_rate:.1f}",
                    e.unexpected,
                    e.elements,
                    f"{e.row_pass_rate:.1f}",
                ]
                for e in board.expectations
            ],
        )
    )

    parts.append("<h2>Top quarantine reasons</h2>")
    parts.append(chart("chart-reasons"))
    parts.append(
        _table(
            "reasons", ["reason", "rows"], [[_esc(r), c] for r, c in board.reasons[:TOP_REASONS]]
        )
    )

    parts.append("<h2>Parse-warning codes</h2>")
    parts.append(chart("chart-warnings"))
    parts.append(_table("warnings", ["code", "rows"], [[_esc(w), c] for w, c in board.warnings]))

    parts.append("<h2>Field completeness</h2>")
    parts.append(chart("chart-completeness"))
    parts.append(
        _table(
            "completeness",
            ["field", "rows with a value", "rows", "complete %"],
            [
                [_esc(name), filled, rows, f"{100.0 * filled / rows:.1f}" if rows else "-"]
                for name, filled, rows in board.completeness
            ],
        )
    )

    generated = board.generated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>cablestream quality: {_esc(board.lake.name)}</title><style>{_STYLE}</style>"
        "</head><body>"
        f'<h1>cablestream data quality</h1><p class="muted">lake {_esc(board.lake)}, '
        f"generated {generated}</p>" + "\n".join(parts) + "</body></html>\n"
    )


def write_report(lake: Path, out: Path | None = None) -> Path:
    """Collect, render and write the dashboard; returns its path."""
    target = out if out is not None else layout.report_path(lake)
    target.parent.mkdir(parents=True, exist_ok=True)
    page = render(collect(lake), target)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target
