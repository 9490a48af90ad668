"""The dashboard: numbers from the quality tables, offline in headless Chromium."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cablestream.flows.report import collect, write_report
from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.expectations import RULES
from cablestream.schemas.record import CableRecord
from cablestream.tasks.quality import read_quality_table
from cablestream.tasks.quarantine import QUARANTINE_SCHEMA
from cablestream.tasks.validate import record_quality, validate_batch

# Debian's chromium, headless and quiet on a machine without network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
BATCHES = ["20261125T090000Z-00000001", "20261125T091000Z-00000002", "20261125T092000Z-00000003"]


def rid(n: int) -> str:
    return hashlib.sha256(f"r{n}".encode()).hexdigest()


def cable(n: int, **changes: Any) -> CableRecord:
    fields: dict[str, Any] = {
        "reference_id": f"09PARIS{n + 1}",
        "created": datetime(2009, 3, 2, 12, 0, tzinfo=UTC),
        "precedence": "PRIORITY",
        "origin": "AMEMBASSY PARIS",
        "classification": "CONFIDENTIAL",
        "tags": ["PREL", "FR"],
        "subject": f"FRANCE: TOPIC {n}",
        "body": "1. (C) Text.",
        "record_id": rid(n),
        "source_path": f"{n}.txt",
        "source_sha256": hashlib.sha256(b"f").hexdigest(),
        "parse_warnings": ["paragraph_number_repaired"] if n % 5 == 0 else [],
    }
    fields.update(changes)
    return CableRecord(**fields)


def ingest_like(lake: Path, batch_id: str, records: list[CableRecord]) -> None:
    """What the ingest flow does with an outcome: write accepted rows, quarantine, record quality."""
    outcome = validate_batch(records_to_table(records), batch_id, lake)
    if not outcome.failed and outcome.accepted.num_rows:
        accepted = outcome.accepted.set_column(
            outcome.accepted.schema.get_field_index("batch_id"),
            "batch_id",
            pa.array([batch_id] * outcome.accepted.num_rows, pa.string()),
        )
        part = lake / "year=2009" / "month=3"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(accepted, part / f"part-{batch_id}-0.parquet")
    reasons = [
        {
            "source_path": "x.txt",
            "source_sha256": None,
            "source_offset": 0,
            "reason": r.reason,
            "detail": r.detail,
            "batch_id": batch_id,
            "record_id": r.record_id,
            "copy_path": None,
            "at": datetime.now(UTC),
        }
        for r in outcome.rejections
    ]
    if outcome.failed:
        reasons.append(
            {
                **dict.fromkeys(QUARANTINE_SCHEMA.names),
                "reason": "validation_failed",
                "batch_id": batch_id,
                "at": datetime.now(UTC),
            }
        )
    if reasons:
        folder = layout.quarantine_dir(lake, layout.QUARANTINE_REASONS_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(reasons, schema=QUARANTINE_SCHEMA),
            folder / f"part-{batch_id}.parquet",
        )
    record_quality(outcome, batch_id, lake)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lake")
    # batch 1: clean; batch 2: two bad ids and an empty subject; batch 3: subjects gone (fails)
    ingest_like(root, BATCHES[0], [cable(n) for n in range(12)])
    second = [cable(n) for n in range(100, 115)]
    second[0] = cable(100, reference_id="PARIS 1")
    second[1] = cable(101, reference_id="xx")
    second[2] = cable(102, subject="")
    ingest_like(root, BATCHES[1], second)
    ingest_like(root, BATCHES[2], [cable(n, subject=None) for n in range(200, 220)])
    return root


def test_collect_counts_rows_per_batch(lake: Path) -> None:
    board = collect(lake)
    rows = {
        b.batch_id: (b.rows_in, b.rows_written, b.rows_quarantined, b.verdict)
        for b in board.batches
    }
    assert rows == {
        BATCHES[0]: (12, 12, 0, "passed"),
        BATCHES[1]: (15, 12, 3, "passed"),
        BATCHES[2]: (20, 0, 1, "failed"),
    }
    assert dict(board.reasons) == {
        "reference_id_format": 2,
        "subject_length": 1,
        "validation_failed": 1,
    }
    assert dict(board.warnings) == {"paragraph_number_repaired": 5}
    completeness = {name: (filled, total) for name, filled, total in board.completeness}
    assert completeness["subject"] == (24, 24)
    assert completeness["transmission_id"] == (0, 24)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    return path


def _cells(page: Any, table_id: str) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(c => c.innerText.trim()))",
    )
    return rows


def test_dashboard_in_headless_chromium_shows_the_quality_tables(lake: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    report = write_report(lake)
    validations = read_quality_table(lake, "validations")
    batches = read_quality_table(lake, "batches")
    assert validations is not None and batches is not None

    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_selector("#chart-batches .main-svg", timeout=20_000)

            # Rows per batch, as the batches table and the lake say.
            shown = {row[0]: row for row in _cells(page, "batches")}
            for row in batches.to_pylist():
                cells = shown[row["batch_id"]]
                assert int(cells[2]) == row["rows_in"]
                written = 0 if row["batch_failed"] else row["rows_accepted"]
                assert int(cells[3]) == written
                assert int(cells[4]) == row["rows_dropped"] + (1 if row["batch_failed"] else 0)
                assert int(cells[5]) == (row["rows_in"] if row["batch_failed"] else 0)
                assert cells[6] == ("failed" if row["batch_failed"] else "passed")

            # Pass rate per expectation, recomputed from the validations table.
            per_rule = {row[0]: row for row in _cells(page, "expectations")}
            assert set(per_rule) == {rule.name for rule in RULES}
            for rule in RULES:
                runs = [r for r in validations.to_pylist() if r["expectation"] == rule.name]
                passed = sum(r["success"] for r in runs)
                cells = per_rule[rule.name]
                assert (int(cells[3]), int(cells[4])) == (len(runs), passed), rule.name
                assert cells[5] == f"{100.0 * passed / len(runs):.1f}"
                assert int(cells[6]) == sum(r["unexpected_count"] for r in runs)
            assert per_rule["batch_subject_share"][4] == "2"  # the third batch failed it
            assert per_rule["reference_id_format"][6] == "2"

            totals = _cells(page, "totals")[0]
            assert totals == ["3", "47", "24", "4", "20", "1"]
            reasons = dict((r[0], int(r[1])) for r in _cells(page, "reasons"))
            assert reasons["reference_id_format"] == 2

            # Data Docs are linked and exist on disk.
            hrefs: list[str] = page.eval_on_selector_all("#batches a", "as => as.map(a => a.href)")
            assert len(hrefs) == 3
            assert all(Path(href.removeprefix("file://")).is_file() for href in hrefs)

            # Every chart rendered from the inlined plotly.js.
            for chart in ("batches", "expectations", "reasons", "warnings", "completeness"):
                assert page.locator(f"#chart-{chart} .main-svg").count() >= 1, chart
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    offline = [
        url for url in requests if not url.startswith(("file://", "data:", "blob:", "about:"))
    ]
    assert offline == [], f"the dashboard fetched from the network: {offline}"


def test_data_docs_render_styled_offline(lake: Path) -> None:
    """The shipped assets replace the CDNs: styled pages, a filled run list, no network."""
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    docs = layout.quality_dir(lake) / "data_docs"
    batches = read_quality_table(lake, "batches")
    assert batches is not None
    pages = [docs / "index.html", docs / str(batches.to_pylist()[-1]["data_docs_page"])]
    for page_path in pages:
        text = page_path.read_text(encoding="utf-8")
        assert "cdn" not in text.lower().split("<body")[0], page_path
    requests: list[str] = []
    failures: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=CHROMIUM_ARGS,
        )
        try:
            for number, page_path in enumerate(pages):
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.on("request", lambda request: requests.append(request.url))
                page.on("requestfailed", lambda request: failures.append(request.url))
                page.on("pageerror", lambda error: failures.append(str(error)))
                page.goto(page_path.as_uri())
                page.wait_for_load_state("load")
                font = page.evaluate("getComputedStyle(document.body).fontFamily")
                assert "-apple-system" in font, "bootstrap's stylesheet did not load"
                if page_path.name == "index.html":
                    # bootstrap-table (jQuery) builds the run list: one row per validation run.
                    page.wait_for_selector("table tbody tr td a", timeout=10_000)
                    links = page.eval_on_selector_all("table tbody tr td a", "as => as.length")
                    assert links >= 1
                page.screenshot(path=str(ARTIFACTS / f"data_docs_{number}.png"))
                page.close()
        finally:
            browser.close()
    assert failures == []
    offline = [
        url for url in requests if not url.startswith(("file://", "data:", "blob:", "about:"))
    ]
    assert offline == [], f"Data Docs fetched from the network: {offline}"
