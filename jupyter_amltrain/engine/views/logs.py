"""Reading a run's log files from an offset, for live tails that never re-send what the reader has."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_CHUNK = 256 * 1024


@dataclass(frozen=True)
class LogChunk:
    text: str
    offset: int       # where the next read starts
    size: int         # the file's size now


def read_from(path: Path, offset: int = 0, limit: int = MAX_CHUNK) -> LogChunk:
    """Complete lines after ``offset`` (a partial last line waits for its newline), at most ``limit`` bytes."""
    if not path.exists():
        return LogChunk("", offset, 0)
    size = path.stat().st_size
    start = min(max(offset, 0), size)
    with open(path, "rb") as handle:
        handle.seek(start)
        data = handle.read(min(limit, size - start))
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) < limit:
        return LogChunk("", start, size)
    data = data[:cut] if cut else data
    return LogChunk(data.decode("utf-8", "replace"), start + len(data), size)
