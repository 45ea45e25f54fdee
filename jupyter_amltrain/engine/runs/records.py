"""Run records in the store: ids, numbering, status transitions with their history."""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from jupyter_amltrain.engine.compute.scheduler import next_queue_seq
from jupyter_amltrain.engine.runs.statuses import TERMINAL, WAITING
from jupyter_amltrain.engine.store.db import Store, dumps, loads
from jupyter_amltrain.exceptions import UserErrorException

EXPERIMENT_NAME = re.compile(r"^[a-zA-Z0-9][\w\-]{1,127}$")


def check_experiment_name(name: str) -> str:
    if not isinstance(name, str) or not EXPERIMENT_NAME.match(name):
        raise UserErrorException(
            f"Experiment name {name!r} is invalid. Experiment name must be between 2 and 128 characters long. Its "
            "first character has to be alphanumeric, and the rest may contain hyphens and underscores. No "
            "whitespace is allowed."
        )
    return name


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    experiment: str
    number: int
    status: str
    sub_status: str
    target: str
    node: int | None
    gpus: list[int]
    definition: dict[str, Any]
    snapshot_id: str | None
    image_hash: str | None
    properties: dict[str, Any]
    tags: dict[str, Any]
    error: dict[str, Any] | None
    warnings: list[dict[str, Any]]
    exit_code: int | None
    supervisor_pid: int | None
    container: str | None
    created: float
    started: float | None
    ended: float | None
    cancel_requested: bool

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration(self) -> float | None:
        return run_duration(self.started, self.ended)


def run_duration(started: float | None, ended: float | None) -> float | None:
    """Seconds a run has run: from its start to its end, or to now while it runs; None before it starts."""
    if started is None:
        return None
    return (ended or time.time()) - started


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], experiment=row["experiment"], number=row["number"], status=row["status"],
        sub_status=row["sub_status"], target=row["target"], node=row["node"], gpus=loads(row["gpus"], []),
        definition=loads(row["definition"], {}), snapshot_id=row["snapshot_id"], image_hash=row["image_hash"],
        properties=loads(row["properties"], {}), tags=loads(row["tags"], {}), error=loads(row["error"]),
        warnings=loads(row["warnings"], []), exit_code=row["exit_code"], supervisor_pid=row["supervisor_pid"],
        container=row["container"], created=row["created"], started=row["started"], ended=row["ended"],
        cancel_requested=bool(row["cancel_requested"]),
    )


def ensure_experiment(store: Store, name: str) -> str:
    check_experiment_name(name)
    known = store.query_one("SELECT id FROM experiments WHERE name = ?", (name,))
    if known is not None:  # only a new experiment is written: reading one works on a full disk
        return str(known[0])
    with store.write() as db:
        db.execute(
            "INSERT OR IGNORE INTO experiments(name, id, created) VALUES (?, ?, ?)",
            (name, str(uuid.uuid4()), time.time()),
        )
        return str(db.execute("SELECT id FROM experiments WHERE name = ?", (name,)).fetchone()[0])


def create_run(
    store: Store,
    *,
    experiment: str,
    target: str,
    definition: dict[str, Any],
    snapshot_id: str | None,
    properties: dict[str, Any],
    tags: dict[str, Any],
    warnings: list[str],
) -> RunRecord:
    ensure_experiment(store, experiment)
    now = time.time()
    run_id = f"{experiment}_{int(now)}_{secrets.token_hex(4)}"
    with store.write() as db:
        number = db.execute("SELECT next_number FROM experiments WHERE name = ?", (experiment,)).fetchone()[0]
        db.execute("UPDATE experiments SET next_number = next_number + 1 WHERE name = ?", (experiment,))
        db.execute(
            """INSERT INTO runs(run_id, experiment, number, status, target, queue_seq, definition, snapshot_id,
                   properties, tags, warnings, created)
               VALUES (?, ?, ?, 'NotStarted', ?, ?, ?, ?, ?, ?, ?, ?)""",
            (run_id, experiment, number, target, next_queue_seq(db, target), dumps(definition), snapshot_id,
             dumps(properties), dumps(tags), dumps([{"message": w} for w in warnings]), now),
        )
        db.execute(
            "INSERT INTO run_status_history(run_id, status, sub_status, time) VALUES (?, 'NotStarted', '', ?)",
            (run_id, now),
        )
    record = get_run(store, run_id)
    assert record is not None
    return record


