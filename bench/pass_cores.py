"""Both cores in a pass: file groups on the flow's threads against worker processes, one run.

Run: `.venv/bin/python bench/pass_cores.py --inbox DIR [--inbox DIR ...]`
(e.g. an inbox made by `bench/generate_corpus.py --cables 25000 --out DIR`: its `files/`)

For each inbox, in one run against one local Prefect server the bench starts (and stops):

- one-core parse-only: `parse_source` over every file in this process (release_run);
- `cablestream ingest` end to end (validation on) as a subprocess, once per runner
  (`CABLESTREAM_GROUP_RUNNER=threads`, then `processes`), each into a fresh lake: cables/s
  over the flow's time, CPU of the pass's process tree, peak RSS of the whole tree (the
  flow's process and its worker processes, sampled every 0.2 s), the largest process's,
  every cable exactly once (the same record_ids as the parse-only pass);
- the machine's 1-minute load (`os.getloadavg`) before and after each figure: it is shared.

Printed: a table per inbox and the ratios processes / threads and end to end / parse-only;
the JSON goes to bench/out/pass_cores.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import release_run  # bench/, beside this script

from cablestream.flows import server

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNNERS = ("threads", "processes")
SHOWN = (
    "files",
    "cables_parsed",
    "every_cable_once",
    "batches",
    "flow_s",
    "cables_per_s",
    "cpu_s",
    "cpu_s_flow_process",
    "cores_busy",
    "peak_rss_mb",
    "peak_rss_mb_one_process",
    "peak_rss_mb_flow_process",
    "processes",
    "load_before_after",
)


def compare(inbox: Path, work: Path, runners: list[str]) -> dict[str, Any]:
    parsed = release_run.parse_only(inbox)
    ids = parsed.pop("ids")
    report: dict[str, Any] = {"inbox": str(inbox), "parse_only_one_core": parsed}
    for runner in runners:
        lake = work / f"{inbox.name}-{runner}-lake"
        result = release_run.end_to_end(inbox, lake, runner)
        release_run.exactly_once(result, lake, ids)
        result["vs_parse_only"] = round(result["cables_per_s"] / parsed["cables_per_s"], 2)
        report[runner] = result
    if all(name in report for name in RUNNERS):
        threads, processes = report["threads"], report["processes"]
        report["processes_vs_threads_cables_per_s"] = round(
            processes["cables_per_s"] / threads["cables_per_s"], 2
        )
        report["processes_vs_threads_peak_rss"] = round(
            processes["peak_rss_mb"] / threads["peak_rss_mb"], 2
        )
    return report


def print_report(report: dict[str, Any], runners: list[str]) -> None:
    parsed = report["parse_only_one_core"]
    print(
        f"\n{report['inbox']}: one-core parse-only {parsed['cables_per_s']} cables/s "
        f"(load {parsed['load_before_after']})"
    )
    print(f"{'':26}" + "".join(f"{name:>16}" for name in runners))
    for key in (*SHOWN, "vs_parse_only"):
        print(f"{key:26}" + "".join(f"{report[name].get(key)!s:>16}" for name in runners))
    for key in ("processes_vs_threads_cables_per_s", "processes_vs_threads_peak_rss"):
        if key in report:
            print(f"{key}: {report[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, action="append", required=True)
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    args = parser.parse_args()
    reports = []
    with tempfile.TemporaryDirectory(prefix="cablestream-pass-cores-") as tmp:
        work = Path(tmp)
        os.environ.update(
            CABLESTREAM_HOME=str(work / "home"),
            CABLESTREAM_SERVER_PORT=str(_free_port()),
            PREFECT_HOME=str(work / "home" / "prefect"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        os.environ[server.WORKER_ENV] = "off"
        os.environ["PREFECT_API_URL"] = server.start().url
        try:
            for inbox in args.inbox:
                reports.append(compare(inbox, work, args.runners))
                print_report(reports[-1], args.runners)
        finally:
            server.stop()
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "pass_cores.json").write_text(json.dumps(reports, indent=2) + "\n")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    main()
