"""The agent of a store home: one process drives every run (no interpreter per run), two never run at once,
nobody else's requests are served, and SIGKILL with a queue of 20 loses no run and runs none twice."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jupyter_amltrain.cli.main import main as amltrain
from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import ComputeTarget
from jupyter_amltrain.engine.agent import agent_status, ensure_agent, stop_agent
from jupyter_amltrain.engine.agent.paths import AgentPaths, agent_pid
from jupyter_amltrain.engine.agent.protocol import receive, send
from jupyter_amltrain.engine.runs import records

pytestmark = pytest.mark.timeout(300)


def _until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def _local_src(project: Path, body: str, compute: ComputeTarget | None = None) -> ScriptRunConfig:
    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(body)
    env = Environment("host-python")
    env.python.user_managed_dependencies = True  # a local process with this interpreter: no Docker needed
    return ScriptRunConfig(source_directory="job", script="job.py", compute_target=compute, environment=env)


def _processes_running(module: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if module.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_every_run_is_driven_by_one_agent_with_no_process_per_run(ws: Workspace, project: Path) -> None:
    exp = Experiment(ws, "agent")
    runs = [exp.submit(_local_src(project, "import time; time.sleep(1); print('done')")) for _ in range(3)]
    home = Path(ws._local.settings.home).resolve()
    pid = agent_pid(AgentPaths(home))
    assert pid is not None
    _until(lambda: all(r.get_status() == "Running" for r in runs), "three runs running side by side")
    assert {r._record().supervisor_pid for r in runs} == {pid}  # type: ignore[union-attr]
    assert _processes_running("jupyter_amltrain.engine.runs.supervisor") == []
    status = agent_status(home)
    assert status is not None and {r["run_id"] for r in status.get("runs", [])} == {r.id for r in runs}
    for run in runs:
        run.wait_for_completion()
        assert run.get_status() == "Completed"


def test_two_agents_of_one_home_never_run_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    agents = [subprocess.Popen([sys.executable, "-m", "jupyter_amltrain.engine.agent", "--home", str(home), "--serve",
                                "--idle-seconds", "30"]) for _ in range(4)]
    try:
        _until(lambda: sum(a.poll() is not None for a in agents) == 3, "three of four agents giving way", 60)
        survivors = [a for a in agents if a.poll() is None]
        assert len(survivors) == 1 and all(a.returncode == 0 for a in agents if a is not survivors[0])
        _until(lambda: agent_pid(AgentPaths(home.resolve())) == survivors[0].pid, "the survivor's pid file")
        assert ensure_agent(home)["pid"] == survivors[0].pid
    finally:
        stop_agent(home)
        for agent in agents:
            agent.kill()
            agent.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_users_requests_are_refused() -> None:
    # A home whose parents another user may pass through (pytest's tmp folders are root's alone).
    tmp_path = Path(tempfile.mkdtemp(prefix="amltrain-agent-", dir="/tmp"))
    home = tmp_path / "home"
    ensure_agent(home)
    paths = AgentPaths(home.resolve())
    try:
        assert (paths.folder.stat().st_mode & 0o777) == 0o700 and (paths.socket.stat().st_mode & 0o777) == 0o600

        def as_nobody() -> str:
            """Connect as uid 65534; returns what happened."""
            read, write = os.pipe()
            child = os.fork()
            if child == 0:  # pragma: no cover - the child
                os.close(read)
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    with socket.socket(socket.AF_UNIX) as sock:
                        sock.connect(str(paths.socket))
                        send(sock, {"op": "stop"})
                        answer = receive(sock)
                    result = repr(answer)
                except OSError as error:
                    result = type(error).__name__
                os.write(write, result.encode())
                os._exit(0)
            os.close(write)
            os.waitpid(child, 0)
            with os.fdopen(read) as pipe:
                return pipe.read()

        assert as_nobody() == "PermissionError"  # the folder is the owner's alone
        # Even where the folder lets others in, the agent checks each peer's credentials itself.
        os.chmod(tmp_path, 0o755)
        os.chmod(home, 0o755)
        os.chmod(paths.folder, 0o755)
        os.chmod(paths.socket, 0o666)
        answer = as_nobody()
        assert "'ok': False" in answer and "serves uid 0 only" in answer
        assert agent_status(home) is not None  # the stop request was not obeyed
        assert "refused a connection from uid 65534" in paths.log.read_text()
    finally:
        stop_agent(home)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_agent_cli_start_status_stop(amltrain_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert amltrain(["agent", "status"]) == 3
    assert amltrain(["agent", "start"]) == 0
    assert amltrain(["agent", "status"]) == 0
    assert amltrain(["agent", "stop"]) == 0
    out = capsys.readouterr().out
    assert "no agent running" in out and "serving" in out and "driving 0 run(s)" in out and "stopped" in out
    assert agent_status(amltrain_home) is None


@pytest.mark.timeout(600)
def test_sigkill_to_the_agent_with_20_runs_queued_loses_none_and_runs_none_twice(
        ws: Workspace, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Local processes queueing FIFO for one (declared) GPU: a queue without Docker, and a ledger on this host.
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    ledger = project / "ledger.txt"  # every job appends its run id once per execution
    body = (f"import os, time\nopen({str(ledger)!r}, 'a').write(os.environ['AZUREML_RUN_ID'] + '\\n')\n"
            "time.sleep(0.3)\nprint('ran', os.environ['AZUREML_RUN_ID'])\n")
    exp = Experiment(ws, "crowd")
    runs = [exp.submit(_local_src(project, body), gpus=1) for _ in range(20)]
    home = Path(ws._local.settings.home).resolve()
    store = ws._local.store
    _until(lambda: sum(records.get_run(store, r.id).terminal for r in runs) >= 4,  # type: ignore[union-attr]
           "a few runs done")
    killed = agent_pid(AgentPaths(home))
    assert killed is not None
    os.kill(killed, signal.SIGKILL)  # nobody reopens the workspace: the agent's watchdog starts a new one
    _until(lambda: all(records.get_run(store, r.id).terminal for r in runs),  # type: ignore[union-attr]
           "all 20 runs finishing after the kill", 300)
    assert agent_pid(AgentPaths(home)) not in (None, killed)
    assert [records.get_run(store, r.id).status for r in runs] == ["Completed"] * 20  # type: ignore[union-attr]
    executions = ledger.read_text().split()
    assert sorted(executions) == sorted(r.id for r in runs)  # each ran, and ran once
    for run in runs:
        history = [h["status"] for h in records.status_history(store, run.id)]
        assert history.count("Running") <= 2  # a run re-attached after the kill says Running again, no rerun
