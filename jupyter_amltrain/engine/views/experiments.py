"""Experiments with their run counts by status, and run counts for a filtered run list, in one query each."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_amltrain.engine.store.db import Store


@dataclass(frozen=True)
class ExperimentSummary:
    name: str
    experiment_id: str
    created: float
    runs: int
    last_run: float | None
    statuses: dict[str, int] = field(default_factory=dict)  # status -> number of runs in it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def list_experiment_summaries(store: Store) -> list[ExperimentSummary]:
    """Every experiment, the one with the latest run first (experiments without runs last, by name)."""
    counts: dict[str, dict[str, int]] = {}
    for row in store.query("SELECT experiment, status, COUNT(*) AS n FROM runs GROUP BY experiment, status"):
        counts.setdefault(row["experiment"], {})[row["status"]] = int(row["n"])
    rows = store.query(
        """SELECT e.name, e.id, e.created, MAX(r.created) AS last_run FROM experiments e
           LEFT JOIN runs r ON r.experiment = e.name GROUP BY e.name
           ORDER BY last_run IS NULL, last_run DESC, e.name"""
    )
    return [
        ExperimentSummary(name=row["name"], experiment_id=row["id"], created=row["created"],
                          runs=sum(counts.get(row["name"], {}).values()), last_run=row["last_run"],
                          statuses=counts.get(row["name"], {}))
        for row in rows
    ]


def status_counts(store: Store, experiment: str | None = None) -> dict[str, int]:
    """Runs per status, of one experiment or of the whole workspace."""
    if experiment is None:
        rows = store.query("SELECT status, COUNT(*) AS n FROM runs GROUP BY status")
    else:
        rows = store.query("SELECT status, COUNT(*) AS n FROM runs WHERE experiment = ? GROUP BY status",
                           (experiment,))
    return {row["status"]: int(row["n"]) for row in rows}
