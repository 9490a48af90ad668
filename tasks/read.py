"""Read one inbox file with a size cap and hash it (the bytes the ledger keys on)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceBytes:
    """A file's content hash, and its bytes unless it could not or should not be read.

    `failure` is a quarantine reason code: `oversized` (bytes not kept, hash of the
    whole file) or `unreadable` (no hash of the content exists: `sha256` is a
    stand-in derived from path, size and mtime so the ledger can still key it).
    """

    sha256: str
    size: int
    data: bytes | None
    failure: str | None = None
    detail: str = ""


def read_source(path: Path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SourceBytes:
    """Read and hash `path`; never raises on I/O errors."""
    digest = hashlib.sha256()
    kept = bytearray()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if size <= max_bytes:
                    kept += chunk
    except OSError as error:
        stand_in = hashlib.sha256(f"unreadable:{path}:{error.errno}".encode()).hexdigest()
        return SourceBytes(stand_in, size, None, "unreadable", f"{type(error).__name__}: {error}")
    if size > max_bytes:
        return SourceBytes(
            digest.hexdigest(),
            size,
            None,
            "oversized",
            f"{size} bytes is over the {max_bytes}-byte cap",
        )
    return SourceBytes(digest.hexdigest(), size, bytes(kept))
