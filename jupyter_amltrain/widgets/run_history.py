"""``RunHistory``: a sortable table of a workspace's runs, a chart comparing the selected runs' metric curves,
and the details of a clicked run below it.

The table refreshes in the background while any listed run is active and stops once all have ended (its
refresh button starts it again, e.g. to pick up runs submitted later).
"""

from __future__ import annotations

import html
import math
import threading
from typing import Any

import anywidget
import ipywidgets
import traitlets

from jupyter_amltrain.engine.runs.statuses import TERMINAL
from jupyter_amltrain.engine.views.run_details import metric_series
from jupyter_amltrain.engine.views.runs import RunSummary, list_run_summaries
from jupyter_amltrain.widgets.assets import stylesheet, view_module
from jupyter_amltrain.widgets.fallback import (
    LiveDisplay,
    fmt_duration,
    fmt_time,
    fmt_value,
    html_table,
    text_table,
)
from jupyter_amltrain.widgets.refresh import Refresher, push_state
from jupyter_amltrain.widgets.run_details import RunDetails

MAX_METRIC_COLUMNS = 6


class RunHistoryView(anywidget.AnyWidget):
    """The synced state of the run table; ``static/run_history.js`` draws it."""

    _esm = view_module("run_history")
    _css = stylesheet()

    title = traitlets.Unicode("").tag(sync=True)
    rows: traitlets.List[Any] = traitlets.List().tag(sync=True)
    metric_columns: traitlets.List[Any] = traitlets.List().tag(sync=True)
    sort_by = traitlets.Unicode("created").tag(sync=True)
    sort_desc = traitlets.Bool(True).tag(sync=True)
    selected: traitlets.List[Any] = traitlets.List().tag(sync=True)            # run ids ticked for comparison
    compare_metric = traitlets.Unicode("").tag(sync=True)
    compare_metrics: traitlets.List[Any] = traitlets.List().tag(sync=True)  # metrics the selected runs have
    compare = traitlets.Dict().tag(sync=True)             # run id -> {label, steps, values}
    opened = traitlets.Unicode("").tag(sync=True)         # run whose details are shown below
    refreshing = traitlets.Bool(False).tag(sync=True)
    view_error = traitlets.Unicode("").tag(sync=True)


