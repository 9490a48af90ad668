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

from cablestream.schemas import lake as layout
from cablestream.schemas.arrow import records_to_table
from cablestream.schemas.expectations import RULES
from cablestream.schemas.record import CableRecord
from cablestream.tasks.lake.quarantine import QUARANTINE_SCHEMA, keep_source_copy
from cablestream.tasks.quality.dashboard import collect, write_report
from cablestream.tasks.quality.tables import read_quality_table, record_batch_quality
from cablestream.tasks.quality.validate import validate_batch

# Debian's chromium, headless and quiet on a machine without network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
BATCHES = [f"20261125T09{n}000Z-0000000{n + 1}" for n in range(5)]


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
    if not outcome.held_back and outcome.accepted.num_rows:
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
    write_reasons(lake, batch_id, reasons)
    record_batch_quality(outcome, batch_id, lake)


def write_reasons(lake: Path, batch_id: str, reasons: list[dict[str, Any]]) -> None:
    if reasons:
        folder = layout.quarantine_dir(lake, layout.QUARANTINE_REASONS_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pylist(reasons, schema=QUARANTINE_SCHEMA),
            folder / f"part-{batch_id}.parquet",
        )


def quarantine_a_file(lake: Path, batch_id: str) -> str:
    """A source file rejected whole (binary), with its kept copy, as the ingest flow does."""
    data = b"\x00\x01 not a cable"
    sha = hashlib.sha256(data).hexdigest()
    copy = keep_source_copy(lake, sha, data)
    write_reasons(
        lake,
        batch_id,
        [
            {
                **dict.fromkeys(QUARANTINE_SCHEMA.names),
                "source_path": "drop/junk.bin",
                "source_sha256": sha,
                "reason": "binary",
                "detail": "NUL bytes: not text",
                "batch_id": batch_id,
                "copy_path": copy,
                "at": datetime.now(UTC),
            }
        ],
    )
    return copy


