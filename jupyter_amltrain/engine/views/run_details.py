"""One run as a details view shows it: record, status history, log files, metric curves.

Everything is read from the store and the run folder (through ``engine.runs.artifacts``, which never follows a
link or opens a special file the job left there); nothing here writes. The metric curves are bounded
(``MAX_POINTS`` per metric, evenly thinned, the last point always kept) so a run that logged a million steps
still costs a live view a few kilobytes per refresh.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from jupyter_amltrain.engine.runs.artifacts import (
    BUILD_LOG,
    CONTROL_LOG,
    DRIVER_LOG,
    STD_LOG,
    RunFile,
    RunFileMissing,
    open_run_file,
    run_log_files,
)
from jupyter_amltrain.engine.runs.records import RunRecord, get_run, status_history
from jupyter_amltrain.engine.runs.statuses import BEFORE_JOB
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.store.layout import RunLayout, WorkspaceLayout
from jupyter_amltrain.engine.tracking.query import metric_rows
from jupyter_amltrain.engine.tracking.shapes import series_for_chart
from jupyter_amltrain.engine.tracking.system_metrics import metric_key

MAX_POINTS = 1000
# The log names and the listing live in engine.runs.artifacts; kept importable from here for the faces.
__all__ = ["BUILD_LOG", "CONTROL_LOG", "DRIVER_LOG", "MAX_POINTS", "STD_LOG", "RunDetailsData", "current_log",
           "load_run_details", "metric_series", "metrics_version", "run_log_files", "system_usage_since",
           "tail_offset", "thin"]


@dataclass(frozen=True)
class RunDetailsData:
    record: RunRecord
    environment: str | None
    history: list[dict[str, Any]]
    log_files: dict[str, RunFile]
    metrics: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return self.record.duration

    @property
    def error_message(self) -> str:
        error = (self.record.error or {}).get("error") or self.record.error or {}
        return str(error.get("message", "")) if isinstance(error, dict) else str(error)


def current_log(files: dict[str, RunFile], status: str) -> str | None:
    """The log a viewer should follow when the user picked none: the build log while the image builds, the
    job's output once it exists, else whatever the run has."""
    if STD_LOG in files and status not in BEFORE_JOB:
        return STD_LOG
    for name in (BUILD_LOG, STD_LOG, CONTROL_LOG):
        if name in files:
            return name
    return next(iter(files), None)


def thin(series: dict[str, list[Any]], limit: int = MAX_POINTS) -> dict[str, list[Any]]:
    """At most ``limit`` evenly spaced points of a {"steps", "values"} series, keeping the last one."""
    count = len(series["steps"])
    if count <= limit:
        return series
    stride = (count - 1) / (limit - 1)
    picks = sorted({round(i * stride) for i in range(limit)} | {count - 1})
    return {"steps": [series["steps"][i] for i in picks], "values": [series["values"][i] for i in picks]}


def metric_series(store: Store, run_id: str, limit: int = MAX_POINTS) -> dict[str, dict[str, list[Any]]]:
    """Chartable curves of the run's scalar and list metrics, each at most ``limit`` points."""
    rows = ((row.name, row.kind, row.value, row.step) for row in metric_rows(store, run_id))
    return {name: thin(series, limit) for name, series in series_for_chart(rows).items()}


def load_run_details(store: Store, workspace: WorkspaceLayout, run_id: str, *,
                     with_metrics: bool = True) -> RunDetailsData | None:
    """The run's details, or None when the workspace has no such run."""
    record = get_run(store, run_id)
    if record is None:
        return None
    layout = RunLayout(workspace.run_dir(run_id))
    environment = (record.definition.get("environment") or {}).get("name")
    return RunDetailsData(
        record=record,
        environment=environment,
        history=status_history(store, run_id),
        log_files=run_log_files(layout),
        metrics=metric_series(store, run_id) if with_metrics else {},
    )


def tail_offset(file: RunFile, max_bytes: int) -> int:
    """Where to start reading so that at most about ``max_bytes`` of whole lines at the end of ``file`` are
    read: a viewer reattached to a long log shows its tail rather than re-reading megabytes."""
    try:
        handle = open_run_file(file)
    except RunFileMissing:
        return 0
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size <= max_bytes:
            return 0
        start = size - max_bytes
        handle.seek(start)
        chunk = handle.read(min(max_bytes, 64 * 1024))
    newline = chunk.find(b"\n")
    return start + newline + 1 if newline >= 0 else start


def metrics_version(store: Store, run_id: str) -> int:
    """Grows whenever a metric row is added to the run (rows are never edited): lets a live view skip
    re-reading curves that did not change. One index range count."""
    row = store.query_one("SELECT COUNT(*) FROM metrics WHERE run_id = ?", (run_id,))
    return int(row[0]) if row is not None else 0


def system_usage_since(store: Store, run_id: str, cursor: int | None,
                       window_seconds: float) -> tuple[list[tuple[float, str, float]], int]:
    """The run's system readings (CPU, memory, its GPUs; see ``tracking.system_metrics``) added after
    ``cursor``, as (time, series name, value), and the cursor to pass next time. The first call (cursor None)
    starts ``window_seconds`` before the latest reading, so reattaching to a long run reads minutes, not hours.
    """
    if cursor is None:
        rows = store.query(
            "SELECT rowid, time, name, gpu, value FROM system_metrics WHERE run_id = ? AND time >= "
            "(SELECT MAX(time) FROM system_metrics WHERE run_id = ?) - ? ORDER BY rowid",
            (run_id, run_id, window_seconds))
    else:
        rows = store.query("SELECT rowid, time, name, gpu, value FROM system_metrics WHERE run_id = ? AND rowid > ? "
                           "ORDER BY rowid", (run_id, cursor))
    readings = [(row["time"], metric_key(row["name"], row["gpu"]), row["value"]) for row in rows]
    return readings, (rows[-1]["rowid"] if rows else (cursor or 0))
