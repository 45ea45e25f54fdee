"""Reading a run's log files from an offset, for live tails that never re-send what the reader has.

Files are opened through ``engine.runs.artifacts`` (no links followed, no special files opened)."""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_amltrain.engine.runs.artifacts import RunFile, read_run_file

MAX_CHUNK = 256 * 1024


@dataclass(frozen=True)
class LogChunk:
    text: str
    offset: int       # where the next read starts
    size: int         # the file's size now


def read_from(file: RunFile, offset: int = 0, limit: int = MAX_CHUNK) -> LogChunk:
    """Complete lines after ``offset`` (a partial last line waits for its newline), at most ``limit`` bytes.
    An absent file reads as empty; a link or special file raises ``RunFileRefused``."""
    chunk = read_run_file(file, offset, limit)
    start = min(max(offset, 0), chunk.size)
    data = chunk.data
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) < limit:
        return LogChunk("", start, chunk.size)
    data = data[:cut] if cut else data
    return LogChunk(data.decode("utf-8", "replace"), start + len(data), chunk.size)


def read_rest(file: RunFile, offset: int, limit: int = MAX_CHUNK) -> LogChunk:
    """Whatever follows ``offset``, a last line without its newline too: for a log whose writer is done."""
    chunk = read_run_file(file, offset, limit)
    start = min(max(offset, 0), chunk.size)
    return LogChunk(chunk.data.decode("utf-8", "replace"), start + len(chunk.data), chunk.size)
