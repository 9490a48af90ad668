"""The quality dashboard: a small offline page, regenerated after every pass, served locally.

`write_report(lake)` reads only small tables, so it is cheap after every pass
whatever the size of the lake:

- `quality/batches/`, `quality/validations/`, `quality/profiles/` (written per
  validation run: verdict, policy in force, field completeness, warning codes),
- `quarantine/reasons/` (written by the ingest flow),
- the Parquet footers of the lake's files (rows per partition, no data read),
- the inbox listing and the ledger (backlog and the newest file): the lake's own
  SQLite ledger, or the one at `ledger_url` (a shared PostgreSQL ledger).

It writes `quality/report.html` (tens of kB: the numbers as HTML tables and
as one JSON block the charts are drawn from) and, once, the shared asset
`quality/assets/plotly.min.js`. The page's status comes from
`health.assess`, as the alerts do (`flows/dashboard.py`, which also serves it
on 127.0.0.1).
"""

from __future__ import annotations

import html
import json
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from cablestream.schemas import lake as layout
from cablestream.schemas.expectations import RULES
from cablestream.tasks.inbox.store import Inbox, ObjectInbox, inbox_files
from cablestream.tasks.lake.atomic import write_atomic
from cablestream.tasks.lake.store import store_for
from cablestream.tasks.quality.health import Health, RecentRun, Thresholds, assess

ASSETS_DIR = "assets"
PLOTLY_ASSET = "plotly.min.js"
# Per-run charts show this many most recent runs; tables and per-day charts show all.
RUNS_SHOWN = 200
QUARANTINE_SHOWN = 200
DETAIL_CHARS = 160
# A page kept open reloads itself (the watch rewrites it after every pass).
REFRESH_SECONDS = 60


@dataclass(slots=True)
class BatchRun:
    batch_id: str
    ran_at: datetime
    rows_in: int
    rows_accepted: int
    rows_dropped: int
    verdict: str
    held_back: bool
    failed_expectations: list[str]
    unmet_expectations: list[str]
    downgraded_expectations: list[str]
    docs_page: str | None
    flow_run_id: str | None
    flow_run_url: str | None

    @property
    def rows_held_back(self) -> int:
        """Rows of a batch nothing of which was written (its files wait for a retry)."""
        return self.rows_in if self.held_back else 0


@dataclass(slots=True)
class ExpectationSummary:
    expectation: str
    column: str
    suite_policy: str
    in_force: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    met: int = 0
    unexpected: int = 0
    checked: int = 0

    @property
    def pass_rate(self) -> float:
        return 100.0 * self.met / self.runs if self.runs else 0.0

    @property
    def in_force_text(self) -> str:
        return ", ".join(f"{policy} {count}" for policy, count in sorted(self.in_force.items()))


@dataclass(slots=True)
class QuarantineItem:
    at: datetime | None
    batch_id: str
    kind: str  # "file" (a source, or a piece of one without a cable) or "row"
    source_path: str
    reason: str
    detail: str
    copy_path: str | None


@dataclass(slots=True)
class Freshness:
    last_batch_at: datetime | None
    last_good_batch_at: datetime | None
    newest_file_at: datetime | None
    backlog_files: int | None  # None: the inbox is not known or not there
    backlog_bytes: int


@dataclass(slots=True)
class Dashboard:
    lake: Path
    generated_at: datetime
    health: Health
    freshness: Freshness
    runs: list[BatchRun] = field(default_factory=list)
    expectations: list[ExpectationSummary] = field(default_factory=list)
    # (UTC day, expectation) -> (runs, met)
    per_day: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    # (batch_id, ran_at) -> expectation -> (met, policy in force)
    matrix: dict[tuple[str, datetime], dict[str, tuple[bool, str]]] = field(default_factory=dict)
    # ran_at-ordered profiles: (batch_id, ran_at) -> {"field": {name: filled}, "warning": ...}
    profiles: dict[tuple[str, datetime], dict[str, dict[str, int]]] = field(default_factory=dict)
    profile_rows: dict[tuple[str, datetime], int] = field(default_factory=dict)
    partitions: list[tuple[str, int, int]] = field(default_factory=list)  # partition, files, rows
    quarantine: list[QuarantineItem] = field(default_factory=list)

    @property
    def rows_in_lake(self) -> int:
        return sum(rows for _, _, rows in self.partitions)

    @property
    def quarantined_files(self) -> int:
        return len({(q.source_path, q.batch_id) for q in self.quarantine if q.kind == "file"})

    @property
    def quarantined_rows(self) -> int:
        return sum(q.kind == "row" for q in self.quarantine)

    @property
    def totals(self) -> dict[str, int]:
        return {
            "runs": len(self.runs),
            "failed_runs": sum(run.verdict == "failed" for run in self.runs),
            "rows_in": sum(run.rows_in for run in self.runs),
            "rows_accepted": sum(run.rows_accepted for run in self.runs),
            "rows_dropped": sum(run.rows_dropped for run in self.runs),
            "rows_held_back": sum(run.rows_held_back for run in self.runs),
            "rows_in_lake": self.rows_in_lake,
            "quarantined_rows": self.quarantined_rows,
            "quarantined_files": self.quarantined_files,
        }


