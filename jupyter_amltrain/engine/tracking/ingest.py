"""Apply a job's tracking events (``tracking/events.jsonl``) to the store, each line exactly once.

The byte offset read so far lives in ``ingest_offsets``. One call reads every complete new line, applies
them and moves the offset in the same ``BEGIN IMMEDIATE`` transaction, so two processes ingesting the same
run at once (a supervisor and a notebook asking for metrics) serialize on the lock and the second sees the
first's offset: nothing is applied twice or lost. A trailing line without its newline is being written
right now; it stays for the next call.
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any

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


def ingest_events(store: Store, run_id: str, events_path: Path) -> int:
    """Apply the new complete lines of ``events_path`` to run ``run_id``; returns how many events applied.

    Malformed lines are skipped with a warning (and not retried). A missing file means no events yet.
    """
    applied = 0
    with store.write() as db:
        require_run(db, run_id)
        row = db.execute("SELECT offset FROM ingest_offsets WHERE run_id = ?", (run_id,)).fetchone()
        offset = int(row[0]) if row else 0
        try:
            with open(events_path, "rb") as f:
                size = f.seek(0, 2)
                if size < offset:
                    warnings.warn(
                        f"{events_path} is shorter ({size} bytes) than what was already read ({offset}); it "
                        "was replaced or truncated, so its events are not read again. Do not edit events.jsonl.",
                        stacklevel=2,
                    )
                    return 0
                f.seek(offset)
                data = f.read(MAX_BYTES_PER_CALL)
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) == MAX_BYTES_PER_CALL:
            warnings.warn(f"{events_path}: skipping a line longer than {MAX_BYTES_PER_CALL} bytes at byte "
                          f"{offset}.", stacklevel=2)
            end = len(data)
        position = offset
        next_seq: dict[str, int] = {}
        for line in data[:end].split(b"\n")[:-1] if end else []:
            try:
                _apply(db, run_id, json.loads(line.decode("utf-8")), next_seq)
                applied += 1
            except sqlite3.Error:
                raise  # the store is in trouble, not the line: roll back and let the caller see it
            except Exception as exc:  # one bad line must not block every line after it
                warnings.warn(f"{events_path}: skipping malformed event at byte {position}: {exc}",
                              stacklevel=2)
            position += len(line) + 1
        if end:
            db.execute(
                "INSERT INTO ingest_offsets (run_id, offset) VALUES (?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET offset = excluded.offset",
                (run_id, offset + end),
            )
    return applied
