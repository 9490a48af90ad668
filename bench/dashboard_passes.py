"""The dashboard after N watch passes: its size, its regeneration cost, a screenshot.

Run: `.venv/bin/python bench/dashboard_passes.py [--passes 20] [--files-per-pass 3]`

Each pass is what the watch service runs: one `ingest_flow` over the files that
landed since the last pass (a few real corpus files; pass 7 also drops a binary
file, pass 12 a file whose cables lost their subjects). The flow rewrites the
dashboard at its end. Afterwards the script measures, in this one run, the
time `write_report` takes against the median flow time of a pass (a ratio, not
a bare time), the page size and the shared asset size, and saves a full-page
screenshot taken in headless Debian chromium (bench/out/dashboard_passes.png).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus" / "files"
OUT = HERE / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--files-per-pass", type=int, default=3)
    args = parser.parse_args()

    from cablestream.flows.ingest import ingest_flow
    from cablestream.schemas import lake as layout
    from cablestream.tasks.quality.dashboard import write_report

    sources = sorted(CORPUS.iterdir())
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        inbox, lake = Path(tmp) / "inbox", Path(tmp) / "lake"
        inbox.mkdir()
        pass_seconds = []
        for number in range(args.passes):
            start = number * args.files_per_pass
            for source in sources[start : start + args.files_per_pass]:
                shutil.copy(source, inbox / source.name)
            if number == 7:
                (inbox / "junk.bin.txt").write_bytes(b"\x00\x01\x02 not a cable")
            if number == 12:
                plain = [source for source in sources if source.suffix == ".txt"][-1]
                text = "\n".join(
                    line
                    for line in plain.read_text(errors="replace").splitlines()
                    if not line.upper().startswith(("SUBJECT", "SUBJ"))
                )
                (inbox / "no-subject.txt").write_text(text)
            result = ingest_flow(inbox=str(inbox), lake=str(lake), settle_seconds=0)
            pass_seconds.append(result["seconds"])
            print(f"pass {number + 1}: {result['files']} files, {result['cables']} cables")

        started = time.perf_counter()
        report = write_report(lake, inbox=inbox)
        report_seconds = time.perf_counter() - started
        asset = layout.quality_dir(lake) / "assets" / "plotly.min.js"
        figures = {
            "passes": args.passes,
            "median_pass_seconds": round(statistics.median(pass_seconds), 3),
            "write_report_seconds": round(report_seconds, 3),
            "report_vs_pass": round(report_seconds / statistics.median(pass_seconds), 3),
            "report_bytes": report.stat().st_size,
            "shared_asset_bytes": asset.stat().st_size,
        }
        print(json.dumps(figures, indent=2))
        (OUT / "dashboard_passes.json").write_text(json.dumps(figures, indent=2) + "\n")

        from playwright.sync_api import sync_playwright

        chromium = shutil.which("chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(report.as_uri())
            page.wait_for_selector("#chart-matrix .main-svg", timeout=30_000)
            page.screenshot(path=str(OUT / "dashboard_passes.png"), full_page=True)
            browser.close()
        print(f"screenshot: {OUT / 'dashboard_passes.png'}")


if __name__ == "__main__":
    main()
