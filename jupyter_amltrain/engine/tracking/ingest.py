"""Apply a job's tracking events (``tracking/events.jsonl``) to the store, each line exactly once.

The byte offset read so far lives in ``ingest_offsets``. One call reads the complete new lines (bounded, with
no transaction open: the file is the job's, see ``_read_new``), then applies them and moves the offset in one
``BEGIN IMMEDIATE`` transaction. Two processes ingesting the same run at once (a supervisor and a notebook
asking for metrics) serialize on the lock, and the second applies only the lines beyond the first's offset:
nothing is applied twice or lost. A trailing line without its newline is being written right now; it stays for
the next call.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.runs.artifacts import RunFile, RunFileError, RunFileMissing, open_run_file
from jupyter_amltrain.engine.runtime.values import (
    KINDS,
    MetricValueError,
    check_description,
    check_name,
    check_step,
    tag_value,
    validate,
)
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.tracking.record import (
    insert_metric,
    log_to_store,
    merge_properties,
    merge_tags,
    require_run,
)

# log_to_store lives in record; it is re-exported here for callers that import it from this module.
__all__ = ["ingest_events", "log_to_store"]

# Bounds memory per call; a larger backlog is taken by the next call.
MAX_BYTES_PER_CALL = 32 * 1024 * 1024


class _Malformed(Exception):
    pass


def _refuse(message: str) -> None:
    # Events were validated in the job; anything that still needs repr() was not written by our runtime.
    raise MetricValueError(message)


def _text(event: dict[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str):
        raise _Malformed(f"{field!r} must be a string, got {value!r}")
    return value


def _apply(db: sqlite3.Connection, run_id: str, event: Any, next_seq: dict[str, int]) -> None:
    if not isinstance(event, dict):
        raise _Malformed("not a JSON object")
    op = event.get("op")
    if op == "metric":
        kind = _text(event, "kind")
        if kind not in KINDS:
            raise _Malformed(f"unknown metric kind {kind!r}")
        name = check_name(event.get("name"))
        value = validate(kind, name, event.get("value"), warn=_refuse)
        step = check_step(name, event.get("step"))
        at = event.get("t")
        at = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else time.time()
        insert_metric(db, run_id, name, kind, value, step, check_description(event.get("description")), at,
                      next_seq)
    elif op == "tag":
        merge_tags(db, run_id, {_text(event, "key"): tag_value(event.get("value"))})
    elif op == "property":
        for message in merge_properties(db, run_id, {_text(event, "key"): tag_value(event.get("value"))}):
            warnings.warn(message, stacklevel=4)
    elif op == "file":
        # The job already put the file in the run folder; the event only records that it was uploaded.
        _text(event, "name")
        _text(event, "source")
    else:
        raise _Malformed(f"unknown op {op!r}")


@dataclass(frozen=True)
class _Read:
    """What one call read of the job's event file, before any transaction is taken."""

    offset: int  # where the read started (the stored offset then)
    data: bytes  # complete lines only (a longer-than-the-limit line is cut)


def _read_new(events_path: Path, offset: int, on_refused: Callable[[str], None] | None) -> _Read | None:
    """The bytes after ``offset`` (at most ``MAX_BYTES_PER_CALL``), or None when there is nothing to apply.

    The file is the job's: it is opened the way every run file is (engine.runs.artifacts: no link followed,
    ``O_NONBLOCK`` so a FIFO cannot hang the supervisor, only a regular file read), and never while the
    store's write lock is held: a file that made ``open()`` or ``read()`` wait would stop every process of the
    workspace."""
    try:
        with open_run_file(RunFile.in_folder(events_path.parent, events_path.name)) as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:
                warnings.warn(
                    f"{events_path} is shorter ({size} bytes) than what was already read ({offset}); it "
                    "was replaced or truncated, so its events are not read again. Do not edit events.jsonl.",
                    stacklevel=3,
                )
                return None
            f.seek(offset)
            data = f.read(MAX_BYTES_PER_CALL)
    except RunFileMissing:
        return None
    except RunFileError as refusal:  # a link, FIFO, device or socket in its place: its events are lost
        message = f"The job's tracking events were not read: {refusal}"
        if on_refused is not None:
            on_refused(message)
        else:
            warnings.warn(message, stacklevel=3)
        return None
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == MAX_BYTES_PER_CALL:
        warnings.warn(f"{events_path}: skipping a line longer than {MAX_BYTES_PER_CALL} bytes at byte "
                      f"{offset}.", stacklevel=3)
        end = len(data)
    return _Read(offset, data[:end]) if end else None


def ingest_events(store: Store, run_id: str, events_path: Path, *,
                  on_refused: Callable[[str], None] | None = None) -> int:
    """Apply the new complete lines of ``events_path`` to run ``run_id``; returns how many events applied.

    Malformed lines are skipped with a warning (and not retried). A missing file means no events yet. An event
    file that is not a regular file (the job put a link, FIFO or device there) is not read: ``on_refused``
    gets a message saying so (a warning without it), and nothing is applied.

    The file is read first, with no transaction open; the events are then applied and the offset moved in one
    transaction. Another process may have ingested meanwhile: the offset read again under the lock says which
    of the lines read are still new.
    """
    require_run(store.db, run_id)
    row = store.query_one("SELECT offset FROM ingest_offsets WHERE run_id = ?", (run_id,))
    read = _read_new(events_path, int(row[0]) if row else 0, on_refused)
    if read is None:
        return 0
    applied = 0
    with store.write() as db:
        require_run(db, run_id)
        row = db.execute("SELECT offset FROM ingest_offsets WHERE run_id = ?", (run_id,)).fetchone()
        offset = int(row[0]) if row else 0
        if not read.offset <= offset < read.offset + len(read.data):
            return 0  # another process applied these lines already (or is ahead of them)
        data = read.data[offset - read.offset:]  # both cut at line ends, so this starts a line
        position = offset
        next_seq: dict[str, int] = {}
        for line in data.split(b"\n")[:-1]:  # after the last newline: the cut part of an overlong line
            try:
                _apply(db, run_id, json.loads(line.decode("utf-8")), next_seq)
                applied += 1
            except sqlite3.Error:
                raise  # the store is in trouble, not the line: roll back and let the caller see it
            except Exception as exc:  # one bad line must not block every line after it
                warnings.warn(f"{events_path}: skipping malformed event at byte {position}: {exc}",
                              stacklevel=2)
            position += len(line) + 1
        db.execute(
            "INSERT INTO ingest_offsets (run_id, offset) VALUES (?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET offset = excluded.offset",
            (run_id, read.offset + len(read.data)),
        )
    return applied