def get_run(store: Store, run_id: str) -> RunRecord | None:
    row = store.query_one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    return None if row is None else _record(row)


def experiment_names(store: Store) -> list[str]:
    """Every experiment of the workspace, by name."""
    return [row["name"] for row in store.query("SELECT name FROM experiments ORDER BY name")]


def list_runs(store: Store, experiment: str | None = None, *, limit: int | None = None,
              offset: int = 0) -> list[RunRecord]:
    sql = "SELECT * FROM runs"
    params: list[Any] = []
    if experiment is not None:
        sql += " WHERE experiment = ?"
        params.append(experiment)
    sql += " ORDER BY created DESC, number DESC"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return [_record(row) for row in store.query(sql, tuple(params))]


def set_status(store: Store, run_id: str, status: str, sub_status: str = "", **fields: Any) -> bool:
    """Move a run to ``status``. A terminal run never changes again; returns False when refused."""
    now = time.time()
    with store.write() as db:
        row = db.execute("SELECT status, sub_status, started FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None or row["status"] in TERMINAL:
            return False
        if status == "Running" and row["started"] is None:
            fields.setdefault("started", now)
        if status in TERMINAL:
            fields.setdefault("ended", now)
        for key in ("error",):
            if key in fields and fields[key] is not None and not isinstance(fields[key], str):
                fields[key] = dumps(fields[key])
        assignments = ", ".join(f"{key} = ?" for key in ("status", "sub_status", *fields))
        db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (status, sub_status, *fields.values(), run_id))
        if (row["status"], row["sub_status"]) != (status, sub_status):
            db.execute(
                "INSERT INTO run_status_history(run_id, status, sub_status, time) VALUES (?, ?, ?, ?)",
                (run_id, status, sub_status, now),
            )
    return True


def update_run(store: Store, run_id: str, **fields: Any) -> None:
    if not fields:
        return
    encoded = {k: dumps(v) if k in ("properties", "tags", "gpus", "warnings", "error") and v is not None
               and not isinstance(v, str) else v for k, v in fields.items()}
    assignments = ", ".join(f"{key} = ?" for key in encoded)
    with store.write() as db:
        db.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*encoded.values(), run_id))


def add_warning(store: Store, run_id: str, message: str) -> None:
    with store.write() as db:
        row = db.execute("SELECT warnings FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None:
            warnings = loads(row["warnings"], [])
            warnings.append({"message": message})
            db.execute("UPDATE runs SET warnings = ? WHERE run_id = ?", (dumps(warnings), run_id))


def status_history(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [
        {"status": r["status"], "subStatus": r["sub_status"], "time": r["time"]}
        for r in store.query("SELECT * FROM run_status_history WHERE run_id = ? ORDER BY time, rowid", (run_id,))
    ]


def request_cancel(store: Store, run_id: str) -> str:
    """Ask a run to stop. A run that holds no node yet is Canceled at once; others go via CancelRequested."""
    now = time.time()
    with store.write() as db:
        row = db.execute("SELECT status, node FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserErrorException(f"Run {run_id} not found in this workspace.")
        if row["status"] in TERMINAL:
            return str(row["status"])
        if row["status"] in WAITING and row["node"] is None:
            db.execute("UPDATE runs SET status='Canceled', sub_status='canceled while queued', ended=?, "
                       "cancel_requested=1 WHERE run_id=?", (now, run_id))
            db.execute("INSERT INTO run_status_history VALUES (?, 'Canceled', 'canceled while queued', ?)",
                       (run_id, now))
            return "Canceled"
        db.execute("UPDATE runs SET status='CancelRequested', cancel_requested=1 WHERE run_id=?", (run_id,))
        db.execute("INSERT INTO run_status_history VALUES (?, 'CancelRequested', '', ?)", (run_id, now))
        return "CancelRequested"
