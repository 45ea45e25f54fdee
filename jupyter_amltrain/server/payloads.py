"""The REST API's answers, built from the engine's read models. Every function here blocks (SQLite, files,
NVML, Docker) and runs on the reader threads; each raises ``ApiError`` for a request it refuses."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.compute.gpus import gpu_inventory
from jupyter_amltrain.engine.runs.artifacts import (
    BUILD_LOG,
    CONTROL_LOG,
    LOG_SOURCES,
    STD_LOG,
    RunFile,
    RunFileMissing,
    RunFileRefused,
    find_run_file,
    list_run_files,
)
from jupyter_amltrain.engine.runs.records import RunRecord, get_run, request_cancel
from jupyter_amltrain.engine.runs.statuses import ALL
from jupyter_amltrain.engine.store.layout import RunLayout, check_safe_id
from jupyter_amltrain.engine.views.computes import list_compute_summaries
from jupyter_amltrain.engine.views.environments import list_environment_uses
from jupyter_amltrain.engine.views.experiments import list_experiment_summaries, status_counts
from jupyter_amltrain.engine.views.gpus import gpu_readings
from jupyter_amltrain.engine.views.logs import MAX_CHUNK, LogChunk, read_from, read_rest
from jupyter_amltrain.engine.views.run_details import (
    current_log,
    load_run_details,
    metric_series,
    metrics_version,
    run_log_files,
    tail_offset,
)
from jupyter_amltrain.engine.views.runs import gpu_holders, list_run_summaries
from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.server.context import ApiError, ServerContext, known_workspaces
from jupyter_amltrain.server.environment_images import environment_state, local_images

MAX_PAGE = 500
MAX_FILE_PAGE = 5000  # log names per page of GET runs/{id}/logs


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as the strings "NaN", "Infinity", "-Infinity": metrics may hold them,
    and browsers' JSON.parse refuses the bare tokens Python would write."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def workspace_payload(context: ServerContext, ws: LocalWorkspace) -> dict[str, Any]:
    return {"name": ws.name, "default": context.default_workspace(), "root": str(ws.root),
            "known": known_workspaces()}


def gpus_payload(ws: LocalWorkspace) -> dict[str, Any]:
    """NVML's live readings with the run holding each GPU; on a host without GPUs, a declared inventory (CI)
    with its holders and no readings."""
    readings = gpu_readings(ws.store)
    if readings:
        return {"source": "nvml", "sampled": time.time(), "gpus": [
            {**reading.to_json(), "declared": False} for reading in readings]}
    try:
        inventory = gpu_inventory(ws.settings)
    except Exception as error:  # a declared inventory on a host with real GPUs: say so, show none
        return {"source": "none", "sampled": time.time(), "gpus": [], "message": str(error)}
    if not inventory.declared or not inventory.gpus:
        return {"source": "none", "sampled": time.time(), "gpus": [],
                "message": "No GPU visible to NVML on this host: runs use the CPU."}
    holders = gpu_holders(ws.store)
    return {"source": "declared", "sampled": time.time(), "message": inventory.describe(), "gpus": [
        {"index": gpu.index, "uuid": gpu.uuid, "name": gpu.name, "utilization_pct": None, "memory_used_bytes": None,
         "memory_total_bytes": None, "temperature_c": None, "power_w": None, "holder": holders.get(gpu.index),
         "declared": True} for gpu in inventory.gpus]}


def computes_payload(ws: LocalWorkspace) -> dict[str, Any]:
    return {"computes": [summary.to_json() for summary in list_compute_summaries(ws.store)]}


def environments_payload(ws: LocalWorkspace) -> dict[str, Any]:
    uses = list_environment_uses(ws.store)
    images = local_images() if uses else None
    states = [environment_state(use, images, str(ws.settings.home)).to_json() for use in uses] if images else []
    return {"environments": states, "docker": {"reachable": images.reachable if images else None,
                                               "message": images.error if images else ""}}


def experiments_payload(ws: LocalWorkspace) -> dict[str, Any]:
    return {"experiments": [summary.to_json() for summary in list_experiment_summaries(ws.store)]}


def runs_payload(ws: LocalWorkspace, *, experiment: str | None, status: str | None, limit: int,
                 offset: int) -> dict[str, Any]:
    if status is not None and status not in ALL:
        raise ApiError(400, f"Unknown status {status!r}. Use one of: {', '.join(ALL)}.")
    counts = status_counts(ws.store, experiment)
    total = counts.get(status, 0) if status is not None else sum(counts.values())
    rows = list_run_summaries(ws.store, experiment, limit=limit, offset=offset, status=status)
    return json_safe({"runs": [row.to_json() for row in rows], "total": total, "limit": limit, "offset": offset,
                      "statuses": counts})


def find_run(ws: LocalWorkspace, run_id: str) -> RunRecord:
    """The run ``run_id`` of ``ws``; ApiError 400 for an id that can not be one, 404 for a run not there."""
    try:
        check_safe_id("Run id", run_id)
    except Exception as error:
        raise ApiError(400, str(error)) from None
    record = get_run(ws.store, run_id)
    if record is None:
        raise ApiError(404, f"Run {run_id} is not in workspace '{ws.name}'. List its runs with GET "
                       "/jupyter-amltrain/api/runs, or pass ?workspace=NAME for another workspace.")
    return record


def run_payload(ws: LocalWorkspace, run_id: str) -> dict[str, Any]:
    record = find_run(ws, run_id)
    details = load_run_details(ws.store, ws.layout, record.run_id, with_metrics=False)
    if details is None:  # deleted between the two reads
        raise ApiError(404, f"Run {run_id} is not in workspace '{ws.name}' any more.")
    definition = record.definition
    return json_safe({
        "run_id": record.run_id, "experiment": record.experiment, "number": record.number, "status": record.status,
        "sub_status": record.sub_status, "target": record.target, "node": record.node, "gpus": record.gpus,
        "environment": details.environment, "created": record.created, "started": record.started,
        "ended": record.ended, "duration": details.duration, "exit_code": record.exit_code,
        "error": details.error_message or None, "warnings": [w.get("message", "") for w in record.warnings],
        "tags": record.tags, "properties": record.properties, "cancel_requested": record.cancel_requested,
        "terminal": record.terminal, "script": definition.get("script"),
        "arguments": definition.get("arguments") or [], "command": definition.get("command") or "",
        "history": details.history,
        "log_files": [{"name": name, "size": file.size} for name, file in details.log_files.items()],
        "current_log": current_log(details.log_files, record.status),
    })


def metrics_payload(ws: LocalWorkspace, run_id: str, since: int | None) -> dict[str, Any]:
    """Chartable curves and latest scalars; ``since`` (the version a client holds) skips unchanged curves."""
    record = find_run(ws, run_id)
    version = metrics_version(ws.store, record.run_id)
    if since is not None and since == version:
        return {"version": version, "unchanged": True}
    series = metric_series(ws.store, record.run_id)
    latest = {name: curve["values"][-1] for name, curve in series.items() if curve["values"]}
    return json_safe({"version": version, "unchanged": False, "series": series, "latest": latest})


def resolve_log(ws: LocalWorkspace, record: RunRecord, name: str) -> RunFile:
    """Log ``name`` of the run, checked to be a regular file now. Only the run's own log files are served: a
    name that could climb out is refused, and so is a symbolic link or special file the job made (found by
    opening each level without following links: see engine/runs/artifacts.py)."""
    if ".." in Path(name).parts or name.startswith("/") or "\\" in name:
        raise ApiError(403, f"Log file {name!r} is refused: names are relative to the run's folder, without "
                       f"'..'. The run's log files: {_some_logs(ws, record)}.")
    layout = RunLayout(ws.layout.run_dir(record.run_id))
    if name not in (BUILD_LOG, CONTROL_LOG, STD_LOG) and not name.startswith("logs/"):
        raise ApiError(404, f"Run {record.run_id} has no log file {name!r}. Its log files: "
                       f"{_some_logs(ws, record)}.")
    try:
        return find_run_file(layout, name, driver_alias=False)
    except RunFileRefused as refusal:
        raise ApiError(403, f"Log file {name!r} of run {record.run_id} is not served. {refusal}") from None
    except RunFileMissing:
        raise ApiError(404, f"Run {record.run_id} has no log file {name!r}. Its log files: "
                       f"{_some_logs(ws, record)}.") from None


def _some_logs(ws: LocalWorkspace, record: RunRecord, count: int = 20) -> str:
    page = list_run_files(RunLayout(ws.layout.run_dir(record.run_id)), sources=LOG_SOURCES, limit=count)
    return ", ".join(page.names) + (", ..." if page.next_after else "") if page.files else "none yet"


def logs_payload(ws: LocalWorkspace, run_id: str, *, limit: int = MAX_FILE_PAGE,
                 after: str | None = None) -> dict[str, Any]:
    """One page of the run's log files in name order (``after``: the ``next`` of the previous page)."""
    record = find_run(ws, run_id)
    layout = RunLayout(ws.layout.run_dir(record.run_id))
    page = list_run_files(layout, sources=LOG_SOURCES, after=after, limit=limit)
    return {"files": [{"name": file.name, "size": file.size} for file in page.files],
            "current": current_log(run_log_files(layout), record.status),
            "limit": limit, "after": after, "next": page.next_after}


