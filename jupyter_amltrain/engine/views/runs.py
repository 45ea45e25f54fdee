"""Run history rows: one per run with its latest scalar metrics, built in two queries whatever the count."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_amltrain.engine.runs.records import run_duration
from jupyter_amltrain.engine.runs.statuses import TERMINAL, sql_list
from jupyter_amltrain.engine.store.db import Store, loads


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    experiment: str
    number: int
    status: str
    sub_status: str
    target: str
    environment: str | None
    created: float
    started: float | None
    ended: float | None
    metrics: dict[str, Any] = field(default_factory=dict)  # latest value of each scalar metric
    tags: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return run_duration(self.started, self.ended)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "duration": self.duration}


def list_run_summaries(store: Store, experiment: str | None = None, *, limit: int = 100, offset: int = 0,
                       status: str | None = None) -> list[RunSummary]:
    where, params = [], []
    if experiment is not None:
        where.append("experiment = ?")
        params.append(experiment)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = ("SELECT run_id, experiment, number, status, sub_status, target, definition, created, started, ended, "
           "tags FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY created DESC, number DESC LIMIT ? OFFSET ?")
    rows = store.query(sql, (*params, limit, offset))
    if not rows:
        return []
    ids = [row["run_id"] for row in rows]
    latest = _latest_scalars(store, ids)
    return [
        RunSummary(
            run_id=row["run_id"], experiment=row["experiment"], number=row["number"], status=row["status"],
            sub_status=row["sub_status"], target=row["target"],
            environment=(loads(row["definition"], {}).get("environment") or {}).get("name"),
            created=row["created"], started=row["started"], ended=row["ended"],
            metrics=latest.get(row["run_id"], {}), tags=loads(row["tags"], {}),
        )
        for row in rows
    ]


def _latest_scalars(store: Store, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    placeholders = ",".join("?" * len(run_ids))
    # The highest seq per (run, name) is the latest value; the primary key index makes this a range scan.
    rows = store.query(
        f"""SELECT m.run_id, m.name, m.value FROM metrics m
            JOIN (SELECT run_id, name, MAX(seq) AS seq FROM metrics
                  WHERE run_id IN ({placeholders}) AND kind = 'scalar' GROUP BY run_id, name) last
            ON m.run_id = last.run_id AND m.name = last.name AND m.seq = last.seq""",
        tuple(run_ids),
    )
    from jupyter_amltrain.engine.runtime.values import decode_value

    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest.setdefault(row["run_id"], {})[row["name"]] = decode_value(loads(row["value"]))
    return latest


def count_runs(store: Store, experiment: str | None = None) -> int:
    if experiment is None:
        return int(store.query_one("SELECT COUNT(*) FROM runs")[0])  # type: ignore[index]
    return int(store.query_one("SELECT COUNT(*) FROM runs WHERE experiment = ?", (experiment,))[0])  # type: ignore[index]


def gpu_holders(store: Store) -> dict[int, str]:
    """Host GPU index -> id of the live run holding it."""
    holders: dict[int, str] = {}
    for row in store.query(f"SELECT run_id, gpus FROM runs WHERE status NOT IN {sql_list(TERMINAL)} "
                           "AND gpus != '[]'"):
        for gpu in loads(row["gpus"], []):
            holders[int(gpu)] = row["run_id"]
    return holders
