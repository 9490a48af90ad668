"""glibc's malloc arenas for the processes of a pass (measured by bench/pass_memory.py).

By default glibc gives threads up to 8 malloc arenas per core, and each arena keeps
memory it freed. Over a long pass (group threads, parse threads) the RSS crept up while
Python's objects and Arrow's pool stayed flat: `bench/pass_memory.py INBOX
--env-variant MALLOC_ARENA_MAX=2` on a 50k-cable generated inbox gave a peak of 871 MB
with glibc's default and 810 MB with 2 arenas, 795 vs 697 MB at the pass's end.
"""

from __future__ import annotations

import ctypes
import os

ARENA_ENV = "MALLOC_ARENA_MAX"
ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc's malloc.h)


def limit_malloc_arenas() -> bool:
    """At most `ARENAS` malloc arenas in this process (from now on) and in the processes it
    starts (they read the variable at their start: the server, the warm worker, a pool).

    An explicit MALLOC_ARENA_MAX is left as it is. Returns whether the cap was set here
    (False: set by the user, or not glibc: musl and macOS have no `mallopt`).
    """
    if ARENA_ENV in os.environ:
        return False
    os.environ[ARENA_ENV] = str(ARENAS)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, ARENAS))
