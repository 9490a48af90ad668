"""The parse budget: patterns compiled by `guard.compile` stop when it is spent."""

import threading
import time
from collections.abc import Callable

import pytest

from cablestream.tasks.parse import guard

# Nested quantifiers over blanks: exponential backtracking on a blank run with no `x`.
SLOW = guard.compile(r"(?:[ \t]+x|[ \t.,])+$")
SLOW_INPUT = " " * 20_000 + "y"


def _spend_cpu(seconds: float) -> None:
    """Busy this thread for `seconds` of its CPU time (the clock the budget counts)."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


def test_without_a_budget_patterns_run_unbounded_and_nothing_is_left() -> None:
    assert guard.remaining() is None
    assert guard.compile(r"b+").search("aabbb") is not None


def test_a_slow_pattern_stops_at_the_budget() -> None:
    started = time.perf_counter()
    with pytest.raises(guard.ParseTimeout), guard.time_budget(0.2):
        SLOW.search(SLOW_INPUT)
    # The regex module checks its clock now and then: it overshoots a little, never by minutes.
    assert time.perf_counter() - started < 5


def test_a_spent_budget_stops_the_next_call_at_once() -> None:
    with guard.time_budget(0.05):
        _spend_cpu(0.06)
        with pytest.raises(guard.ParseTimeout):
            guard.compile("a").sub("b", "a" * (guard.UNTIMED_LENGTH + 1))


def test_calls_on_short_strings_run_without_the_timeout() -> None:
    """A line or a field: a linear pattern over it costs microseconds, less than the timeout."""
    with guard.time_budget(0.05):
        _spend_cpu(0.06)
        assert guard.compile("a").sub("b", "a" * guard.UNTIMED_LENGTH) == "b" * guard.UNTIMED_LENGTH


def test_an_inner_budget_never_extends_the_outer_one() -> None:
    with guard.time_budget(0.5), guard.time_budget(60):
        left = guard.remaining()
        assert left is not None
        assert left <= 0.5
    assert guard.remaining() is None


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda p: p.search("xaby", 1).span(), (1, 3)),
        (lambda p: p.match("xaby", 1).span(), (1, 3)),
        (lambda p: p.fullmatch("ab"), "ab"),
        (lambda p: [m.span() for m in p.finditer("abxab")], [(0, 2), (3, 5)]),
        (lambda p: p.findall("abxab", 0, 4), ["ab"]),
        (lambda p: p.sub("-", "abxab"), "-x-"),
        (lambda p: p.subn("-", "abxab", 1), ("-xab", 1)),
    ],
)
def test_guarded_pattern_methods_mirror_the_compiled_pattern(
    call: Callable[[guard.Pattern], object], expected: object
) -> None:
    pattern = guard.compile("ab")
    result = call(pattern)
    assert (result.group(0) if hasattr(result, "group") else result) == expected


def test_finditer_is_lazy_and_checks_the_budget_between_matches() -> None:
    pattern = guard.compile("a")
    with guard.time_budget(0.05):
        matches = pattern.finditer("a" * (guard.UNTIMED_LENGTH + 1))
        assert next(matches).span() == (0, 1)
        _spend_cpu(0.06)
        with pytest.raises(guard.ParseTimeout):
            next(matches)


def test_waiting_does_not_spend_the_budget() -> None:
    """Time asleep, or waiting for the GIL held by a busy thread, is not the parse's cost."""
    busy = threading.Thread(target=_spend_cpu, args=(0.3,))
    with guard.time_budget(0.1):
        busy.start()
        time.sleep(0.3)
        busy.join()
        left = guard.remaining()
        assert left is not None and left > 0.05
