"""The dashboard after every pass (page rewritten, Prefect alert events), and serving it.

The page itself is `tasks/quality/dashboard.py`; this module adds what needs
Prefect (events an automation triggers on) or a server.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from cablestream.schemas import lake as layout
from cablestream.tasks.inbox.store import Inbox
from cablestream.tasks.lake.atomic import write_atomic
from cablestream.tasks.quality.dashboard import collect, write_board, write_report
from cablestream.tasks.quality.health import Health, Status, recovered, worsened

# --- after every pass: the page and the alerts --------------------------------------------

ALERTS_STATE = "alerts.json"
ALERT_EVENT = "cablestream.quality.alert"
RESOLVED_EVENT = "cablestream.quality.resolved"


def _alert_state(lake: Path) -> dict[str, Status]:
    path = layout.quality_dir(lake) / ALERTS_STATE
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in loaded.items() if v in ("green", "amber", "red")}


def _save_alert_state(lake: Path, health: Health) -> None:
    path = layout.quality_dir(lake) / ALERTS_STATE
    states = json.dumps({check.name: check.status for check in health.checks})
    write_atomic(path, lambda temporary: temporary.write_text(states, encoding="utf-8"))


def raise_alerts(lake: Path, health: Health, logger: Any) -> list[str]:
    """A Prefect event and a log line per check that got worse (or recovered) since last pass.

    The events (`cablestream.quality.alert` / `.resolved`, resource
    `cablestream.lake.<path>`) are what a Prefect automation triggers on; the
    lines go to the flow's log, which the watch service prints.
    """
    from prefect.events import emit_event

    previous = _alert_state(lake)
    lines: list[str] = []
    resource = {
        "prefect.resource.id": f"cablestream.lake.{lake.resolve()}",
        "prefect.resource.name": lake.name,
    }
    for check in worsened(previous, health):
        line = f"quality alert {check.status.upper()}: {check.message} ({check.threshold})"
        logger.warning(line)
        emit_event(
            event=ALERT_EVENT,
            resource=resource,
            payload={
                "check": check.name,
                "status": check.status,
                "value": check.value,
                "threshold": check.threshold,
                "message": check.message,
            },
        )
        lines.append(line)
    for check in recovered(previous, health):
        line = f"quality recovered: {check.name} is green again ({check.value})"
        logger.info(line)
        emit_event(
            event=RESOLVED_EVENT,
            resource=resource,
            payload={"check": check.name, "status": check.status, "value": check.value},
        )
        lines.append(line)
    _save_alert_state(lake, health)
    return lines


def refresh(lake: Path, inbox: Inbox | None, ledger_url: str | None, logger: Any) -> Status:
    """After a pass: rewrite the dashboard and raise alerts for checks that got worse.

    `ledger_url`: the pass's shared ledger (None: the lake's own), which says what is
    still waiting in the inbox.
    """
    board = collect(lake, inbox, ledger_url=ledger_url)
    write_board(board)
    raise_alerts(lake, board.health, logger)
    return board.health.status


# --- serving ------------------------------------------------------------------------------

# Pages older than this are regenerated when asked for (freshness moves with the clock).
SERVE_STALE_SECONDS = 10.0


def serve(lake: Path, inbox: Inbox | None, ledger_url: str | None, port: int) -> None:
    """Serve the dashboard, its Data Docs and the quarantined copies on 127.0.0.1 until Ctrl-C.

    Only the control folder's `quality/` and `quarantine/` are served (never the ledger).
    """
    import functools
    import time
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    control = layout.control_root(lake)
    report = layout.report_path(lake)
    report_url = "/" + report.relative_to(control).as_posix()
    served = (layout.QUALITY_DIR, layout.QUARANTINE_DIR)
    write_report(lake, inbox=inbox, ledger_url=ledger_url)

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                self.send_response(302)
                self.send_header("Location", report_url)
                self.end_headers()
                return
            top = path.lstrip("/").split("/", 1)[0]
            if top not in served or ".." in path.split("/"):
                self.send_error(404)
                return
            if path == report_url and time.time() - report.stat().st_mtime > SERVE_STALE_SECONDS:
                write_report(lake, inbox=inbox, ledger_url=ledger_url)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:  # quiet console
            return

    handler = functools.partial(Handler, directory=str(control))
    with ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        print(f"serving http://127.0.0.1:{server.server_port}{report_url} (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
