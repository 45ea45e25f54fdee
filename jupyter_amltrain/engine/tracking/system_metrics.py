"""A run's system metrics (GPU, CPU, memory) in the store: written by its supervisor's sampler, read by
``Run.get_system_metrics()`` and the faces. A namespace of their own: ``get_metrics()`` never shows them.

Names: ``cpu_utilization_percentage`` (100 = one core busy), ``memory_usage_bytes`` (the job's resident
memory), and per host GPU ``gpu_<i>_utilization_percentage``, ``gpu_<i>_memory_usage_bytes``,
``gpu_<i>_temperature_celsius``, ``gpu_<i>_power_watts``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jupyter_amltrain.engine.store.db import Store

Reading = tuple[float, str, int | None, float]  # time, name, GPU index or None, value


def record_system_metrics(store: Store, run_id: str, readings: Iterable[Reading]) -> int:
    rows = [(run_id, time, name, gpu, value) for time, name, gpu, value in readings]
    if rows:
        with store.write() as db:
            db.executemany("INSERT INTO system_metrics(run_id, time, name, gpu, value) VALUES (?, ?, ?, ?, ?)", rows)
    return len(rows)


def metric_key(name: str, gpu: int | None) -> str:
    return name if gpu is None else f"gpu_{gpu}_{name}"


def get_system_metrics(store: Store, run_id: str, name: str | None = None) -> dict[str, dict[str, list[Any]]]:
    """``{name: {"time": [unix seconds...], "value": [...]}}`` in time order; ``name`` picks one series."""
    series: dict[str, dict[str, list[Any]]] = {}
    for row in store.query("SELECT time, name, gpu, value FROM system_metrics WHERE run_id = ? ORDER BY time, rowid",
                           (run_id,)):
        key = metric_key(row["name"], row["gpu"])
        if name is not None and key != name:
            continue
        entry = series.setdefault(key, {"time": [], "value": []})
        entry["time"].append(row["time"])
        entry["value"].append(row["value"])
    return series
