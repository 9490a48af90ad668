import os
import subprocess
import sys

from cablestream.flows.memory import ARENA_ENV, ARENAS

_PROBE = (
    "import os; from cablestream.flows.memory import limit_malloc_arenas as limit;"
    f" print(limit(), os.environ.get({ARENA_ENV!r}))"
)


def _probe(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_arena_cap_is_set_here_and_for_the_processes_started_later() -> None:
    env = {k: v for k, v in os.environ.items() if k != ARENA_ENV}
    assert _probe(env) == f"True {ARENAS}"


def test_an_explicit_arena_setting_is_left_alone() -> None:
    assert _probe({**os.environ, ARENA_ENV: "8"}) == "False 8"
