"""The one temp-then-rename write: readers see the old file or the whole new one, never half.

The temporary file sits beside its target (same folder, so the rename is atomic)
under a dot-name ending in `.tmp`, which every reader of the lake, the control
folder and the inbox skips.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomic(target: Path, write: Callable[[Path], object]) -> Path:
    """Write `target` by calling `write(temporary)`, then rename it into place; returns `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
