"""One-line causes for the faults an operator must fix (disk full, read-only, a held lock).

The CLI prints `one_line_cause(error)` instead of a traceback (`-v` shows it).
SQLite words a full disk as "database or disk is full" or, in WAL mode, as
"disk I/O error"; both are named for what they are when the disk is in fact full.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

_ERRNO_CAUSES = {
    errno.ENOSPC: "disk full (ENOSPC: no space left on device)",
    errno.EDQUOT: "disk quota exceeded (EDQUOT)",
    errno.EROFS: "read-only filesystem (EROFS)",
    errno.EACCES: "permission denied (EACCES)",
    errno.EPERM: "operation not permitted (EPERM)",
    errno.ENAMETOOLONG: "path too long (ENAMETOOLONG)",
}


def _disk_full(where: Path | None) -> bool:
    if where is None:
        return False
    try:
        return shutil.disk_usage(where).free < 1024 * 1024
    except OSError:
        return False


def one_line_cause(error: BaseException, where: Path | None = None) -> str:
    """What went wrong, in one line, naming the file when the error does.

    `where` is a folder the run writes to (the lake's control folder): it tells a
    full disk behind SQLite's vaguer messages.
    """
    if isinstance(error, OSError) and error.errno in _ERRNO_CAUSES:
        name = f": {os.fsdecode(error.filename)}" if error.filename else ""
        return f"{_ERRNO_CAUSES[error.errno]}{name}"
    if isinstance(error, sqlite3.OperationalError):
        text = str(error)
        if "locked" in text or "busy" in text:
            return f"the ledger is locked by another process and stayed locked ({text})"
        if "readonly" in text or "read-only" in text:
            return f"the ledger is on a read-only filesystem or file ({text})"
        if "full" in text or _disk_full(where):
            return f"disk full (ENOSPC) writing the ledger ({text})"
        return f"ledger error: {text}"
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