# --- reading ----------------------------------------------------------------------------------


def _runs(batches: pa.Table | None) -> list[BatchRun]:
    if batches is None:
        return []
    runs = []
    for row in batches.to_pylist():
        verdict = row.get("verdict") or ("failed" if row["batch_failed"] else "passed")
        runs.append(
            BatchRun(
                batch_id=row["batch_id"],
                ran_at=row["ran_at"],
                rows_in=int(row["rows_in"] or 0),
                rows_accepted=int(row["rows_accepted"] or 0),
                rows_dropped=int(row["rows_dropped"] or 0),
                verdict=verdict,
                held_back=bool(row.get("held_back")),
                failed_expectations=list(row["failed_expectations"] or []),
                unmet_expectations=list(row.get("unmet_expectations") or []),
                downgraded_expectations=list(row.get("downgraded_expectations") or []),
                docs_page=row["data_docs_page"],
                flow_run_id=row.get("flow_run_id"),
                flow_run_url=row.get("flow_run_url"),
            )
        )
    return sorted(runs, key=lambda run: (run.ran_at, run.batch_id))


def _partitions(lake: Path) -> list[tuple[str, int, int]]:
    """Rows per partition from the Parquet footers (no data is read)."""
    import pyarrow.parquet as pq

    counts: dict[str, list[int]] = {}
    store = store_for(lake)  # the data files: a folder or an object store
    for relative in store.data_files():
        folder, _, name = relative.rpartition("/")
        if name.startswith((".", "_")):
            continue
        try:
            rows = pq.read_metadata(store.key(relative), filesystem=store.filesystem).num_rows
        except (OSError, pa.ArrowInvalid):
            continue  # a file being replaced by compaction; the next pass counts it
        entry = counts.setdefault(folder, [0, 0])
        entry[0] += 1
        entry[1] += rows

    def order(name: str) -> tuple[int, int]:
        year, month = (part.split("=", 1)[1] for part in name.split("/"))
        return int(year), int(month)

    return [
        (name, files, rows)
        for name, (files, rows) in sorted(counts.items(), key=lambda kv: order(kv[0]))
    ]


def _has_ledger(lake: Path, ledger_url: str | None) -> bool:
    """Whether there is a ledger to read: a shared one, or the lake's own file (never created
    by reading it)."""
    return ledger_url is not None or layout.ledger_path(lake).is_file()


def _newest_ledger_file(lake: Path, ledger_url: str | None) -> datetime | None:
    """Modification time of the newest file the ledger ever claimed (read-only query)."""
    import sqlite3

    from cablestream.tasks.ledger.sqlite import read_only_ledger

    if not _has_ledger(lake, ledger_url):
        return None
    try:
        with read_only_ledger(lake, ledger_url) as db:
            (newest,) = db.execute("SELECT MAX(mtime_ns) FROM files").fetchone()
    except sqlite3.Error:  # a lake's ledger file being written for the first time
        return None
    return datetime.fromtimestamp(newest / 1e9, UTC) if newest else None