def log_chunk_payload(ws: LocalWorkspace, run_id: str, name: str | None, *, offset: int | None,
                      tail: int | None, limit: int) -> dict[str, Any]:
    """Complete lines of a log from ``offset`` (or, with ``tail``, about the last ``tail`` bytes)."""
    record = find_run(ws, run_id)
    if not name:
        name = current_log(run_log_files(RunLayout(ws.layout.run_dir(record.run_id))), record.status)
        if name is None:
            return {"file": None, "text": "", "offset": 0, "size": 0, "terminal": record.terminal}
    file = resolve_log(ws, record, name)
    start = offset if offset is not None else (tail_offset(file, tail) if tail is not None else 0)
    chunk = read_log(file, start, min(limit, MAX_CHUNK), final=record.terminal)
    return {"file": name, "text": chunk.text, "offset": chunk.offset, "size": chunk.size,
            "terminal": record.terminal}


def read_log(file: RunFile, offset: int, limit: int = MAX_CHUNK, *, final: bool = False) -> LogChunk:
    """Complete lines from ``offset``; once the run is over (``final``) also a last line that never got its
    newline, since nothing will ever complete it. A file that turned into a link or special file since it was
    resolved is refused (403)."""
    try:
        chunk = read_from(file, offset, limit)
        if final and not chunk.text and chunk.offset < chunk.size:
            return read_rest(file, chunk.offset, limit)
    except RunFileRefused as refusal:
        raise ApiError(403, f"Log file {file.name!r} is not served: {refusal}") from None
    return chunk


def cancel_payload(ws: LocalWorkspace, run_id: str) -> dict[str, Any]:
    record = find_run(ws, run_id)
    status = request_cancel(ws.store, record.run_id)
    return {"run_id": record.run_id, "status": status}
