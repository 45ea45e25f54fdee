"""Read models: run history rows with latest metrics, and log reads from an offset."""

from __future__ import annotations

from pathlib import Path

from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.artifacts import RunFile
from jupyter_amltrain.engine.store import Store
from jupyter_amltrain.engine.tracking.record import log_to_store
from jupyter_amltrain.engine.views.logs import read_from
from jupyter_amltrain.engine.views.runs import count_runs, gpu_holders, list_run_summaries


def _run(store: Store, experiment: str) -> str:
    record = records.create_run(store, experiment=experiment, target="local",
                                definition={"environment": {"name": "env-a"}}, snapshot_id=None,
                                properties={}, tags={"k": "v"}, warnings=[])
    return record.run_id


def test_summaries_are_newest_first_with_latest_scalar_metrics(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    first = _run(store, "exp")
    second = _run(store, "exp")
    _run(store, "other")
    for value in (0.9, 0.5, 0.1):
        log_to_store(store, first, "scalar", "loss", value)
    log_to_store(store, first, "list", "curve", [1, 2])
    rows = list_run_summaries(store, "exp")
    assert [r.run_id for r in rows] == [second, first]
    assert rows[1].metrics == {"loss": 0.1} and rows[0].metrics == {}
    assert rows[1].environment == "env-a" and rows[1].tags == {"k": "v"}
    assert count_runs(store) == 3 and count_runs(store, "exp") == 2
    assert [r.run_id for r in list_run_summaries(store, "exp", limit=1, offset=1)] == [first]


def test_gpu_holders_names_live_runs_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    live, done = _run(store, "exp"), _run(store, "exp")
    records.update_run(store, live, gpus=[0, 1])
    records.update_run(store, done, gpus=[2])
    records.set_status(store, done, "Completed")
    assert gpu_holders(store) == {0: live, 1: live}


def test_log_reads_return_complete_lines_and_resume_where_they_stopped(tmp_path: Path) -> None:
    log = RunFile.in_folder(tmp_path, "std_log.txt")
    assert read_from(log).text == ""
    log.path.write_text("one\ntwo\npart")
    chunk = read_from(log)
    assert chunk.text == "one\ntwo\n" and chunk.offset == 8
    with open(log.path, "a") as handle:
        handle.write("ial\n")
    assert read_from(log, chunk.offset).text == "partial\n"
    assert read_from(log, 0, limit=4).text == "one\n"
