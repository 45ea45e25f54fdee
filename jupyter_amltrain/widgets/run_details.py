"""``RunDetails``: the live view of one run (v1 ``azureml.widgets.RunDetails``).

Status and sub-status with their timestamps, properties, a tail of the run's logs with a picker, one chart
per metric, CPU and GPU charts, a cancel button. It reads the run through the engine's read models only, so
a run submitted before a kernel restart shows the same as one submitted a moment ago. Refreshing happens on
a background thread (see ``refresh.py``) and stops when the run reaches a terminal state.

Where no widget front end exists the same object renders as text and HTML (``_repr_mimebundle_`` carries
the widget view and both), so nbconvert output and terminals stay readable.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from jupyter_amltrain.engine.runs.artifacts import RunFileRefused
from jupyter_amltrain.engine.runs.follow import follow_run
from jupyter_amltrain.engine.runs.records import request_cancel
from jupyter_amltrain.engine.runs.recovery import ensure_supervised
from jupyter_amltrain.engine.runs.statuses import TERMINAL
from jupyter_amltrain.engine.views.logs import read_from, read_rest
from jupyter_amltrain.engine.views.run_details import (
    RunDetailsData,
    current_log,
    load_run_details,
    metric_series,
    metrics_version,
    system_usage_since,
    tail_offset,
)
from jupyter_amltrain.exceptions import UserErrorException
from jupyter_amltrain.widgets.assets import stylesheet, view_module
from jupyter_amltrain.widgets.fallback import (
    LiveDisplay,
    fmt_clock,
    fmt_duration,
    fmt_time,
    fmt_value,
    sparkline,
)
from jupyter_amltrain.widgets.refresh import Refresher, live_displays, push_state

MAX_LOG_LINES = 500     # lines kept and sent; older ones are counted in log_skipped
MAX_LINE_CHARS = 2000   # a progress bar redrawn with \r can make one "line" megabytes long
TAIL_BYTES = 128 * 1024  # how far back a newly opened log is read
CHUNKS_PER_TICK = 8      # at most this many 256 KiB reads per refresh: a flood of output cannot stall it
USAGE_POINTS = 600       # CPU and GPU readings kept per series: ten minutes at one per second
USAGE_WINDOW_SECONDS = 600
FOLLOW_MIN_GAP = 0.03    # refreshes a second at most, when lines stream in: about 3% of a core (bench/log_latency)


class RunDetailsView(anywidget.AnyWidget):
    """The synced state of a run's details view; ``static/run_details.js`` draws it."""

    _esm = view_module("run_details")
    _css = stylesheet()

    run_id = traitlets.Unicode("").tag(sync=True)
    experiment = traitlets.Unicode("").tag(sync=True)
    number = traitlets.Int(0).tag(sync=True)
    status = traitlets.Unicode("NotStarted").tag(sync=True)
    sub_status = traitlets.Unicode("").tag(sync=True)
    terminal = traitlets.Bool(False).tag(sync=True)
    refreshing = traitlets.Bool(False).tag(sync=True)
    times = traitlets.Dict().tag(sync=True)          # created / started / ended, epoch seconds
    history: traitlets.List[Any] = traitlets.List().tag(sync=True)        # [{status, sub_status, time}]
    properties = traitlets.Dict().tag(sync=True)     # label -> text, in display order
    error = traitlets.Unicode("").tag(sync=True)
    warnings: traitlets.List[Any] = traitlets.List().tag(sync=True)
    log_files: traitlets.List[Any] = traitlets.List().tag(sync=True)
    selected_log = traitlets.Unicode("").tag(sync=True)  # picked by the user; "" follows the current log
    shown_log = traitlets.Unicode("").tag(sync=True)
    log_lines: traitlets.List[Any] = traitlets.List().tag(sync=True)
    log_skipped = traitlets.Int(0).tag(sync=True)
    metrics = traitlets.Dict().tag(sync=True)        # name -> {steps, values}
    gpus: traitlets.List[Any] = traitlets.List().tag(sync=True)
    usage = traitlets.Dict().tag(sync=True)          # system metric name -> {t, v}: CPU, memory, its GPUs
    cancel_state = traitlets.Unicode("").tag(sync=True)
    view_error = traitlets.Unicode("").tag(sync=True)


class _Ring:
    """Parallel bounded columns (time and readings) for a chart."""

    def __init__(self, *columns: str, size: int = USAGE_POINTS) -> None:
        self.columns = {name: deque[Any](maxlen=size) for name in columns}

    def append(self, **values: Any) -> None:
        for name, column in self.columns.items():
            column.append(values.get(name))

    def to_json(self, **extra: Any) -> dict[str, Any]:
        return {**extra, **{name: list(column) for name, column in self.columns.items()}}


