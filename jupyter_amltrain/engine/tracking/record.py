"""Writing tracking data into the store: metric rows, tags, properties.

Used by ``ingest`` (events from a job) and directly by a host-side ``Run`` (v1 lets a notebook log to a
run it holds). Functions taking a connection must run inside ``store.write()``; they never commit.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections.abc import Mapping
from typing import Any

from jupyter_amltrain.engine.runs.validation import check_properties, check_tags
from jupyter_amltrain.engine.runtime.values import (
    MetricValueError,
    check_description,
    check_name,
    check_step,
    validate,
)
from jupyter_amltrain.engine.store.db import Store, dumps, loads
from jupyter_amltrain.exceptions import UserErrorException


def insert_metric(
    db: sqlite3.Connection,
    run_id: str,
    name: str,
    kind: str,
    value: Any,
    step: int | None,
    description: str,
    at: float,
    next_seq: dict[str, int] | None = None,
) -> int:
    """Append one metric row (value already in stored form) with the next seq for its name; returns seq.

    ``next_seq`` caches seqs across calls in one transaction (a batch ingest) to skip a lookup per row.
    """
    seq = next_seq.get(name) if next_seq is not None else None
    if seq is None:
        (seq,) = db.execute(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM metrics WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
    if next_seq is not None:
        next_seq[name] = int(seq) + 1
    db.execute(
        "INSERT INTO metrics (run_id, name, seq, kind, value, step, description, time) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, name, seq, kind, dumps(value), step, description, at),
    )
    return int(seq)


def require_run(db: sqlite3.Connection, run_id: str) -> sqlite3.Row:
    row = db.execute("SELECT tags, properties, warnings FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise UserErrorException(
            f"Run {run_id!r} is not in this workspace's store. Check the run id, or submit the run first."
        )
    return row


def merge_tags(db: sqlite3.Connection, run_id: str, tags: Mapping[Any, Any]) -> None:
    """Set tags (checked against v1's limits, the count with the run's current tags); raises, writing nothing."""
    current = loads(require_run(db, run_id)["tags"], {})
    current.update(check_tags(tags, current))
    db.execute("UPDATE runs SET tags = ? WHERE run_id = ?", (dumps(current), run_id))


def merge_properties(db: sqlite3.Connection, run_id: str, properties: Mapping[Any, Any]) -> list[str]:
    """Add properties; a key already set to a different value keeps it (v1: properties are immutable).

    Properties over v1's limits raise, writing nothing. Each refused change is recorded in ``runs.warnings``
    and returned as a message.
    """
    row = require_run(db, run_id)
    current = loads(row["properties"], {})
    run_warnings = loads(row["warnings"], [])
    refused = []
    for key, value in check_properties(properties, current).items():
        if key in current and current[key] != value:
            message = (
                f"Property {key!r} is already {current[key]!r}; properties cannot change, so {value!r} was "
                "ignored. Use a tag (run.tag) for values that change."
            )
            refused.append(message)
            run_warnings.append({"source": "tracking", "message": message})
        else:
            current[key] = value
    db.execute(
        "UPDATE runs SET properties = ?, warnings = ? WHERE run_id = ?",
        (dumps(current), dumps(run_warnings), run_id),
    )
    return refused


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=4)


def log_to_store(
    store: Store,
    run_id: str,
    kind: str,
    name: str,
    value: Any,
    step: int | None = None,
    description: str = "",
) -> None:
    """Log one metric from the host with the job's v1 rules; raises UserErrorException, writing nothing.

    ``kind`` is scalar, list, row (``value`` = dict of column -> scalar), table or image (``value`` = the
    data location string). Values v1 can only keep as text are stored as ``repr()`` with a warning.
    """
    try:
        name = check_name(name)
        stored = validate(kind, name, value, warn=_warn)
        step = check_step(name, step) if kind == "scalar" else None
    except MetricValueError as exc:
        raise UserErrorException(str(exc)) from exc
    with store.write() as db:
        require_run(db, run_id)
        insert_metric(db, run_id, name, kind, stored, step, check_description(description), time.time())


def set_tags_in_store(store: Store, run_id: str, tags: Mapping[str, Any]) -> None:
    """Host-side ``run.tag`` / ``set_tags``: tag values are strings; None becomes ''."""
    check_tags(tags)  # refuse bad keys and values before taking the store's write lock
    with store.write() as db:
        merge_tags(db, run_id, tags)


def add_properties_in_store(store: Store, run_id: str, properties: Mapping[str, Any]) -> list[str]:
    """Host-side ``run.add_properties``; returns a message per refused change (see ``merge_properties``)."""
    check_properties(properties)  # refuse bad keys and values before taking the store's write lock
    with store.write() as db:
        return merge_properties(db, run_id, properties)
