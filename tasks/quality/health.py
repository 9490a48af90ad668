"""Health of a lake from its quality tables: red/amber/green checks against thresholds.

The dashboard shows the status at the top; the ingest flow raises an alert (a
Prefect event and a warning line in the log) when a check gets worse. Both
use `assess`, so the page and the alerts never disagree.

Thresholds come from `CABLESTREAM_ALERT_*` environment variables (the field
names below in upper case), else the defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Literal

Status = Literal["green", "amber", "red"]
_RANK: dict[Status, int] = {"green": 0, "amber": 1, "red": 2}
THRESHOLDS_ENV_PREFIX = "CABLESTREAM_ALERT_"


@dataclass(frozen=True, slots=True)
class Thresholds:
    # Rates are taken over this many most recent validation runs.
    window_runs: int = 20
    # An expectation met in a smaller share of the recent runs is amber / red.
    pass_rate_amber: float = 0.95
    pass_rate_red: float = 0.80
    # Share of the recent runs' rows (rows in) that went to the quarantine.
    quarantine_share_amber: float = 0.05
    quarantine_share_red: float = 0.20
    # Recent runs whose batch failed a `fail` rule (written, flagged).
    failed_batches_amber: int = 1
    failed_batches_red: int = 3
    # Files are waiting and no batch passed for this many minutes.
    stale_minutes_amber: float = 15.0
    stale_minutes_red: float = 60.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Thresholds:
        """Defaults, overridden by `CABLESTREAM_ALERT_<FIELD>` variables."""
        source = os.environ if environ is None else environ
        values: dict[str, float | int] = {}
        for item in fields(cls):
            raw = source.get(THRESHOLDS_ENV_PREFIX + item.name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[item.name] = int(raw) if item.type in ("int", int) else float(raw)
            except ValueError as error:
                raise ValueError(
                    f"{THRESHOLDS_ENV_PREFIX}{item.name.upper()}={raw!r} is not a number"
                ) from error
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Check:
    name: (
        str  # stable: `pass_rate:<expectation>`, `quarantine_share`, `failed_batches`, `freshness`
    )
    status: Status
    value: str
    threshold: str
    message: str


@dataclass(frozen=True, slots=True)
class RecentRun:
    """What `assess` needs of one validation run."""

    ran_at: datetime
    verdict: str
    rows_in: int
    rows_quarantined: int
    # expectation name -> met in this run
    met: dict[str, bool]
    # expectations in force as `warn` in this run (they report, they never turn a lake red)
    warn_only: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Health:
    status: Status
    checks: list[Check]

    @property
    def crossed(self) -> list[Check]:
        return [check for check in self.checks if check.status != "green"]


def _worst(statuses: list[Status]) -> Status:
    return max(statuses, key=lambda status: _RANK[status], default="green")


def _below(value: float, amber: float, red: float) -> Status:
    return "red" if value < red else "amber" if value < amber else "green"


def _above(value: float, amber: float, red: float) -> Status:
    return "red" if value > red else "amber" if value > amber else "green"


def assess(
    runs: list[RecentRun],
    backlog_files: int,
    now: datetime,
    thresholds: Thresholds,
) -> Health:
    """The checks over the last `window_runs` runs (`runs` oldest first) and the inbox backlog."""
    recent = runs[-thresholds.window_runs :]
    checks: list[Check] = []

    names = sorted({name for run in recent for name in run.met})
    for name in names:
        judged = [run.met[name] for run in recent if name in run.met]
        rate = sum(judged) / len(judged)
        rate_status = _below(rate, thresholds.pass_rate_amber, thresholds.pass_rate_red)
        if rate_status == "red" and all(name in r.warn_only for r in recent if name in r.met):
            rate_status = (
                "amber"  # a warn rule reports (another rendering of a cable ...), no alarm
            )
        checks.append(
            Check(
                f"pass_rate:{name}",
                rate_status,
                f"{100 * rate:.0f}% of {len(judged)} runs",
                f"amber < {100 * thresholds.pass_rate_amber:.0f}%, "
                f"red < {100 * thresholds.pass_rate_red:.0f}%",
                f"expectation {name} met in {100 * rate:.0f}% of the last {len(judged)} runs",
            )
        )

    rows_in = sum(run.rows_in for run in recent)
    quarantined = sum(run.rows_quarantined for run in recent)
    share = quarantined / rows_in if rows_in else 0.0
    checks.append(
        Check(
            "quarantine_share",
            _above(share, thresholds.quarantine_share_amber, thresholds.quarantine_share_red),
            f"{100 * share:.1f}% ({quarantined} of {rows_in} rows)",
            f"amber > {100 * thresholds.quarantine_share_amber:.0f}%, "
            f"red > {100 * thresholds.quarantine_share_red:.0f}%",
            f"{quarantined} of the last {len(recent)} runs' {rows_in} rows were quarantined",
        )
    )

    failed = sum(run.verdict == "failed" for run in recent)
    failed_status: Status = (
        "red"
        if failed >= thresholds.failed_batches_red
        else "amber"
        if failed >= thresholds.failed_batches_amber
        else "green"
    )
    checks.append(
        Check(
            "failed_batches",
            failed_status,
            f"{failed} of {len(recent)} runs",
            f"amber >= {thresholds.failed_batches_amber}, red >= {thresholds.failed_batches_red}",
            f"{failed} of the last {len(recent)} batches failed a `fail` rule",
        )
    )

    good = [run.ran_at for run in runs if run.verdict == "passed"]
    minutes = (now - max(good)).total_seconds() / 60 if good else None
    status: Status
    if backlog_files == 0:
        status, value = "green", "no file waiting"
    elif minutes is None:
        status, value = "amber", f"{backlog_files} files waiting, no batch passed yet"
    else:
        status = _above(minutes, thresholds.stale_minutes_amber, thresholds.stale_minutes_red)
        value = f"{backlog_files} files waiting, last good batch {minutes:.0f} min ago"
    checks.append(
        Check(
            "freshness",
            status,
            value,
            f"files waiting and no good batch for amber > {thresholds.stale_minutes_amber:g} "
            f"min, red > {thresholds.stale_minutes_red:g} min",
            f"freshness: {value}",
        )
    )
    return Health(status=_worst([check.status for check in checks]), checks=checks)


def worsened(previous: dict[str, Status], health: Health) -> list[Check]:
    """Checks whose status is worse than in `previous` (by check name; unknown = green)."""
    return [
        check
        for check in health.checks
        if _RANK[check.status] > _RANK[previous.get(check.name, "green")]
    ]


def recovered(previous: dict[str, Status], health: Health) -> list[Check]:
    """Checks back to green that were amber or red in `previous`."""
    return [
        check
        for check in health.checks
        if check.status == "green" and previous.get(check.name, "green") != "green"
    ]