class RunDetails(LiveDisplay):
    """Live details of a run: ``RunDetails(run).show()``.

    ``refresh_seconds`` is the longest wait between two refreshes while the run is active.
    """

    def __init__(self, run_instance: Any, *, refresh_seconds: float = 1.0) -> None:
        from jupyter_amltrain.core.run import Run
        from jupyter_amltrain.core.workspace import engine_workspace

        # Run.get_context() gives the job-side run (engine/runtime/job_run.py), not a core Run: refused here.
        if not isinstance(run_instance, Run):
            raise UserErrorException(
                f"RunDetails needs a run submitted from this workspace (experiment.submit(...) or "
                f"Run(experiment, run_id)); got {type(run_instance).__name__}. Inside a job there is nothing to show."
            )
        self.run = run_instance
        local = engine_workspace(run_instance.experiment.workspace)
        self._engine_ws = local
        self._store = local.store
        self._workspace = local.layout
        self.run_id: str = run_instance.id
        self._lock = threading.RLock()
        self._log_name: str | None = None
        self._log_offset = 0
        self._log: deque[str] = deque(maxlen=MAX_LOG_LINES)
        self._log_total = 0
        self._metrics_version = -1
        self._metrics: dict[str, Any] = {}
        self._usage: dict[str, _Ring] = {}
        self._usage_cursor: int | None = None
        self._data: RunDetailsData | None = None
        self._display: Any = None
        self._static_final = False
        self.widget = RunDetailsView(run_id=self.run_id, experiment=run_instance.experiment.name)
        self.widget.on_msg(self._on_message)
        self.widget.observe(self._on_log_picked, names=["selected_log"])
        # Woken by the run's follower the moment a line or a status is written (min_gap bounds the refresh rate
        # of a chatty job); the interval remains for metrics and what nothing announces.
        self._refresher = Refresher(self._tick, interval=refresh_seconds, name=f"amltrain-details-{self.run_id}",
                                    on_error=self._on_refresh_error, min_gap=FOLLOW_MIN_GAP)
        self.refresh()

    # -- v1 API -----------------------------------------------------------------------------------------------
    def show(self, render_lib: Any = None, widget_settings: dict[str, Any] | None = None) -> None:
        """Display the live view (in a notebook) or its text (elsewhere) and keep it refreshing."""
        from IPython.display import display

        self._display = display(self, display_id=True)
        live_displays.add(self)

    def get_widget_data(self, widget_settings: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the view shows, in the keys of v1's ``get_widget_data``."""
        self.refresh()
        view = self.widget
        data = self._data
        assert data is not None
        record = data.record
        logs = "\n".join(view.log_lines)
        if not logs:
            logs = "Log is empty or no log files found." if record.terminal else "Your job is submitted and we are " \
                "monitoring to get logs..."
        return {
            "status": record.status,
            "workbench_run_details_uri": self.run.get_portal_url(),
            "run_id": record.run_id,
            "run_properties": {
                "run_id": record.run_id,
                "created_utc": _iso(record.created),
                "properties": dict(record.properties),
                "tags": dict(record.tags),
                "script_name": record.definition.get("script"),
                "arguments": record.definition.get("arguments"),
                "end_time_utc": _iso(record.ended),
                "status": record.status,
                "log_files": {name: str(log.path) for name, log in data.log_files.items()},
                "log_groups": _log_groups(list(data.log_files)),
                "run_duration": fmt_duration(data.duration),
                "run_number": record.number,
                "run_queued_details": {"status": record.status, "details": record.sub_status},
            },
            "child_runs": [],
            "children_metrics": {},
            "run_metrics": [
                {"name": name, "run_id": record.run_id, "categories": list(range(len(series["values"]))),
                 "series": [{"data": list(series["values"])}]}
                for name, series in view.metrics.items()
            ],
            "run_logs": logs,
            "graph": {},
            "widget_settings": dict(widget_settings or {}),
            "loading": False,
        }

    # -- control ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Bring the view up to date now, in this thread."""
        with self._lock:
            push_state(self.widget, self._collect())

    def start(self) -> None:
        """Keep refreshing in the background until the run ends (display does this)."""
        if not self.widget.terminal and not self._refresher.running:
            self.widget.refreshing = True  # before the thread starts: its last tick turns it off
            if self._refresher.start():
                threading.Thread(target=self._follow, name=f"amltrain-follow-{self.run_id}", daemon=True).start()

    def _follow(self) -> None:
        """Wake the refresh at each event of the run's one follower (engine/runs/follow.py), until it ends."""
        local = self._engine_ws
        try:
            for _ in follow_run(Path(local.settings.home), local.layout, self.run_id):
                if not self._refresher.running:
                    return
                self._refresher.wake()
        except Exception:  # the timer still refreshes: a follower that fails only costs latency
            return

    def stop(self) -> None:
        self._refresher.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until background refreshing has ended (the run finished and its last state was shown)."""
        return self._refresher.join(timeout)

    def close(self) -> None:
        self.stop()
        self.widget.close()

    @property
    def refreshing(self) -> bool:
        return self._refresher.running

    # -- refreshing -------------------------------------------------------------------------------------------
    def _tick(self) -> bool:
        with self._lock:
            state = self._collect()
            state["refreshing"] = not state["terminal"]
            push_state(self.widget, state)
        if not state["terminal"]:  # a live view waits on the run: a killed supervisor is replaced, or it never ends
            ensure_supervised(self._engine_ws, self.run_id)
        return not state["terminal"]

    def _collect(self) -> dict[str, Any]:
        data = load_run_details(self._store, self._workspace, self.run_id, with_metrics=False)
        if data is None:
            raise UserErrorException(f"Run {self.run_id} is no longer in the workspace.")
        self._data = data
        record = data.record
        version = metrics_version(self._store, self.run_id)
        if version != self._metrics_version:
            self._metrics = metric_series(self._store, self.run_id)
            self._metrics_version = version
        self._read_log(data)
        self._read_usage()
        definition = record.definition
        properties = {
            "Run": f"{record.run_id} (#{record.number})",
            "Experiment": record.experiment,
            "Compute target": record.target,
            "Environment": data.environment or "-",
            "Script": " ".join(str(p) for p in [definition.get("script") or "", *(definition.get("arguments") or [])])
            or str(definition.get("command") or "-"),
        }
        if record.image_hash:
            properties["Image hash"] = record.image_hash
        if record.gpus:
            properties["GPUs"] = ", ".join(str(g) for g in record.gpus)
        if record.exit_code is not None:
            properties["Exit code"] = str(record.exit_code)
        properties.update({f"tag: {key}": fmt_value(value) for key, value in record.tags.items()})
        properties.update({key: fmt_value(value) for key, value in record.properties.items()})
        return {
            "number": record.number,
            "status": record.status,
            "sub_status": record.sub_status,
            "terminal": record.terminal,
            "times": {"created": record.created, "started": record.started, "ended": record.ended},
            "history": [{"status": h["status"], "sub_status": h["subStatus"], "time": h["time"]} for h in data.history],
            "properties": properties,
            "error": data.error_message,
            "warnings": [str(w.get("message", "")) for w in record.warnings],
            "log_files": list(data.log_files),
            "shown_log": self._log_name or "",
            "log_lines": list(self._log),
            "log_skipped": max(self._log_total - len(self._log), 0),
            "metrics": self._metrics,
            "gpus": list(record.gpus),
            "usage": {name: ring.to_json() for name, ring in self._usage.items()},
        }

    def _read_log(self, data: RunDetailsData) -> None:
        files = data.log_files
        wanted = self.widget.selected_log or current_log(files, data.record.status)
        if wanted is None or wanted not in files:
            return
        log = files[wanted]  # read through engine.runs.artifacts: never a link or special file the job made
        try:
            if wanted != self._log_name:
                self._log_name = wanted
                self._log.clear()
                self._log_total = 0
                self._log_offset = tail_offset(log, TAIL_BYTES)
            for _ in range(CHUNKS_PER_TICK):
                chunk = read_from(log, self._log_offset)
                if not chunk.text:
                    break
                self._add_lines(chunk.text)
                self._log_offset = chunk.offset
            if data.record.terminal:  # the writer is done: a last line without its newline is complete too
                rest = read_rest(log, self._log_offset)
                if rest.text:
                    self._add_lines(rest.text)
                    self._log_offset = rest.offset
        except RunFileRefused as refusal:  # swapped for a link since it was listed: say so, keep refreshing
            self.widget.view_error = str(refusal)

    def _add_lines(self, text: str) -> None:
        for line in text.splitlines():
            line = line.rsplit("\r", 1)[-1]  # a progress bar's last redraw
            self._log.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …")
            self._log_total += 1

    def _read_usage(self) -> None:
        readings, self._usage_cursor = system_usage_since(self._store, self.run_id, self._usage_cursor,
                                                          USAGE_WINDOW_SECONDS)
        for at, name, value in readings:
            self._usage.setdefault(name, _Ring("t", "v")).append(t=at, v=value)

    def _on_log_picked(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._log_name = None  # read the newly picked file from its tail on the next refresh
        if self._refresher.running:
            self._refresher.wake()
        else:
            self.refresh()

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "cancel":
            try:
                outcome = request_cancel(self._store, self.run_id)
                self.widget.cancel_state = "canceled" if outcome in TERMINAL else "requested"
            except Exception as error:  # shown in the view: a callback's exception would vanish
                self.widget.cancel_state = f"cancel failed: {error}"
            self.start()
            self._refresher.wake()
        elif kind == "refresh":
            self.widget.view_error = ""
            self.refresh()
            self.start()

    def _on_refresh_error(self, error: BaseException) -> None:
        self.widget.view_error = f"Live updates stopped: {error}. Click refresh to try again."
        self.widget.refreshing = False

    # -- display ----------------------------------------------------------------------------------------------
    def _update_static_display(self) -> bool:
        """Rewrite the displayed output (text, HTML, widget) once the run has ended; True when done."""
        if self._display is None or self._static_final or not self.widget.terminal:
            return self._static_final
        self._static_final = True
        self._display.update(self)
        return True


    def _front_end(self) -> Any:
        return self.widget

    def to_text(self, log_lines: int = 10) -> str:
        view, data = self.widget, self._data
        duration = fmt_duration(data.duration) if data else "-"
        lines = [
            f"Run {view.run_id} (#{view.number} of experiment {view.experiment}): {view.status}"
            + (f" ({view.sub_status})" if view.sub_status else ""),
            f"  target {view.properties.get('Compute target', '-')}, environment "
            f"{view.properties.get('Environment', '-')}, started {fmt_time(view.times.get('started'))}, "
            f"duration {duration}",
        ]
        if view.error:
            lines.append(f"  error: {view.error}")
        lines.append("  status: " + ", ".join(
            f"{fmt_clock(h['time'])} {h['status']}" + (f" ({h['sub_status']})" if h["sub_status"] else "")
            for h in view.history[-8:]))
        if view.metrics:
            lines.append("  metrics:")
            width = max(len(name) for name in view.metrics)
            for name, series in view.metrics.items():
                values = series["values"]
                last = next((v for v in reversed(values) if v is not None), None)
                lines.append(f"    {name.ljust(width)}  {len(values)} points, last {fmt_value(last)}  "
                             f"{sparkline(values)}")
        if view.shown_log:
            shown = view.log_lines[-log_lines:]
            lines.append(f"  log {view.shown_log} (last {len(shown)} lines):")
            lines += [f"    {line}" for line in shown]
        return "\n".join(lines)

    def to_html(self, log_lines: int = 20) -> str:
        view = self.widget
        esc = html.escape
        rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in view.properties.items())
        history = "".join(
            f"<li>{esc(fmt_clock(h['time']))} <b>{esc(h['status'])}</b> {esc(h['sub_status'])}</li>"
            for h in view.history)
        metrics = "".join(
            f"<tr><th>{esc(name)}</th><td>{len(s['values'])} points</td>"
            f"<td>{esc(fmt_value(next((v for v in reversed(s['values']) if v is not None), None)))}</td>"
            f"<td><code>{esc(sparkline(s['values']))}</code></td></tr>"
            for name, s in view.metrics.items())
        log = esc("\n".join(view.log_lines[-log_lines:]))
        error = f'<p class="amltrain-error">{esc(view.error)}</p>' if view.error else ""
        return (
            f'<div class="amltrain-fallback"><h4>Run {esc(view.run_id)}: {esc(view.status)}'
            f"{(' (' + esc(view.sub_status) + ')') if view.sub_status else ''}</h4>{error}"
            f"<table>{rows}</table><ul>{history}</ul>"
            + (f"<table>{metrics}</table>" if metrics else "")
            + (f"<p>{esc(view.shown_log)}</p><pre>{log}</pre>" if view.shown_log else "")
            + "</div>"
        )


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int((epoch % 1) * 1e6):06d}Z"


def _log_groups(names: list[str]) -> list[list[str]]:
    """v1 groups log names by their numeric prefix (``70_driver_log`` ...); others each form a group."""
    groups: dict[str, list[str]] = {}
    for name in names:
        base = name.rsplit("/", 1)[-1]
        prefix = base.split("_", 1)[0] if base[:1].isdigit() else name
        groups.setdefault(prefix, []).append(name)
    return list(groups.values())
