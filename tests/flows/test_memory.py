import os
import subprocess
import sys

from cablestream.flows.memory import ARENA_ENV, ARENAS, ARROW_POOL, ARROW_POOL_ENV

_PROBE = (
    "import os; from cablestream.flows.memory import limit_malloc_arenas as limit;"
    f" print(limit(), os.environ.get({ARENA_ENV!r}))"
)
# As the CLI does it (flows/commands.prepare_prefect), then what pyarrow uses: here and in
# a process started afterwards.
_POOL_PROBE = (
    "import os, subprocess, sys; from cablestream.flows.memory import tune_allocators;"
    " tune_allocators(); import pyarrow as pa;"
    " started = subprocess.run([sys.executable, '-c', 'import pyarrow as pa;"
    " print(pa.default_memory_pool().backend_name)'], capture_output=True, text=True);"
    " print(pa.default_memory_pool().backend_name, started.stdout.strip())"
)


def _probe(env: dict[str, str], code: str = _PROBE) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_arena_cap_is_set_here_and_for_the_processes_started_later() -> None:
    env = {k: v for k, v in os.environ.items() if k != ARENA_ENV}
    assert _probe(env) == f"True {ARENAS}"


def test_an_explicit_arena_setting_is_left_alone() -> None:
    assert _probe({**os.environ, ARENA_ENV: "8"}) == "False 8"


def test_arrow_allocates_with_the_system_allocator_here_and_in_started_processes() -> None:
    env = {k: v for k, v in os.environ.items() if k != ARROW_POOL_ENV}
    assert _probe(env, _POOL_PROBE) == f"{ARROW_POOL} {ARROW_POOL}"


def test_an_explicit_arrow_pool_is_left_alone() -> None:
    assert _probe({**os.environ, ARROW_POOL_ENV: "mimalloc"}, _POOL_PROBE) == "mimalloc mimalloc"
