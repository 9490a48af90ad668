"""Split a decoded source into cable chunks (placeholder, being written)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CableChunk:
    text: str
    offset: int
    rendering: str
    warnings: list[str] = field(default_factory=list)


def split_cables(text: str, source_path: str = "") -> list[CableChunk]:
    return [CableChunk(text, 0, "telegram")]
