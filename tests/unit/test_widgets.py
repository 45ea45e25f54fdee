"""Widgets over runs written straight into a real store: live state, comm traffic, text/HTML fallbacks.

Runs here are records and files made by hand (no Docker, no supervisor), so each state a view must show can
be set up exactly; the Docker-backed tests watch the same views follow real runs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import pytest

from jupyter_amltrain.core.experiment import Experiment
from jupyter_amltrain.core.run import Run
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.engine.tracking.record import log_to_store
from jupyter_amltrain.engine.tracking.system_metrics import record_system_metrics
from jupyter_amltrain.widgets import GpuMonitor, RunDetails, RunHistory
from jupyter_amltrain.widgets.fallback import WIDGET_VIEW_MIME, sparkline
from jupyter_amltrain.widgets.refresh import Refresher, push_state

Messages = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Messages]:
    """Comm messages the widgets send, as a front end would receive them."""
    messages: Messages = []

    class RecordingComm(comm.DummyComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            messages.append((msg_type, data or {}))

    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: RecordingComm(*a, **k))
    yield messages


def _run(ws: Any, experiment: str = "exp", status: str = "Running") -> Run:
    store = ws._local.store
    record = records.create_run(store, experiment=experiment, target="local",
                                definition={"environment": {"name": "env-a"}, "script": "train.py",
                                            "arguments": ["--lr", "0.1"]},
                                snapshot_id=None, properties={"p": "1"}, tags={"team": "a"}, warnings=[])
    layout = RunLayout(ws._local.layout.run_dir(record.run_id)).ensure()
    layout.build_log.write_text("Step 1/2 : FROM base\n")
    for step in ("Queued", "Preparing", "Starting", "Running"):
        records.set_status(store, record.run_id, step, f"{step.lower()} now")
        if step == status:
            break
    return Run(Experiment(ws, experiment), record.run_id)


def _log(run: Run, text: str) -> None:
    path = run._layout().std_log
    with open(path, "a") as handle:
        handle.write(text)


def _finish(run: Run, status: str = "Completed") -> None:
    records.set_status(run._ws.store, run.id, status, "")


def test_details_show_status_log_and_metrics_and_grow_with_the_run(ws: Any, sent: Messages) -> None:
    run = _run(ws)
    _log(run, "epoch 1\n")
    log_to_store(ws._local.store, run.id, "scalar", "loss", 0.9)
    details = RunDetails(run)
    view = details.widget
    assert (view.status, view.sub_status, view.terminal) == ("Running", "running now", False)
    assert view.shown_log == "user_logs/std_log.txt" and view.log_lines == ["epoch 1"]
    assert view.metrics == {"loss": {"steps": [0], "values": [0.9]}}
    assert [h["status"] for h in view.history] == ["NotStarted", "Queued", "Preparing", "Starting", "Running"]
    assert view.properties["Script"] == "train.py --lr 0.1" and view.properties["tag: team"] == "a"
    assert set(view.log_files) >= {"azureml-logs/20_image_build_log.txt", "user_logs/std_log.txt"}

    sent.clear()
    _log(run, "epoch 2\npartial")
    log_to_store(ws._local.store, run.id, "scalar", "loss", 0.5)
    record_system_metrics(ws._local.store, run.id, [(100.0, "cpu_utilization_percentage", None, 50.0),
                                                    (100.0, "utilization_percentage", 0, 80.0)])
    details.refresh()
    assert view.log_lines == ["epoch 1", "epoch 2"]  # the partial line waits for its newline
    assert view.metrics["loss"]["values"] == [0.9, 0.5]
    assert view.usage["cpu_utilization_percentage"] == {"t": [100.0], "v": [50.0]}
    assert view.usage["gpu_0_utilization_percentage"]["v"] == [80.0]
    updates = [data for kind, data in sent if kind == "comm_msg" and data.get("method") == "update"]
    assert len(updates) == 1  # one refresh, one message with every changed trait
    assert {"log_lines", "metrics", "usage"} <= set(updates[0]["state"])
    sent.clear()
    details.refresh()
    assert sent == []  # nothing changed, nothing sent

    _log(run, "\n")
    _finish(run)
    details.refresh()
    assert view.terminal and view.status == "Completed"
    assert view.log_lines[-1] == "partial"


def test_background_refresh_stops_at_the_terminal_state(ws: Any) -> None:
    run = _run(ws)
    details = RunDetails(run, refresh_seconds=0.05)
    seen: list[str] = []
    view = details.widget
    view.observe(lambda change: seen.append(change["new"]), names=["status"])
    details.start()
    assert details.refreshing
    _log(run, "done\n")
    _finish(run, "Failed")
    records.update_run(ws._local.store, run.id, error='{"error": {"message": "exit code 3"}}')
    assert details.wait(timeout=60)
    assert not details.refreshing and not view.refreshing
    assert seen[-1] == "Failed" and view.log_lines == ["done"]
    details.start()  # a finished run is not polled again
    assert not details.refreshing


def test_log_picker_switches_files_and_a_long_log_shows_its_tail(ws: Any) -> None:
    run = _run(ws)
    _log(run, "".join(f"line {i}\n" for i in range(60000)))
    details = RunDetails(run)
    view = details.widget
    assert view.log_lines[-1] == "line 59999"
    assert len(view.log_lines) == 500 and view.log_skipped > 0  # bounded, and says how much is hidden
    view.selected_log = "azureml-logs/20_image_build_log.txt"  # what the picker sends
    assert view.shown_log == "azureml-logs/20_image_build_log.txt"
    assert view.log_lines == ["Step 1/2 : FROM base"]
    view.selected_log = ""
    assert view.shown_log == "user_logs/std_log.txt"


def test_while_preparing_the_build_log_is_followed(ws: Any) -> None:
    run = _run(ws, status="Preparing")
    assert RunDetails(run).widget.shown_log == "azureml-logs/20_image_build_log.txt"


def test_cancel_button_cancels_and_the_view_says_so(ws: Any) -> None:
    run = _run(ws, status="Queued")
    details = RunDetails(run, refresh_seconds=0.05)
    details.widget._handle_custom_msg({"type": "cancel"}, [])  # what the button's model.send delivers
    assert details.widget.cancel_state == "canceled"
    assert run.get_status() == "Canceled"
    assert details.wait(timeout=60)
    assert details.widget.status == "Canceled"


def test_reattached_completed_run_renders_as_widget_text_and_html(ws: Any) -> None:
    run = _run(ws)
    _log(run, "hello <world>\n")
    for value in (3.0, 2.0, 1.0):
        log_to_store(ws._local.store, run.id, "scalar", "loss", value)
    _finish(run)
    details = RunDetails(Run(Experiment(ws, "exp"), run.id))  # a new handle, as after a kernel restart
    bundle, _ = details._repr_mimebundle_()
    assert bundle[WIDGET_VIEW_MIME]["model_id"] == details.widget.model_id
    text, page = bundle["text/plain"], bundle["text/html"]
    assert f"Run {run.id} (#1 of experiment exp): Completed" in text
    assert "loss  3 points, last 1" in text and sparkline([3.0, 2.0, 1.0]) in text
    assert "hello <world>" in text and "hello &lt;world&gt;" in page
    assert repr(details) == details.to_text()
    assert not details.refreshing
    data = details.get_widget_data()
    assert data["status"] == "Completed" and data["run_metrics"][0]["series"] == [{"data": [3.0, 2.0, 1.0]}]
    assert data["run_properties"]["script_name"] == "train.py"
    assert data["run_logs"] == "hello <world>"
    details.close()
    assert WIDGET_VIEW_MIME not in details._repr_mimebundle_()[0]  # closed: text and HTML only


def test_history_lists_compares_and_opens_runs(ws: Any) -> None:
    first, second = _run(ws), _run(ws)
    for run, values in ((first, (1.0, 0.5)), (second, (2.0, 1.5, 1.0))):
        for value in values:
            log_to_store(ws._local.store, run.id, "scalar", "loss", value)
        log_to_store(ws._local.store, run.id, "scalar", "acc", 0.9)
    _finish(first)
    history = RunHistory(ws, "exp")
    view = history.view
    assert [row["run_id"] for row in view.rows] == [second.id, first.id]
    assert view.metric_columns == ["acc", "loss"]
    assert view.rows[1]["metrics"] == {"loss": 0.5, "acc": 0.9}
    view.selected = [first.id, second.id]  # ticking boxes in the table
    assert view.compare_metrics == ["acc", "loss"] and view.compare_metric == "acc"
    view.compare_metric = "loss"
    assert view.compare[first.id]["values"] == [1.0, 0.5]
    assert view.compare[second.id]["values"] == [2.0, 1.5, 1.0]
    assert view.compare[second.id]["label"] == "exp #2"
    view._handle_custom_msg({"type": "open", "run_id": first.id}, [])  # clicking a row
    assert history.details is not None and history.details.run_id == first.id
    assert history.widget.children[1].children == (history.details.widget,)
    view._handle_custom_msg({"type": "open", "run_id": "nope"}, [])
    assert "not in this table" in view.view_error
    text = history.to_text()
    assert "Runs of experiment exp (2)" in text and first.id in text and "env-a" in text
    assert "<table" in history.to_html()
    _finish(second)
    history.start()
    assert history.wait(timeout=60)
    assert not view.refreshing


def test_gpu_monitor_without_gpus_says_so_and_does_not_poll(ws: Any) -> None:
    monitor = GpuMonitor(ws)
    if monitor.view.gpus:
        pytest.skip("this host has GPUs; the GPU path is checked by test_gpu_monitor_samples_every_gpu")
    bundle, _ = monitor._repr_mimebundle_()
    assert "No GPU visible to NVML" in bundle["text/plain"]
    assert not monitor._refresher.running


def test_gpu_monitor_samples_every_gpu(ws: Any) -> None:
    monitor = GpuMonitor(ws, refresh_seconds=0.05, window_seconds=1)
    if not monitor.view.gpus:
        pytest.skip("no GPU on this host")
    for _ in range(30):
        monitor.refresh()
    series = monitor.view.series[str(monitor.view.gpus[0]["index"])]
    assert len(series["util"]) == 20  # the ring holds window / interval samples
    assert "GPU" in monitor.to_text()


def test_refresher_stops_on_false_and_after_repeated_errors() -> None:
    ticks: list[int] = []
    refresher = Refresher(lambda: (ticks.append(1), len(ticks) < 3)[1], interval=0.01, name="t")
    refresher.start()
    assert refresher.join(timeout=30) and len(ticks) == 3

    errors: list[BaseException] = []

    def broken() -> bool:
        raise OSError("store busy")

    failing = Refresher(broken, interval=0.01, name="f", on_error=errors.append)
    failing.start()
    assert failing.join(timeout=30)
    assert [str(e) for e in errors] == ["store busy"]


def test_refresher_stop_ends_a_waiting_thread() -> None:
    waiting = threading.Event()
    refresher = Refresher(lambda: (waiting.set(), True)[1], interval=3600, name="w")
    refresher.start()
    assert waiting.wait(timeout=30)
    refresher.stop()
    assert refresher.join(timeout=30)


def test_push_state_sends_only_changes(sent: Messages) -> None:
    from jupyter_amltrain.widgets.run_history import RunHistoryView

    view = RunHistoryView()
    sent.clear()
    assert push_state(view, {"title": "t", "rows": [], "opened": "x"}) == ["title", "opened"]
    assert len([m for m in sent if m[0] == "comm_msg"]) == 1


def test_widget_assets_are_shipped_and_need_no_network() -> None:
    from jupyter_amltrain.widgets.assets import STATIC, view_module

    for name in ("run_details", "run_history", "gpu_monitor"):
        module = view_module(name)
        assert "export default" in module and "function amlLineChart" in module
        assert "http://" not in module.replace("http://www.w3.org/2000/svg", "") and "https://" not in module
    assert (STATIC / "widgets.css").is_file()
    assert Path(STATIC).parent.name == "widgets"