def _freshness(
    lake: Path, inbox: Inbox | None, ledger_url: str | None, runs: list[BatchRun]
) -> Freshness:
    from cablestream.tasks.batch.claim import fresh_files
    from cablestream.tasks.ledger.sqlite import open_ledger

    newest = _newest_ledger_file(lake, ledger_url)
    backlog: int | None = None
    backlog_bytes = 0
    if isinstance(inbox, ObjectInbox) or (inbox is not None and inbox.is_dir()):
        listed = list(inbox_files(inbox))
        waiting = (
            fresh_files(inbox, open_ledger(lake, ledger_url))
            if _has_ledger(lake, ledger_url)
            else listed
        )
        backlog = len(waiting)
        backlog_bytes = sum(item.size for item in waiting)
        if listed:
            newest_in_inbox = datetime.fromtimestamp(max(i.mtime_ns for i in listed) / 1e9, UTC)
            newest = max(filter(None, (newest, newest_in_inbox)))
    good = [run.ran_at for run in runs if run.verdict == "passed"]
    return Freshness(
        last_batch_at=runs[-1].ran_at if runs else None,
        last_good_batch_at=max(good) if good else None,
        newest_file_at=newest,
        backlog_files=backlog,
        backlog_bytes=backlog_bytes,
    )


def _quarantine(lake: Path) -> list[QuarantineItem]:
    from cablestream.tasks.lake.quarantine import read_reasons

    items = [
        QuarantineItem(
            at=row["at"],
            batch_id=row["batch_id"] or "",
            kind="row" if row["record_id"] else "file",
            source_path=row["source_path"] or "",
            reason=row["reason"] or "",
            detail=row["detail"] or "",
            copy_path=row["copy_path"],
        )
        for row in read_reasons(lake).to_pylist()
    ]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: item.at or oldest, reverse=True)


def collect(
    lake: Path,
    inbox: Inbox | None = None,
    thresholds: Thresholds | None = None,
    ledger_url: str | None = None,
) -> Dashboard:
    """Everything the dashboard shows, read from the quality and quarantine tables, the
    inbox and the ledger (`ledger_url`, else the lake's own)."""
    from cablestream.tasks.quality.tables import read_quality_table

    runs = _runs(read_quality_table(lake, "batches"))
    validations = read_quality_table(lake, "validations")
    profiles = read_quality_table(lake, "profiles")
    quarantine = _quarantine(lake)

    summaries = {
        rule.name: ExpectationSummary(rule.name, rule.column, rule.policy) for rule in RULES
    }
    per_day: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    matrix: dict[tuple[str, datetime], dict[str, tuple[bool, str]]] = defaultdict(dict)
    for row in validations.to_pylist() if validations is not None else []:
        name = row["expectation"]
        summary = summaries.get(name)
        if summary is None:  # a rule that left the suite: its history still counts
            summary = summaries[name] = ExpectationSummary(
                name, row["column"] or "", row["suite_policy"] or row["policy"]
            )
        met = bool(row["success"])
        summary.runs += 1
        summary.met += met
        summary.in_force[row["policy"]] += 1
        summary.unexpected += int(row["unexpected_count"] or 0)
        summary.checked += int(row["element_count"] or 0)
        day = per_day[(row["ran_at"].strftime("%Y-%m-%d"), name)]
        day[0] += 1
        day[1] += met
        matrix[(row["batch_id"], row["ran_at"])][name] = (met, row["policy"])

    profile_map: dict[tuple[str, datetime], dict[str, dict[str, int]]] = defaultdict(
        lambda: {"field": {}, "warning": {}}
    )
    profile_rows: dict[tuple[str, datetime], int] = {}
    for row in profiles.to_pylist() if profiles is not None else []:
        key = (row["batch_id"], row["ran_at"])
        profile_map[key][row["kind"]][row["name"]] = int(row["count"])
        profile_rows[key] = int(row["rows"])

    rows_dropped = Counter(q.batch_id for q in quarantine if q.kind == "row")
    recent = [
        RecentRun(
            ran_at=run.ran_at,
            verdict=run.verdict,
            rows_in=run.rows_in,
            rows_quarantined=rows_dropped.get(run.batch_id, run.rows_dropped)
            if not run.held_back
            else 0,
            met={
                name: met for name, (met, _) in matrix.get((run.batch_id, run.ran_at), {}).items()
            },
            warn_only=frozenset(
                name
                for name, (_, policy) in matrix.get((run.batch_id, run.ran_at), {}).items()
                if policy == "warn"
            ),
        )
        for run in runs
    ]
    freshness = _freshness(lake, inbox, ledger_url, runs)
    now = datetime.now(UTC)
    health = assess(recent, freshness.backlog_files or 0, now, thresholds or Thresholds.from_env())
    return Dashboard(
        lake=lake,
        generated_at=now,
        health=health,
        freshness=freshness,
        runs=runs,
        expectations=[s for s in summaries.values() if s.runs],
        per_day={key: (value[0], value[1]) for key, value in sorted(per_day.items())},
        matrix=dict(matrix),
        profiles=dict(profile_map),
        profile_rows=profile_rows,
        partitions=_partitions(lake),
        quarantine=quarantine,
    )