class RunHistory(LiveDisplay):
    """Runs of ``workspace`` (newest first, at most ``limit``), of one ``experiment`` or all of them.

    ``metrics`` names the metric columns; by default the first few metrics the runs logged.
    """

    def __init__(self, workspace: Any, experiment: str | None = None, *, limit: int = 50,
                 metrics: list[str] | None = None, refresh_seconds: float = 2.0) -> None:
        from jupyter_amltrain.core.workspace import engine_workspace

        self.workspace = workspace
        self._store = engine_workspace(workspace).store
        self.experiment = experiment
        self.limit = limit
        self._chosen_metrics = list(metrics) if metrics else None
        self._lock = threading.RLock()
        self._summaries: list[RunSummary] = []
        self.details: RunDetails | None = None
        self.view = RunHistoryView(title=f"Runs of experiment {experiment}" if experiment else "Runs")
        self._details_box = ipywidgets.VBox([])
        self.widget = ipywidgets.VBox([self.view, self._details_box])
        self.view.on_msg(self._on_message)
        self.view.observe(self._on_selection, names=["selected", "compare_metric"])
        self._refresher = Refresher(self._tick, interval=refresh_seconds, name="amltrain-history",
                                    on_error=self._on_refresh_error)
        self.refresh()

    # -- control ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        with self._lock:
            push_state(self.view, self._collect())

    def start(self) -> None:
        if any(row["status"] not in TERMINAL for row in self.view.rows) and not self._refresher.running:
            self.view.refreshing = True  # before the thread starts: its last tick turns it off
            self._refresher.start()

    def stop(self) -> None:
        self._refresher.stop()
        if self.details is not None:
            self.details.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self._refresher.join(timeout)

    def select(self, run_ids: list[str], metric: str | None = None) -> None:
        """Tick runs for comparison (as clicking their boxes does), optionally choosing the metric."""
        with self.view.hold_sync():
            self.view.selected = list(run_ids)
            if metric is not None:
                self.view.compare_metric = metric

    def open(self, run_id: str) -> RunDetails:
        """Show the details of ``run_id`` below the table (as clicking its row does)."""
        from jupyter_amltrain.core.experiment import Experiment
        from jupyter_amltrain.core.run import Run

        summary = next((s for s in self._summaries if s.run_id == run_id), None)
        if summary is None:
            from jupyter_amltrain.exceptions import UserErrorException

            raise UserErrorException(f"Run {run_id} is not in this table. Open one of: "
                                     f"{', '.join(s.run_id for s in self._summaries[:5]) or 'none'}.")
        details = RunDetails(Run(Experiment(self.workspace, summary.experiment, _skip_name_validation=True), run_id))
        previous, self.details = self.details, details
        if previous is not None:
            previous.close()
        self._details_box.children = [details.widget]
        self.view.opened = run_id
        details.start()
        return details

    # -- refreshing -------------------------------------------------------------------------------------------
    def _tick(self) -> bool:
        with self._lock:
            state = self._collect()
            active = any(row["status"] not in TERMINAL for row in state["rows"])
            state["refreshing"] = active
            push_state(self.view, state)
            return active

    def _collect(self) -> dict[str, Any]:
        summaries = list_run_summaries(self._store, self.experiment, limit=self.limit)
        self._summaries = summaries
        columns = self._chosen_metrics
        if columns is None:
            columns = []
            for summary in summaries:
                for name, value in summary.metrics.items():
                    if name not in columns and isinstance(value, int | float) and not isinstance(value, bool):
                        columns.append(name)
            columns = columns[:MAX_METRIC_COLUMNS]
        rows = [{**summary.to_json(), "metrics": {k: _plain(v) for k, v in summary.metrics.items()}}
                for summary in summaries]
        return {"rows": rows, "metric_columns": columns, **self._comparison(summaries, columns)}

    def _comparison(self, summaries: list[RunSummary], columns: list[str]) -> dict[str, Any]:
        known = {summary.run_id: summary for summary in summaries}
        selected = [run_id for run_id in self.view.selected if run_id in known]
        curves = {run_id: metric_series(self._store, run_id) for run_id in selected}
        names = sorted({name for series in curves.values() for name in series})
        metric = self.view.compare_metric
        if names and metric not in names:  # with nothing selected, keep the user's choice for later
            metric = next((name for name in columns if name in names), names[0])
        compare = {
            run_id: {"label": f"{known[run_id].experiment} #{known[run_id].number}", **series[metric]}
            for run_id, series in curves.items() if metric in series
        }
        return {"compare_metrics": names, "compare_metric": metric, "compare": compare}

    def _on_selection(self, change: dict[str, Any]) -> None:
        with self._lock:
            push_state(self.view, self._comparison(self._summaries, list(self.view.metric_columns)))

    def _on_message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "open" and isinstance(content.get("run_id"), str):
                self.open(content["run_id"])
            elif kind == "refresh":
                self.view.view_error = ""
                self.refresh()
                self.start()
        except Exception as error:  # shown in the view: a comm callback's exception would vanish
            self.view.view_error = str(error)

    def _on_refresh_error(self, error: BaseException) -> None:
        self.view.view_error = f"Live updates stopped: {error}. Click refresh to try again."
        self.view.refreshing = False

    # -- display ----------------------------------------------------------------------------------------------
    def _table(self) -> tuple[list[str], list[list[str]]]:
        columns = list(self.view.metric_columns)
        headers = ["Run", "Experiment", "Status", "Started", "Duration", "Compute", "Environment", *columns]
        rows = [
            [row["run_id"], row["experiment"], row["status"], fmt_time(row["started"]), fmt_duration(row["duration"]),
             row["target"], row["environment"] or "-", *(fmt_value(row["metrics"].get(c, "")) for c in columns)]
            for row in self.view.rows
        ]
        return headers, rows

    def _front_end(self) -> Any:
        return self.widget

    def to_text(self) -> str:
        headers, rows = self._table()
        if not rows:
            return f"{self.view.title}: none yet."
        return f"{self.view.title} ({len(rows)}):\n" + text_table(headers, rows)

    def to_html(self) -> str:
        headers, rows = self._table()
        if not rows:
            return f"<p>{html.escape(self.view.title)}: none yet.</p>"
        title = html.escape(self.view.title)
        return f'<div class="amltrain-fallback"><h4>{title}</h4>{html_table(headers, rows)}</div>'



def _plain(value: Any) -> Any:
    """Metric values as JSON carries them (NaN and infinities become their names)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
