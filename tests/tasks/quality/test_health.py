"""Health checks against thresholds, and the alerts raised when one gets worse."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cablestream.tasks.quality.health import RecentRun, Thresholds, assess

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def run(
    minutes_ago: float, verdict: str = "passed", quarantined: int = 0, **met: bool
) -> RecentRun:
    return RecentRun(NOW - timedelta(minutes=minutes_ago), verdict, 10, quarantined, met)


def statuses(runs: list[RecentRun], backlog: int = 0, **limits: float) -> dict[str, str]:
    health = assess(runs, backlog, NOW, Thresholds(**limits))  # type: ignore[arg-type]
    return {check.name: check.status for check in health.checks}


def test_a_warn_rule_is_amber_at_worst() -> None:
    """A `warn` rule reports (another rendering of a cable already in the lake), no alarm."""
    half = [run(i, rule=i % 2 == 0) for i in range(10)]
    assert statuses(half)["pass_rate:rule"] == "red"
    warned = [RecentRun(r.ran_at, r.verdict, 10, 0, r.met, frozenset({"rule"})) for r in half]
    assert statuses(warned)["pass_rate:rule"] == "amber"
    # In force as `drop` or `fail` in any recent run: red again.
    assert statuses([*warned[:-1], half[-1]])["pass_rate:rule"] == "red"


def test_clean_recent_runs_are_green() -> None:
    health = assess([run(5, rule=True), run(1, rule=True)], 0, NOW, Thresholds())
    assert health.status == "green" and health.crossed == []


def test_each_threshold_turns_its_check_amber_then_red() -> None:
    nine_of_ten = [run(i, rule=i != 3) for i in range(10)]
    assert statuses(nine_of_ten)["pass_rate:rule"] == "amber"
    assert statuses(nine_of_ten, pass_rate_red=0.95)["pass_rate:rule"] == "red"
    assert statuses([run(1, quarantined=1)])["quarantine_share"] == "amber"  # 10%
    assert statuses([run(1, quarantined=3)])["quarantine_share"] == "red"
    assert statuses([run(2, "failed"), run(1)])["failed_batches"] == "amber"
    assert statuses([run(3, "failed")] * 3)["failed_batches"] == "red"
    # Freshness only counts while files wait.
    assert statuses([run(90)], backlog=0)["freshness"] == "green"
    assert statuses([run(30)], backlog=2)["freshness"] == "amber"
    assert statuses([run(90)], backlog=2)["freshness"] == "red"
    # Only the last `window_runs` runs count.
    assert statuses([run(9, "failed"), run(1)], window_runs=1)["failed_batches"] == "green"


def test_thresholds_from_the_environment() -> None:
    limits = Thresholds.from_env({"CABLESTREAM_ALERT_STALE_MINUTES_RED": "5"})
    assert limits.stale_minutes_red == 5.0 and limits.window_runs == 20
    with pytest.raises(ValueError, match="CABLESTREAM_ALERT_WINDOW_RUNS"):
        Thresholds.from_env({"CABLESTREAM_ALERT_WINDOW_RUNS": "many"})


def test_alerts_fire_once_when_a_check_gets_worse_and_when_it_recovers(
    prefect_harness: str, tmp_path: Path
) -> None:
    from prefect import flow

    from cablestream.flows.dashboard import raise_alerts

    lake = tmp_path / "lake"
    lake.mkdir()
    bad = assess([run(1, "failed")] * 3, 0, NOW, Thresholds())
    good = assess([run(1)], 0, NOW, Thresholds())
    logger = logging.getLogger("cablestream.test.alerts")
    logger.setLevel(logging.INFO)
    levels: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: levels.append(record.levelname)  # type: ignore[method-assign]
    logger.addHandler(handler)

    @flow
    def passes() -> list[list[str]]:
        return [raise_alerts(lake, h, logger) for h in (bad, bad, good)]

    try:
        first, second, third = passes()
    finally:
        logger.removeHandler(handler)
    assert first == [
        "quality alert RED: 3 of the last 3 batches failed a `fail` rule (amber >= 1, red >= 3)"
    ]
    assert second == []  # still red: no new alert
    assert third == ["quality recovered: failed_batches is green again (0 of 1 runs)"]
    assert levels == ["WARNING", "INFO"]  # the lines the watch log shows
