"""Whoever waits on a run keeps it supervised: every face that waits replaces a dead supervisor through
``ensure_supervised``, and many processes looking at once start one supervisor, not one each.

The supervisor started here is a stand-in (``spawn_supervisor`` replaced), so these tests need no job; the
real thing, a supervisor killed with SIGKILL while a notebook waits, is in tests/integration (test_faults.py
for Docker, test_run_lifecycle.py for a local process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.core import Experiment, Run, Workspace
from jupyter_amltrain.engine.runs import records, recovery
from jupyter_amltrain.engine.workspace import LocalWorkspace

pytestmark = pytest.mark.timeout(60)  # without the takeover a waiter hangs: fail instead


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _orphan(ws: Workspace, experiment: str = "orphans") -> str:
    """A run that is Running while its supervisor is dead (killed without a trace)."""
    record = records.create_run(ws._local.store, experiment=experiment, target="local", definition={},
                                snapshot_id=None, properties={}, tags={}, warnings=[])
    records.set_status(ws._local.store, record.run_id, "Running")
    records.update_run(ws._local.store, record.run_id, supervisor_pid=_dead_pid(), supervisor_started=time.time())
    return record.run_id


@pytest.fixture
def takeovers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replaces the supervisor a takeover starts by one that finishes the run at once (exit code 0)."""
    started: list[str] = []

    def spawn(ws: LocalWorkspace, run_id: str, secrets: dict[str, Any], *, recover: bool = False) -> int:
        assert recover
        started.append(run_id)
        records.set_status(ws.store, run_id, "Completed", "", exit_code=0)
        return _dead_pid()

    monkeypatch.setattr(recovery, "spawn_supervisor", spawn)
    return started


def _wait_quietly(run: Run) -> None:
    run.wait_for_completion()


def _wait_showing_output(run: Run) -> None:
    run.wait_for_completion(show_output=True)


def _widget(run: Run) -> None:
    from jupyter_amltrain.widgets.run_details import RunDetails

    details = RunDetails(run, refresh_seconds=0.05)
    details.start()
    assert details.wait(timeout=30), "the widget kept refreshing a run whose supervisor is dead"


def _magic_follow(run: Run) -> None:
    from IPython.testing.globalipapp import start_ipython

    from jupyter_amltrain.notebook.magics import AmlTrainMagics

    shell = start_ipython() or __import__("IPython").get_ipython()
    shell.register_magics(AmlTrainMagics(shell))
    shell.run_line_magic("aml_logs", f"{run.id} --follow")


def _cli_follow(run: Run) -> None:
    from jupyter_amltrain.cli.main import main

    assert main(["logs", run.id, "--follow"]) == 0


def _server_stream(run: Run) -> None:
    from jupyter_amltrain.server.streams import read_tick

    deadline = time.monotonic() + 30
    while not read_tick(run.experiment.workspace._local, run.id, None, 0, True).terminal:
        assert time.monotonic() < deadline, "the log stream kept following a run whose supervisor is dead"
        time.sleep(0.05)


@pytest.mark.parametrize("wait", [_wait_quietly, _wait_showing_output, _widget, _magic_follow, _cli_follow,
                                  _server_stream], ids=lambda f: f.__name__.strip("_"))
def test_every_face_that_waits_replaces_a_dead_supervisor(ws: Workspace, takeovers: list[str],
                                                          wait: Callable[[Run], None]) -> None:
    run = Run(Experiment(ws, "orphans"), _orphan(ws))
    wait(run)
    assert takeovers == [run.id]
    assert run.get_status() == "Completed"


def test_a_run_with_a_live_supervisor_is_left_alone(ws: Workspace, takeovers: list[str]) -> None:
    run_id = _orphan(ws)
    records.update_run(ws._local.store, run_id, supervisor_pid=None)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", run_id]) as alive:
        records.update_run(ws._local.store, run_id, supervisor_pid=alive.pid)
        assert not recovery.ensure_supervised(ws._local, run_id, every=0)
        alive.kill()
    assert takeovers == []


def test_looks_are_throttled_per_run(ws: Workspace, takeovers: list[str]) -> None:
    run_id = _orphan(ws)
    assert recovery.ensure_supervised(ws._local, run_id)
    started = time.perf_counter()
    for _ in range(1000):  # what a waiter polling every 50 ms does in 50 s: one look, then nothing to do
        recovery.ensure_supervised(ws._local, run_id)
    assert (time.perf_counter() - started) / 1000 < 0.0005
    assert takeovers == [run_id]


CONTENDER = textwrap.dedent("""
    import subprocess, sys, time
    from jupyter_amltrain.engine.runs import recovery
    from jupyter_amltrain.engine.workspace import open_workspace

    def spawn(ws, run_id, secrets, *, recover=False):
        # A stand-in supervisor: alive, with the run id on its command line, as the real one has.
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", run_id],
                                stdout=subprocess.DEVNULL, start_new_session=True).pid

    recovery.spawn_supervisor = spawn
    ws = open_workspace("ws-test")
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start their look at the same moment
    print(recovery.ensure_supervised(ws, sys.argv[1], every=0))
""")


def test_many_waiters_at_once_start_one_supervisor(ws: Workspace, project: Path) -> None:
    run_id = _orphan(ws)
    start = time.time() + 2.0
    contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER, run_id, str(start)], stdout=subprocess.PIPE,
                                   text=True) for _ in range(6)]
    answers = [process.communicate(timeout=30)[0].strip() for process in contenders]
    record = records.get_run(ws._local.store, run_id)
    assert record is not None and record.supervisor_pid and record.supervisor_pid > 0
    try:
        assert sorted(answers) == ["False"] * 5 + ["True"], answers
        assert recovery.supervisor_alive(record.supervisor_pid, run_id)
    finally:
        subprocess.run(["kill", str(record.supervisor_pid)], check=False)
