"""The REST API's answers, built from the engine's read models. Every function here blocks (SQLite, files,
NVML, Docker) and runs on the reader threads; each raises ``ApiError`` for a request it refuses."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.compute.gpus import gpu_inventory
from jupyter_amltrain.engine.runs.records import ACTIVE, TERMINAL, RunRecord, get_run, request_cancel
from jupyter_amltrain.engine.store.layout import RunLayout, check_safe_id
from jupyter_amltrain.engine.views.computes import list_compute_summaries
from jupyter_amltrain.engine.views.environments import list_environment_uses
from jupyter_amltrain.engine.views.experiments import list_experiment_summaries, status_counts
from jupyter_amltrain.engine.views.gpus import gpu_readings
from jupyter_amltrain.engine.views.logs import MAX_CHUNK, LogChunk, read_from
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

STATUSES = (*ACTIVE, *TERMINAL)
MAX_PAGE = 500


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
    states = [environment_state(use, images).to_json() for use in uses] if images else []
    return {"environments": states, "docker": {"reachable": images.reachable if images else None,
                                               "message": images.error if images else ""}}


def experiments_payload(ws: LocalWorkspace) -> dict[str, Any]:
    return {"experiments": [summary.to_json() for summary in list_experiment_summaries(ws.store)]}


def runs_payload(ws: LocalWorkspace, *, experiment: str | None, status: str | None, limit: int,
                 offset: int) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"Unknown status {status!r}. Use one of: {', '.join(STATUSES)}.")
    counts = status_counts(ws.store, experiment)
    total = counts.get(status, 0) if status is not None else sum(counts.values())
    rows = list_run_summaries(ws.store, experiment, limit=limit, offset=offset, status=status)
    return json_safe({"runs": [row.to_json() for row in rows], "total": total, "limit": limit, "offset": offset,
                      "statuses": counts})


def _record(ws: LocalWorkspace, run_id: str) -> RunRecord:
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
    record = _record(ws, run_id)
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
        "log_files": [{"name": name, "size": _size(path)} for name, path in details.log_files.items()],
        "current_log": current_log(details.log_files, record.status),
    })


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def metrics_payload(ws: LocalWorkspace, run_id: str, since: int | None) -> dict[str, Any]:
    """Chartable curves and latest scalars; ``since`` (the version a client holds) skips unchanged curves."""
    record = _record(ws, run_id)
    version = metrics_version(ws.store, record.run_id)
    if since is not None and since == version:
        return {"version": version, "unchanged": True}
    series = metric_series(ws.store, record.run_id)
    latest = {name: curve["values"][-1] for name, curve in series.items() if curve["values"]}
    return json_safe({"version": version, "unchanged": False, "series": series, "latest": latest})


def resolve_log(ws: LocalWorkspace, record: RunRecord, name: str) -> Path:
    """The path of log ``name`` of the run. Only the run's own log files are served: names come from the run
    folder's listing, and a name whose real path leaves the run's folder (a symbolic link the job made in
    ./logs) is refused."""
    root = ws.layout.run_dir(record.run_id)
    files = run_log_files(RunLayout(root))
    if name not in files:
        listing = ", ".join(files) or "none yet"
        if ".." in Path(name).parts or name.startswith("/") or "\\" in name:
            raise ApiError(403, f"Log file {name!r} is refused: names are relative to the run's folder, without "
                           f"'..'. The run's log files: {listing}.")
        raise ApiError(404, f"Run {record.run_id} has no log file {name!r}. Its log files: {listing}.")
    path = files[name].resolve()
    if not path.is_relative_to(root.resolve()):
        raise ApiError(403, f"Log file {name!r} of run {record.run_id} leads outside the run's folder (a symbolic "
                       "link); it is not served. Write logs as plain files under ./logs.")
    return path


def logs_payload(ws: LocalWorkspace, run_id: str) -> dict[str, Any]:
    record = _record(ws, run_id)
    files = run_log_files(RunLayout(ws.layout.run_dir(record.run_id)))
    return {"files": [{"name": name, "size": _size(path)} for name, path in files.items()],
            "current": current_log(files, record.status)}


def log_chunk_payload(ws: LocalWorkspace, run_id: str, name: str | None, *, offset: int | None,
                      tail: int | None, limit: int) -> dict[str, Any]:
    """Complete lines of a log from ``offset`` (or, with ``tail``, about the last ``tail`` bytes)."""
    record = _record(ws, run_id)
    if not name:
        name = current_log(run_log_files(RunLayout(ws.layout.run_dir(record.run_id))), record.status)
        if name is None:
            return {"file": None, "text": "", "offset": 0, "size": 0, "terminal": record.terminal}
    path = resolve_log(ws, record, name)
    start = offset if offset is not None else (tail_offset(path, tail) if tail is not None else 0)
    chunk = read_log(path, start, min(limit, MAX_CHUNK), final=record.terminal)
    return {"file": name, "text": chunk.text, "offset": chunk.offset, "size": chunk.size,
            "terminal": record.terminal}


def read_log(path: Path, offset: int, limit: int = MAX_CHUNK, *, final: bool = False) -> LogChunk:
    """Complete lines from ``offset``; once the run is over (``final``) also a last line that never got its
    newline, since nothing will ever complete it."""
    chunk = read_from(path, offset, limit)
    if final and not chunk.text and chunk.offset < chunk.size:
        with open(path, "rb") as handle:
            handle.seek(chunk.offset)
            rest = handle.read(limit)
        return LogChunk(rest.decode("utf-8", "replace"), chunk.offset + len(rest), chunk.size)
    return chunk


def cancel_payload(ws: LocalWorkspace, run_id: str) -> dict[str, Any]:
    record = _record(ws, run_id)
    status = request_cancel(ws.store, record.run_id)
    return {"run_id": record.run_id, "status": status}
