"""Whoever waits on a run keeps it driven: every face that waits has the agent adopt a run whose driver died,
through ``ensure_supervised``, and many processes looking at once get it adopted once, not once each.

The adoption is a stand-in in the first tests (``adopt_orphans`` replaced), so they need no job; the last one
uses the real agent. The real thing, the agent killed with SIGKILL while a notebook waits, is in
tests/integration (test_faults.py for Docker, test_run_lifecycle.py for a local process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_amltrain.core import Experiment, Run, Workspace
from jupyter_amltrain.engine.runs import records, recovery
from jupyter_amltrain.engine.workspace import open_workspace

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


@pytest.fixture(autouse=True)
def no_agent_warm_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening a workspace starts the agent in the background, which would take up these tests' orphans on its
    own; here only the faces under test may ask for it."""
    monkeypatch.setattr(recovery, "warm_agent", lambda home: None)


@pytest.fixture
def takeovers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replaces the agent's adoption by one that finishes the orphans at once (exit code 0)."""
    started: list[str] = []

    def adopt(home: Path, workspace: Path) -> list[str]:
        ws = open_workspace("ws-test")
        adopted = []
        for row in ws.store.query("SELECT run_id FROM runs WHERE status = 'Running'"):
            started.append(row["run_id"])
            adopted.append(row["run_id"])
            records.set_status(ws.store, row["run_id"], "Completed", "", exit_code=0)
        return adopted

    monkeypatch.setattr(recovery, "adopt_orphans", adopt)
    return started


def _wait_quietly(run: Run) -> None:
    run.wait_for_completion()


def _wait_showing_output(run: Run) -> None:
    run.wait_for_completion(show_output=True, raise_on_error=False)


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
    # Taken up exactly once: by the stand-in adoption (faces that look through ensure_supervised), or by the
    # real agent that the run's follower starts (the notebook stream), which ends a run that has no plan.
    agent_log = Path(ws._local.settings.home) / "agent" / "agent.log"
    by_agent = agent_log.exists() and f"adopted run {run.id}" in agent_log.read_text()
    assert (takeovers == [run.id]) != by_agent, (takeovers, by_agent)
    assert run.get_status() == ("Failed" if by_agent else "Completed")


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
    import sys, time
    from jupyter_amltrain.engine.runs import recovery
    from jupyter_amltrain.engine.workspace import open_workspace

    ws = open_workspace("ws-test")
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all start their look at the same moment
    print(recovery.ensure_supervised(ws, sys.argv[1], every=0))
""")


def test_many_waiters_at_once_have_the_run_adopted_once(ws: Workspace, project: Path) -> None:
    """Six processes look at the same orphan at once: one real agent starts, and it adopts the run once (the
    orphan has no plan, so the agent ends it Failed, saying the submission did not finish)."""
    run_id = _orphan(ws)
    start = time.time() + 2.0
    contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER, run_id, str(start)], stdout=subprocess.PIPE,
                                   text=True) for _ in range(6)]
    answers = [process.communicate(timeout=30)[0].strip() for process in contenders]
    assert answers.count("True") <= 1 and len(answers) == 6, answers  # the agent may adopt it as it starts
    deadline = time.monotonic() + 20
    while records.get_run(ws._local.store, run_id).status != "Failed":  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    record = records.get_run(ws._local.store, run_id)
    assert record is not None and record.error["error"]["code"] == "SubmissionIncomplete"
    log = (Path(ws._local.settings.home) / "agent" / "agent.log").read_text()
    assert log.count(" serving ") == 1  # one agent, however many asked
    assert sum(f"adopted run {run_id}" in line for line in log.splitlines()) == 1
