"""``GpuMonitor``: per GPU, utilization and memory over the last minutes, and which run holds it.

Samples come from NVML once per ``refresh_seconds`` into rings of ``window_seconds``, so memory stays
bounded however long it runs. It pauses by itself after ``max_minutes`` (its resume button, or
``start()``, continues), and on a host without GPUs it says so once and does not poll at all.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from typing import Any

import anywidget
import traitlets

from jupyter_amltrain.engine.views.gpus import GpuReading, gpu_readings
from jupyter_amltrain.widgets.assets import stylesheet, view_module
from jupyter_amltrain.widgets.fallback import LiveDisplay, fmt_bytes, html_table, sparkline, text_table
from jupyter_amltrain.widgets.refresh import Refresher, push_state

NO_GPU = ("No GPU visible to NVML on this host: nothing to monitor. Runs on GPU computes use the CPU here "
          "(install the NVIDIA driver and container toolkit to use GPUs).")


class GpuMonitorView(anywidget.AnyWidget):
    """The synced state of the GPU monitor; ``static/gpu_monitor.js`` draws it."""

    _esm = view_module("gpu_monitor")
    _css = stylesheet()

    gpus: traitlets.List[Any] = traitlets.List().tag(sync=True)       # latest reading per GPU, with its holder
    series = traitlets.Dict().tag(sync=True)     # "index" -> {t, util, mem}
    window_seconds = traitlets.Int(300).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    refreshing = traitlets.Bool(False).tag(sync=True)


class GpuMonitor(LiveDisplay):
    """Live GPU use on this host; ``workspace`` (a Workspace) lets it name the runs holding each GPU."""

    def __init__(self, workspace: Any = None, *, window_seconds: int = 300, refresh_seconds: float = 1.0,
                 max_minutes: float = 60.0) -> None:
        from jupyter_amltrain.core.workspace import engine_workspace

        self._store = engine_workspace(workspace).store if workspace is not None else None
        self.refresh_seconds = refresh_seconds
        self.max_minutes = max_minutes
        self._points = max(int(window_seconds / refresh_seconds), 2)
        self._rings: dict[int, dict[str, deque[Any]]] = {}
        self._lock = threading.RLock()
        self._started = time.monotonic()
        self.view = GpuMonitorView(window_seconds=int(window_seconds))
        self.widget = self.view
        self.view.on_msg(self._on_message)
        self._refresher = Refresher(self._tick, interval=refresh_seconds, name="amltrain-gpu-monitor")
        self.refresh()

    def refresh(self) -> bool:
        """Take one sample now; False when there is no GPU to watch."""
        with self._lock:
            state = self._collect()
            push_state(self.view, state)
            return bool(state["gpus"])

    def start(self) -> None:
        if not self.view.gpus:
            return
        self._started = time.monotonic()
        if not self._refresher.running:
            push_state(self.view, {"message": "", "refreshing": True})  # before the thread: its end turns it off
            self._refresher.start()

    def stop(self) -> None:
        self._refresher.stop()
        self.view.refreshing = False

    def wait(self, timeout: float | None = None) -> bool:
        return self._refresher.join(timeout)

    def _readings(self) -> list[GpuReading]:
        return gpu_readings(self._store)

    def _collect(self) -> dict[str, Any]:
        readings = self._readings()
        if not readings:
            return {"gpus": [], "series": {}, "message": NO_GPU, "refreshing": False}
        now = time.time()
        for reading in readings:
            ring = self._rings.setdefault(reading.sample.index,
                                          {key: deque(maxlen=self._points) for key in ("t", "util", "mem")})
            ring["t"].append(now)
            ring["util"].append(reading.sample.utilization_pct)
            ring["mem"].append(reading.sample.memory_used_bytes)
        return {
            "gpus": [reading.to_json() for reading in readings],
            "series": {str(index): {key: list(values) for key, values in ring.items()}
                       for index, ring in self._rings.items()},
        }

    def _tick(self) -> bool:
        if time.monotonic() - self._started > self.max_minutes * 60:
            push_state(self.view, {"refreshing": False,
                                   "message": f"Paused after {self.max_minutes:g} minutes; resume to continue."})
            return False
        return self.refresh()

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "resume":
            self.start()
        elif kind == "pause":
            self.stop()

    # -- display ----------------------------------------------------------------------------------------------
    def _table(self) -> tuple[list[str], list[list[str]]]:
        headers = ["GPU", "Name", "Utilization", "Memory", "Held by", "Recent use"]
        rows = []
        for gpu in self.view.gpus:
            util = self.view.series.get(str(gpu["index"]), {}).get("util", [])
            rows.append([str(gpu["index"]), gpu["name"], f"{gpu['utilization_pct']:.0f}%",
                         f"{fmt_bytes(gpu['memory_used_bytes'])} / {fmt_bytes(gpu['memory_total_bytes'])}",
                         gpu.get("holder") or "-", sparkline(util, 30)])
        return headers, rows

    def _front_end(self) -> Any:
        return self.view

    def to_text(self) -> str:
        if not self.view.gpus:
            return self.view.message or NO_GPU
        return "GPUs:\n" + text_table(*self._table())

    def to_html(self) -> str:
        if not self.view.gpus:
            return f"<p>{html.escape(self.view.message or NO_GPU)}</p>"
        return f'<div class="amltrain-fallback">{html_table(*self._table())}</div>'
