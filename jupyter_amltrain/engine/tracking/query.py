"""Reading a run's metrics back: v1 ``get_metrics()`` shapes and the raw rows (for widgets and exports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_amltrain.engine.runtime.values import decode_value
from jupyter_amltrain.engine.store.db import Store, loads
from jupyter_amltrain.engine.tracking.shapes import shape_metrics


@dataclass(frozen=True)
class MetricRow:
    """One logging call, value decoded (non-finite floats are floats again)."""

    name: str
    seq: int
    kind: str
    value: Any
    step: int | None
    description: str
    time: float


def metric_rows(store: Store, run_id: str, name: str | None = None) -> list[MetricRow]:
    """Every metric row of the run, ordered by name, then logging order."""
    sql = "SELECT name, seq, kind, value, step, description, time FROM metrics WHERE run_id = ?"
    params: tuple[Any, ...] = (run_id,)
    if name is not None:
        sql += " AND name = ?"
        params += (name,)
    rows = store.query(sql + " ORDER BY name, seq", params)
    return [
        MetricRow(r["name"], r["seq"], r["kind"], decode_value(loads(r["value"])), r["step"], r["description"],
                  r["time"])
        for r in rows
    ]


def get_metrics(store: Store, run_id: str, name: str | None = None) -> dict[str, Any]:
    """``Run.get_metrics(name)``: ``{name: value}`` in v1's shapes; ``{}`` when nothing was logged."""
    return shape_metrics((row.name, row.kind, row.value) for row in metric_rows(store, run_id, name))
