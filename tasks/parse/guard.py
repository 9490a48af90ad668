"""A time budget for one parse, and compiled patterns that stop when it runs out.

Every pattern over cable text is written to run in linear time (bounded repeats,
line-anchored scans, literal pre-checks). The budget is the last guard against one
that is not: a pattern call made by `compile` carries the `regex` module's timeout,
set to what is left of the budget of the parse in progress, so a pathological input
ends the parse with `ParseTimeout` (the file goes to quarantine) instead of hanging
a worker. Outside a budget, patterns run without a timeout.

Calls on short strings (a line, a field) run on the standard library's `re`, which
costs a third of `regex`'s time per call; they need no timeout (see UNTIMED_LENGTH).

The budget lives in a context variable: parses in different threads (Prefect task
runners) each have their own. It counts the parsing thread's CPU time, not the clock:
time spent waiting for a core or for the GIL (other parse threads, a loaded machine)
must not turn a cable into `parse_timeout`, or the lake would depend on the load.
The `regex` timeout, which is wall-clock, is given what is left of it: a call runs
without the GIL, so on a loaded machine it can only stop later than its CPU share.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeAlias

import regex

_deadline: ContextVar[float | None] = ContextVar("cablestream_parse_deadline", default=None)


class ParseTimeout(TimeoutError):
    """The parse in progress ran past its time budget."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Run the block under a budget of `seconds` (nested budgets keep the earlier deadline)."""
    deadline = _thread_cpu() + seconds
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget (None outside one); raises ParseTimeout when spent."""
    deadline = _deadline_get()
    if deadline is None:
        return None
    left = deadline - _thread_cpu()
    if left <= 0:
        raise ParseTimeout("parse ran past its time budget")
    return left


# Bound once: a parse makes hundreds of pattern calls per cable, each asking for its timeout.
_deadline_get = _deadline.get
_thread_cpu = time.thread_time


# Calls on strings up to this length (or on a window of one, between pos and endpos) run
# without the timeout. Every pattern here is written to run in linear time, so one over a
# line, a field or a window costs microseconds even when it is wrong; the timeout itself
# costs about a microsecond a call (as much as most line-level matches), and the parser
# makes hundreds of such calls per cable. Calls over longer strings (a cable's text or
# region, a long line) carry it.
UNTIMED_LENGTH = 1_000

# A match of either engine: both offer what the parser uses (groups, spans, `m["name"]`).
Match: TypeAlias = "regex.Match[str] | re.Match[str]"
_TO_END = sys.maxsize


class Pattern:
    """A compiled pattern whose calls time out with the current parse budget.

    The methods mirror the compiled pattern's (string, pos, endpos). Calls on strings
    over UNTIMED_LENGTH run on `regex` with the budget's timeout (its TimeoutError
    becomes ParseTimeout); calls on shorter ones run untimed on `re`, compiled from the
    same pattern. The two engines read this parser's patterns alike: on both corpora
    every field of every record is the same with either. A pattern only `regex` reads
    (a variable-width look-behind, a group name used twice) runs on `regex` for both.
    """

    __slots__ = ("compiled", "short")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.compiled = regex.compile(pattern, flags)
        self.short: regex.Pattern[str] | re.Pattern[str]
        try:
            self.short = re.compile(pattern, flags)
        except re.error:
            self.short = self.compiled

    @property
    def pattern(self) -> str:
        return str(self.compiled.pattern)

    def made(self, match: Match) -> bool:
        """Whether this pattern found `match`."""
        return match.re is self.compiled or match.re is self.short

    def search(self, string: str, pos: int = 0, endpos: int = _TO_END) -> Match | None:
        if len(string) <= UNTIMED_LENGTH or endpos - pos <= UNTIMED_LENGTH:
            return self.short.search(string, pos, endpos)
        try:
            return self.compiled.search(string, pos, endpos, timeout=remaining())
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def match(self, string: str, pos: int = 0, endpos: int = _TO_END) -> Match | None:
        if len(string) <= UNTIMED_LENGTH or endpos - pos <= UNTIMED_LENGTH:
            return self.short.match(string, pos, endpos)
        try:
            return self.compiled.match(string, pos, endpos, timeout=remaining())
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def fullmatch(self, string: str, pos: int = 0, endpos: int = _TO_END) -> Match | None:
        if len(string) <= UNTIMED_LENGTH or endpos - pos <= UNTIMED_LENGTH:
            return self.short.fullmatch(string, pos, endpos)
        try:
            return self.compiled.fullmatch(string, pos, endpos, timeout=remaining())
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def finditer(self, string: str, pos: int = 0, endpos: int = _TO_END) -> Iterator[Match]:
        """Matches one by one, so a caller that stops early scans no further.

        The `regex` timeout counts per step, not from the first one: the budget is
        checked again between matches.
        """
        if len(string) <= UNTIMED_LENGTH:
            yield from self.short.finditer(string, pos, endpos)
            return
        matches = self.compiled.finditer(string, pos, endpos, timeout=remaining())
        while True:
            try:
                match = next(matches)
            except StopIteration:
                return
            except TimeoutError as error:
                raise ParseTimeout(str(error)) from None
            yield match
            remaining()

    def all_matches(self, string: str, pos: int = 0, endpos: int = _TO_END) -> list[Match]:
        """Every match, in one call: cheaper than `finditer` when the caller wants them all
        (the budget is checked before the scan, each step of it carries the timeout)."""
        if len(string) <= UNTIMED_LENGTH:
            return list(self.short.finditer(string, pos, endpos))
        try:
            return list(self.compiled.finditer(string, pos, endpos, timeout=remaining()))
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def findall(self, string: str, pos: int = 0, endpos: int = _TO_END) -> list[Any]:
        if len(string) <= UNTIMED_LENGTH:
            return self.short.findall(string, pos, endpos)
        try:
            return list(self.compiled.findall(string, pos, endpos, timeout=remaining()))
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def split(self, string: str, maxsplit: int = 0) -> list[str | Any]:
        if len(string) <= UNTIMED_LENGTH:
            return self.short.split(string, maxsplit)
        try:
            return list(self.compiled.split(string, maxsplit, timeout=remaining()))
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def sub(self, replacement: str | Callable[[Match], str], string: str, count: int = 0) -> str:
        if len(string) <= UNTIMED_LENGTH:
            return self.short.sub(replacement, string, count)
        try:
            return str(self.compiled.sub(replacement, string, count, timeout=remaining()))
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None

    def subn(
        self, replacement: str | Callable[[Match], str], string: str, count: int = 0
    ) -> tuple[str, int]:
        if len(string) <= UNTIMED_LENGTH:
            return self.short.subn(replacement, string, count)
        try:
            text, number = self.compiled.subn(replacement, string, count, timeout=remaining())
        except TimeoutError as error:
            raise ParseTimeout(str(error)) from None
        return str(text), int(number)


def compile(pattern: str, flags: int = 0) -> Pattern:
    """Compile a pattern whose calls respect the parse budget."""
    return Pattern(pattern, flags)