@pytest.fixture(scope="module")
def lake(prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from prefect import flow

    root = tmp_path_factory.mktemp("lake")

    @flow(name="report-test-batches")
    def batches() -> None:
        # 1: clean; 2: two rows without text (dropped), an odd id and an empty subject (kept,
        # flagged); 3: subjects gone, a `fail` rule breaks (verdict failed); 4: a small batch
        # breaking it (in force as `warn`).
        ingest_like(root, BATCHES[0], [cable(n) for n in range(12)])
        second = [cable(n) for n in range(100, 115)]
        second[0] = cable(100, body="")
        second[1] = cable(101, body="  ")
        second[2] = cable(102, subject="")
        second[3] = cable(103, reference_id="PARIS 1")
        ingest_like(root, BATCHES[1], second)
        ingest_like(root, BATCHES[2], [cable(n, subject=None) for n in range(200, 220)])
        ingest_like(root, BATCHES[3], [cable(n, subject=None) for n in range(300, 303)])
        quarantine_a_file(root, BATCHES[4])

    batches()
    return root


def test_collect_counts_rows_per_batch(lake: Path) -> None:
    board = collect(lake)
    rows = {
        b.batch_id: (
            b.rows_in,
            b.rows_accepted,
            b.rows_dropped,
            b.verdict,
            b.downgraded_expectations,
        )
        for b in board.runs
    }
    assert rows == {
        BATCHES[0]: (12, 12, 0, "passed", []),
        BATCHES[1]: (15, 13, 2, "passed", []),
        BATCHES[2]: (20, 20, 0, "failed", []),
        BATCHES[3]: (3, 3, 0, "passed", ["batch_subject_share", "batch_parse_warning_share"]),
    }
    # Files count as files, rows as rows.
    assert (board.quarantined_files, board.quarantined_rows) == (1, 2)
    (item,) = [q for q in board.quarantine if q.kind == "file"]
    assert (item.source_path, item.reason) == ("drop/junk.bin", "binary")
    assert board.partitions == [("year=2009/month=3", 4, 48)]
    share = {e.expectation: e for e in board.expectations}["batch_subject_share"]
    assert (share.runs, share.met, dict(share.in_force)) == (4, 2, {"fail": 3, "warn": 1})
    assert board.health.status in ("amber", "red")  # a failed batch among the recent runs


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


def _artifact_verdicts() -> dict[str, str]:
    """batch id -> verdict line of its `cable-batch-quality` artifact version."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> list[str]:
        async with get_client() as client:
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cable-batch-quality"]))
            )
            return [str(a.description) for a in artifacts]

    verdicts = {}
    for text in asyncio.run(read()):
        for batch_id in BATCHES:
            if f"`{batch_id}`" in text:
                line = next(x for x in text.splitlines() if x.startswith("- verdict: "))
                verdicts[batch_id] = "passed" if line == "- verdict: passed" else "failed"
    return verdicts


def test_dashboard_data_docs_and_artifacts_agree_in_headless_chromium(lake: Path) -> None:
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    report = write_report(lake)
    assert report.stat().st_size < 1_000_000
    validations = read_quality_table(lake, "validations")
    batches = read_quality_table(lake, "batches")
    profiles = read_quality_table(lake, "profiles")
    assert validations is not None and batches is not None and profiles is not None
    recorded = {row["batch_id"]: row for row in batches.to_pylist()}
    docs = layout.quality_dir(lake) / "data_docs"

    ARTIFACTS.mkdir(exist_ok=True)
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_selector("#chart-matrix .main-svg", timeout=30_000)

            # Verdicts and rows per batch, as the batches table says.
            shown = {row[0]: row for row in _cells(page, "batches")}
            assert set(shown) == set(recorded)
            dashboard_verdicts = {}
            for batch_id, row in recorded.items():
                cells = shown[batch_id]
                assert [int(c) for c in cells[2:6]] == [
                    row["rows_in"],
                    row["rows_accepted"],
                    row["rows_dropped"],
                    row["rows_in"] if row["held_back"] else 0,
                ]
                dashboard_verdicts[batch_id] = cells[6]
                assert cells[8] == ", ".join(row["downgraded_expectations"])
            assert dashboard_verdicts == {r["batch_id"]: r["verdict"] for r in recorded.values()}
            assert shown[BATCHES[3]][8] == "batch_subject_share, batch_parse_warning_share"

            # Pass rate per expectation and the policies in force, from the validations table.
            per_rule = {row[0]: row for row in _cells(page, "expectations")}
            assert set(per_rule) == {rule.name for rule in RULES}
            for rule in RULES:
                runs = [r for r in validations.to_pylist() if r["expectation"] == rule.name]
                met = sum(r["success"] for r in runs)
                cells = per_rule[rule.name]
                assert cells[2] == rule.policy
                assert (int(cells[4]), int(cells[5])) == (len(runs), met), rule.name
                assert cells[6] == f"{100.0 * met / len(runs):.1f}"
                assert int(cells[7]) == sum(r["unexpected_count"] for r in runs)
            assert per_rule["batch_subject_share"][3] == "fail 3, warn 1"

            totals = _cells(page, "totals")[0]
            assert totals == ["4", "1", "50", "48", "2", "0", "48", "2", "1"]
            quarantine = _cells(page, "quarantine")
            (file_row,) = [row for row in quarantine if row[2] == "file"]
            assert file_row[3:5] == ["drop/junk.bin", "binary"]
            copy = page.eval_on_selector_all(
                "#quarantine a", "as => as.map(a => a.href).filter(h => h.endsWith('.src'))"
            )
            assert len(copy) == 1 and Path(copy[0].removeprefix("file://")).is_file()

            # Completeness and warning codes, from the profiles table.
            complete = {row[0]: row for row in _cells(page, "completeness")}
            for name in ("subject", "transmission_id"):
                filled = [
                    r for r in profiles.to_pylist() if r["kind"] == "field" and r["name"] == name
                ]
                assert int(complete[name][1]) == sum(r["count"] for r in filled)
            warned = {r[0]: int(r[1]) for r in _cells(page, "warnings")}
            assert warned == {"paragraph_number_repaired": 3 + 2 + 4 + 1}  # n % 5 == 0, kept rows

            status = page.inner_text("#status").lower()  # shown upper-case by the style
            assert status in ("amber", "red")
            hrefs: list[str] = page.eval_on_selector_all(
                "#batches a", "as => as.map(a => a.href).filter(h => h.endsWith('.html'))"
            )
            assert len(hrefs) == 4
            for chart in ("runs", "matrix", "days", "completeness", "warnings", "partitions"):
                assert page.locator(f"#chart-{chart} .main-svg").count() >= 1, chart
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

            # The Data Docs say the same verdict for each batch: its run page and the index.
            for batch_id, row in recorded.items():
                run_page = browser.new_page()
                run_page.goto((docs / row["data_docs_page"]).as_uri())
                header = run_page.inner_text("body")
                status_line = header.split("Status:", 1)[1].strip().splitlines()[0]
                expected = "Succeeded" if row["verdict"] == "passed" else "Failed"
                assert status_line.strip() == expected, batch_id
                assert f"batch {batch_id}" in header
                run_page.close()
            index = browser.new_page()
            index.goto((docs / "index.html").as_uri())
            index.wait_for_selector("table tbody tr td a", timeout=10_000)
            listed = index.eval_on_selector_all(
                "table tbody tr",
                "rows => rows.map(r => [r.innerText, !!r.querySelector('.text-danger')])",
            )
            index_verdicts = {
                batch_id: ("failed" if failed else "passed")
                for text, failed in listed
                for batch_id in BATCHES
                if batch_id in text
            }
            assert index_verdicts == dashboard_verdicts
            index.close()
        finally:
            browser.close()
    offline = [
        url for url in requests if not url.startswith(("file://", "data:", "blob:", "about:"))
    ]
    assert offline == [], f"the dashboard fetched from the network: {offline}"
    # And the Prefect artifacts of the same runs.
    assert _artifact_verdicts() == dashboard_verdicts


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