# --- rendering --------------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _table(table_id: str, headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are HTML already (escape text with `_esc`)."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _link(target: Path | str, text: str, base: Path) -> str:
    relative = os.path.relpath(target, base) if isinstance(target, Path) else target
    return f'<a href="{_esc(Path(relative).as_posix() if isinstance(target, Path) else relative)}">{_esc(text)}</a>'


def _ago(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    minutes = (now - then).total_seconds() / 60
    if minutes < 1:
        return f"{minutes * 60:.0f} s ago"
    if minutes < 120:
        return f"{minutes:.0f} min ago"
    return f"{minutes / 60:.1f} h ago"


def chart_data(board: Dashboard) -> dict[str, Any]:
    """What the charts draw (the same numbers as the tables), for the page's JSON block."""
    shown = board.runs[-RUNS_SHOWN:]
    labels = [_time(run.ran_at) for run in shown]
    names = [e.expectation for e in board.expectations]
    # 1 met, 0 not met (warn or drop in force), -1 not met with `fail` in force, null not run.
    cells: list[list[int | None]] = []
    for name in names:
        line: list[int | None] = []
        for run in shown:
            value = board.matrix.get((run.batch_id, run.ran_at), {}).get(name)
            line.append(
                None if value is None else 1 if value[0] else -1 if value[1] == "fail" else 0
            )
        cells.append(line)
    days = sorted({day for day, _ in board.per_day})
    field_names = [name for name in _profiled_fields(board)]
    profiled = [run for run in shown if (run.batch_id, run.ran_at) in board.profiles]
    codes = sorted({c for p in board.profiles.values() for c in p["warning"]})
    return {
        "runs": {
            "labels": labels,
            "batch_ids": [run.batch_id for run in shown],
            "rows_in": [run.rows_in for run in shown],
            "accepted": [run.rows_accepted for run in shown],
            "dropped": [run.rows_dropped for run in shown],
            "held_back": [run.rows_held_back for run in shown],
        },
        "matrix": {"expectations": names, "cells": cells},
        "per_day": {
            "days": days,
            "series": {
                name: [
                    round(100.0 * met / runs, 1) if runs else None
                    for runs, met in (board.per_day.get((day, name), (0, 0)) for day in days)
                ]
                for name in names
            },
        },
        "completeness": {
            "labels": [_time(run.ran_at) for run in profiled],
            "series": {
                name: [
                    round(
                        100.0
                        * board.profiles[(run.batch_id, run.ran_at)]["field"].get(name, 0)
                        / max(board.profile_rows[(run.batch_id, run.ran_at)], 1),
                        1,
                    )
                    for run in profiled
                ]
                for name in field_names
            },
        },
        "warnings": {
            "labels": [_time(run.ran_at) for run in profiled],
            "series": {
                code: [
                    board.profiles[(run.batch_id, run.ran_at)]["warning"].get(code, 0)
                    for run in profiled
                ]
                for code in codes
            },
        },
        "partitions": {
            "names": [name for name, _, _ in board.partitions],
            "rows": [rows for _, _, rows in board.partitions],
        },
    }


def _profiled_fields(board: Dashboard) -> list[str]:
    from cablestream.schemas.arrow import CABLE_SCHEMA

    present = {name for p in board.profiles.values() for name in p["field"]}
    return [name for name in CABLE_SCHEMA.names if name in present]


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.2em 1.5em;color:#222}
h1{margin:0 0 .2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.left{text-align:left} .muted{color:#777} .chart{width:100%;min-height:320px}
.status{display:inline-block;padding:.35em 1em;border-radius:.4em;color:#fff;font-weight:bold;
 font-size:1.3em;text-transform:uppercase}
.green{background:#2e7d32} .amber{background:#ef8f00} .red{background:#c62828}
.s-green{color:#2e7d32} .s-amber{color:#b26a00;font-weight:bold} .s-red{color:#c62828;font-weight:bold}
.failed{color:#c62828;font-weight:bold}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:1em}
"""

_SCRIPT = """
const D = JSON.parse(document.getElementById('data').textContent);
const cfg = {responsive: true, displaylogo: false};
function lines(id, title, x, series, yTitle, range, xaxis) {
  const traces = Object.entries(series).map(([name, y]) => ({x, y, name, mode: 'lines+markers'}));
  if (!traces.length) return;
  Plotly.newPlot(id, traces, {title, xaxis: xaxis || {}, yaxis: {title: yTitle, range}, margin: {t: 40},
    legend: {font: {size: 10}}}, cfg);
}
if (window.Plotly) {
  const r = D.runs;
  if (r.labels.length) {
    Plotly.newPlot('chart-runs', [
      {x: r.labels, y: r.accepted, name: 'accepted', type: 'bar', marker: {color: '#2e7d32'}},
      {x: r.labels, y: r.dropped, name: 'dropped to quarantine', type: 'bar', marker: {color: '#ef8f00'}},
      {x: r.labels, y: r.held_back, name: 'held back (retried)', type: 'bar', marker: {color: '#c62828'}},
    ], {title: 'Rows per validation run', barmode: 'stack', margin: {t: 40}}, cfg);
    const m = D.matrix;
    Plotly.newPlot('chart-matrix', [{
      // One equal cell per run (a time axis would size cells by the gaps between runs).
      z: m.cells, x: r.batch_ids, y: m.expectations, type: 'heatmap', zmin: -1, zmax: 1, xgap: 1, ygap: 1,
      colorscale: [[0, '#c62828'], [0.5, '#ef8f00'], [1, '#2e7d32']], showscale: false,
      hovertemplate: '%{y}<br>batch %{x}<br>%{z}<extra>1 met, 0 not met (warn/drop), -1 not met (fail)</extra>',
    }], {title: 'Expectations per run (green met, amber not met as warn/drop, red not met as fail)',
      height: 200 + 18 * m.expectations.length, margin: {l: 230, t: 40, b: 130}, yaxis: {autorange: 'reversed'},
      xaxis: {type: 'category', tickvals: r.batch_ids, ticktext: r.labels, tickangle: -45,
        showticklabels: r.labels.length <= 40}}, cfg);
  }
  lines('chart-days', 'Pass rate per expectation per day (% of runs)', D.per_day.days, D.per_day.series, '%', [0, 105],
    {type: 'category'});
  lines('chart-completeness', 'Field completeness per run (% of accepted rows with a value)',
    D.completeness.labels, D.completeness.series, '%', [0, 105]);
  const w = D.warnings;
  const wt = Object.entries(w.series).map(([name, y]) => ({x: w.labels, y, name, type: 'bar'}));
  if (wt.length) Plotly.newPlot('chart-warnings', wt, {title: 'Parse-warning codes per run (rows)', barmode: 'stack', margin: {t: 40}}, cfg);
  const p = D.partitions;
  if (p.names.length) Plotly.newPlot('chart-partitions', [{x: p.names, y: p.rows, type: 'bar'}],
    {title: 'Rows per partition', margin: {t: 40}}, cfg);
}
"""


def render(board: Dashboard, page_dir: Path) -> str:
    """The dashboard page; links are relative to `page_dir` (where the page is written)."""
    control = layout.control_root(board.lake)
    quality = layout.quality_dir(board.lake)
    now = board.generated_at
    totals = board.totals
    parts: list[str] = []

    health = board.health
    parts.append(
        f'<p><span id="status" class="status {health.status}">{health.status}</span> '
        f'<span class="muted">thresholds: CABLESTREAM_ALERT_* (see docs/quality.md)</span></p>'
    )
    parts.append(
        _table(
            "health",
            ["check", "status", "value", "threshold"],
            [
                [
                    _esc(c.name),
                    f'<span class="s-{c.status}">{c.status}</span>',
                    _esc(c.value),
                    _esc(c.threshold),
                ]
                for c in sorted(
                    health.checks,
                    key=lambda c: ({"red": 0, "amber": 1, "green": 2}[c.status], c.name),
                )
                if c.status != "green" or not c.name.startswith("pass_rate:")
            ],
        )
    )

    fresh = board.freshness
    parts.append("<h2>Freshness</h2>")
    parts.append(
        _table(
            "freshness",
            [
                "last good batch",
                "last validation run",
                "newest file seen",
                "files waiting in the inbox",
                "bytes waiting",
            ],
            [
                [
                    f"{_esc(_time(fresh.last_good_batch_at))} ({_esc(_ago(now, fresh.last_good_batch_at))})",
                    f"{_esc(_time(fresh.last_batch_at))} ({_esc(_ago(now, fresh.last_batch_at))})",
                    f"{_esc(_time(fresh.newest_file_at))} ({_esc(_ago(now, fresh.newest_file_at))})",
                    "-" if fresh.backlog_files is None else str(fresh.backlog_files),
                    str(fresh.backlog_bytes),
                ]
            ],
        )
    )

    parts.append("<h2>Totals</h2>")
    parts.append(
        _table(
            "totals",
            [
                "validation runs",
                "failed runs",
                "rows in",
                "rows accepted",
                "rows dropped",
                "rows held back",
                "rows in lake",
                "quarantined rows",
                "quarantined files",
            ],
            [
                [
                    str(totals[k])
                    for k in (
                        "runs",
                        "failed_runs",
                        "rows_in",
                        "rows_accepted",
                        "rows_dropped",
                        "rows_held_back",
                        "rows_in_lake",
                        "quarantined_rows",
                        "quarantined_files",
                    )
                ]
            ],
        )
    )
    index = quality / "data_docs" / "index.html"
    parts.append(
        f"<p>{_link(index, 'Great Expectations Data Docs', page_dir)}: every run in full "
        "(the same verdict and policies in force). Rows in = accepted + dropped + held back; "
        "a held-back batch (an expectation could not be evaluated) is retried, then "
        "recorded held (kept out, not quarantined); a failed batch is written with its "
        "failing rows quarantined.</p>"
    )

    parts.append("<h2>Validation runs</h2>")
    parts.append('<div id="chart-runs" class="chart"></div>')
    recent_runs = list(reversed(board.runs[-RUNS_SHOWN:]))
    parts.append(
        _table(
            "batches",
            [
                "batch",
                "validated at (UTC)",
                "rows in",
                "accepted",
                "dropped",
                "held back",
                "verdict",
                "not met",
                "in force as warn",
                "Data Docs",
                "Prefect flow run",
            ],
            [
                [
                    _esc(run.batch_id),
                    _esc(_time(run.ran_at)),
                    str(run.rows_in),
                    str(run.rows_accepted),
                    str(run.rows_dropped),
                    str(run.rows_held_back),
                    f'<span class="failed">{_esc(run.verdict)}</span>'
                    if run.verdict == "failed"
                    else _esc(run.verdict),
                    f'<span class="left">{_esc(", ".join(run.unmet_expectations))}</span>',
                    _esc(", ".join(run.downgraded_expectations)),
                    _link(quality / "data_docs" / run.docs_page, "run page", page_dir)
                    if run.docs_page
                    else "-",
                    (
                        f'<a href="{_esc(run.flow_run_url)}">{_esc((run.flow_run_id or "")[:8])}</a>'
                        if run.flow_run_url
                        else _esc(run.flow_run_id or "-")
                    ),
                ]
                for run in recent_runs
            ],
        )
    )

    parts.append("<h2>Expectations</h2>")
    parts.append(
        '<div id="chart-matrix" class="chart"></div><div id="chart-days" class="chart"></div>'
    )
    parts.append(
        _table(
            "expectations",
            [
                "expectation",
                "column",
                "suite policy",
                "in force (runs)",
                "runs",
                "met runs",
                "pass rate %",
                "unexpected rows",
                "rows checked",
            ],
            [
                [
                    _esc(e.expectation),
                    _esc(e.column),
                    _esc(e.suite_policy),
                    _esc(e.in_force_text),
                    str(e.runs),
                    str(e.met),
                    f"{e.pass_rate:.1f}",
                    str(e.unexpected),
                    str(e.checked),
                ]
                for e in board.expectations
            ],
        )
    )
    parts.append(
        _table(
            "expectation-days",
            ["day (UTC)", "expectation", "runs", "met runs", "pass rate %"],
            [
                [_esc(day), _esc(name), str(runs), str(met), f"{100.0 * met / runs:.1f}"]
                for (day, name), (runs, met) in board.per_day.items()
                if met < runs
            ],
        )
    )
    parts.append(
        '<p class="muted">Per day, only the expectations not met in every run are listed.</p>'
    )

    parts.append("<h2>Quarantine</h2>")
    reasons: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in board.quarantine:
        reasons[item.reason][0 if item.kind == "file" else 1] += 1
    parts.append(
        _table(
            "reasons",
            ["reason", "file entries", "rows"],
            [
                [_esc(r), str(f), str(n)]
                for r, (f, n) in sorted(reasons.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
            ],
        )
    )

    def kept(item: QuarantineItem) -> str:
        if item.copy_path:
            return _link(control / item.copy_path, "source copy", page_dir)
        if item.kind == "row":
            rows_file = (
                layout.quarantine_dir(board.lake, layout.QUARANTINE_ROWS_DIR)
                / f"part-{item.batch_id}.parquet"
            )
            return _link(rows_file, "rows (Parquet)", page_dir)
        return "-"

    parts.append(
        _table(
            "quarantine",
            ["at (UTC)", "batch", "kind", "source path", "reason", "detail", "kept copy"],
            [
                [
                    _esc(_time(q.at)),
                    _esc(q.batch_id),
                    _esc(q.kind),
                    f'<span class="left">{_esc(q.source_path)}</span>',
                    _esc(q.reason),
                    f'<span class="left">{_esc(q.detail[:DETAIL_CHARS])}</span>',
                    kept(q),
                ]
                for q in board.quarantine[:QUARANTINE_SHOWN]
            ],
        )
    )

    parts.append("<h2>Lake</h2>")
    parts.append('<div id="chart-partitions" class="chart"></div>')
    parts.append(
        _table(
            "partitions",
            ["partition", "files", "rows"],
            [[_esc(n), str(f), str(r)] for n, f, r in board.partitions],
        )
    )

    parts.append("<h2>Parse warnings and field completeness (accepted rows, per run)</h2>")
    parts.append(
        '<div class="grid"><div id="chart-warnings" class="chart"></div><div id="chart-completeness" class="chart"></div></div>'
    )
    warning_totals: Counter[str] = Counter()
    field_totals: Counter[str] = Counter()
    for profile in board.profiles.values():
        warning_totals.update(profile["warning"])
        field_totals.update(profile["field"])
    profiled_rows = sum(board.profile_rows.values())
    parts.append(
        _table(
            "warnings",
            ["code", "rows"],
            [[_esc(c), str(n)] for c, n in warning_totals.most_common()],
        )
    )
    parts.append(
        _table(
            "completeness",
            ["field", "rows with a value", "rows", "complete %"],
            [
                [
                    _esc(name),
                    str(field_totals[name]),
                    str(profiled_rows),
                    f"{100.0 * field_totals[name] / profiled_rows:.1f}" if profiled_rows else "-",
                ]
                for name in _profiled_fields(board)
            ],
        )
    )

    plotly = Path(os.path.relpath(quality / ASSETS_DIR / PLOTLY_ASSET, page_dir)).as_posix()
    data = json.dumps(chart_data(board), separators=(",", ":")).replace("</", "<\\/")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        f"<title>{health.status.upper()} cablestream quality: {_esc(board.lake.name)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f'<h1>cablestream data quality</h1><p class="muted">lake {_esc(board.lake)}, '
        f"generated {_esc(_time(now))} UTC</p>"
        + "\n".join(parts)
        + f'<script type="application/json" id="data">{data}</script>'
        + f'<script src="{_esc(plotly)}"></script><script>{_SCRIPT}</script></body></html>\n'
    )


def _plotly_asset(quality: Path) -> None:
    """Copy plotly.js (4.8 MB) once beside the reports: a shared asset, not in every page."""
    import plotly

    target = quality / ASSETS_DIR / PLOTLY_ASSET
    if target.is_file():
        return
    source = Path(plotly.__file__).resolve().parent / "package_data" / PLOTLY_ASSET
    write_atomic(target, lambda temporary: shutil.copyfile(source, temporary))


def write_board(board: Dashboard, out: Path | None = None) -> Path:
    """Render and write the dashboard (atomically); returns its path."""
    target = out if out is not None else layout.report_path(board.lake)
    target.parent.mkdir(parents=True, exist_ok=True)
    _plotly_asset(layout.quality_dir(board.lake))
    page = render(board, target.parent.resolve())
    return write_atomic(target, lambda temporary: temporary.write_text(page, encoding="utf-8"))


def write_report(
    lake: Path,
    out: Path | None = None,
    inbox: Inbox | None = None,
    thresholds: Thresholds | None = None,
    ledger_url: str | None = None,
) -> Path:
    """Collect, render and write the dashboard; returns its path."""
    return write_board(collect(lake, inbox, thresholds, ledger_url), out)
