"""The allocators of a pass's processes: glibc's malloc arenas and Arrow's memory pool
(measured by bench/pass_memory.py and bench/release_run.py).

By default glibc gives threads up to 8 malloc arenas per core, and each arena keeps
memory it freed. Over a long pass (group threads, parse threads) the RSS crept up while
Python's objects and Arrow's pool stayed flat: `bench/pass_memory.py INBOX
--env-variant MALLOC_ARENA_MAX=2` on a 50k-cable generated inbox gave a peak of 871 MB
with glibc's default and 810 MB with 2 arenas, 795 vs 697 MB at the pass's end.

Arrow's own pool (mimalloc in the pyarrow wheels) keeps the pages a group freed for
itself, and glibc keeps those Python freed, so a worker process held both high-water
marks at once: the parse's records (Python) and the group's tables and Parquet buffers
(Arrow) did not share memory. With Arrow on the system allocator they do:
`bench/pass_memory.py INBOX --env-variant ARROW_DEFAULT_MEMORY_POOL=mimalloc`.

glibc then serves Arrow's big buffers too (a group's columns, a sorted copy, Parquet
pages). Past the first such buffer freed, glibc raises its mmap threshold to that size
(up to 32 MB) and its trim threshold to twice it, so the next ones come from the heap
and what they leave free stays in the process. A fixed threshold of 1 MiB keeps them
mapped apart and unmapped when freed: `bench/pass_memory.py INBOX --env-variant
MALLOC_MMAP_THRESHOLD_=33554432` compares with a threshold that high.
"""

from __future__ import annotations

import ctypes
import os

ARENA_ENV = "MALLOC_ARENA_MAX"
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)
MMAP_THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's name, trailing underscore included
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"
ARROW_POOL = "system"


def tune_allocators() -> None:
    """The settings below, before this process's threads start and pyarrow allocates."""
    limit_malloc_arenas()
    map_big_blocks_apart()
    arrow_on_the_system_allocator()


def limit_malloc_arenas() -> bool:
    """At most `ARENAS` malloc arenas in this process (from now on) and in the processes it
    starts (they read the variable at their start: the server, the warm worker, a pool).

    An explicit MALLOC_ARENA_MAX is left as it is. Returns whether the cap was set here.
    """
    return _glibc_setting(ARENA_ENV, _M_ARENA_MAX, ARENAS)


def map_big_blocks_apart() -> bool:
    """glibc's mmap threshold fixed at `MMAP_THRESHOLD` in this process (from now on) and in
    the processes it starts, unless MALLOC_MMAP_THRESHOLD_ is set (then it is theirs).

    Returns whether it was set here.
    """
    return _glibc_setting(MMAP_THRESHOLD_ENV, _M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _glibc_setting(env: str, parameter: int, value: int) -> bool:
    """glibc's malloc `parameter` set to `value` here (`mallopt`) and, through the variable
    `env`, in the processes this one starts, unless `env` is set already.

    False: set by the user, or not glibc (musl and macOS have no `mallopt`).
    """
    if env in os.environ:
        return False
    os.environ[env] = str(value)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(parameter, value))


def arrow_on_the_system_allocator() -> bool:
    """Arrow's default memory pool the system allocator (`ARROW_POOL`) in this process
    and in the processes it starts, unless ARROW_DEFAULT_MEMORY_POOL is set already.

    Arrow reads the variable when it first allocates, so this must come before
    pyarrow is used here (the CLI has not imported it yet); started processes read it
    at their start. Returns whether it set the variable.
    """
    if ARROW_POOL_ENV in os.environ:
        return False
    os.environ[ARROW_POOL_ENV] = ARROW_POOL
    return True
