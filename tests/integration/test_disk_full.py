"""A full disk, for real: the store home on a 32 MiB tmpfs (mounted here; needs root).

* A snapshot that does not fit fails the submit, naming the disk and the space it needs, and leaves nothing.
* A workspace on a full disk can still be read: the CLI, the v1 API and the panel's REST reads.
* A Docker job that fills the disk through outputs/ ends Failed with its own exit code and "disk full"; a
  local process job ends Failed with "disk full" too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from jupyter_amltrain.core import Experiment, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.runconfig import RunConfiguration
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.workspace import forget_open_workspaces
from jupyter_amltrain.exceptions import SnapshotException

pytestmark = pytest.mark.timeout(240)
DISK_MB = 32


@pytest.fixture
def small_disk(project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 32 MiB tmpfs holding AMLTRAIN_HOME (the project, with the job's sources, stays on the big disk)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = project.parent / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    monkeypatch.setenv("AMLTRAIN_HOME", str(mount / "amltrain-home"))
    forget_open_workspaces()
    try:
        yield mount
    finally:
        forget_open_workspaces()
        subprocess.run(["umount", "-l", str(mount)], check=False)  # lazy: a supervisor may still be exiting


def _fill(disk: Path) -> None:
    """Take every byte left on ``disk``."""
    with open(disk / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
        try:
            os.ftruncate(out.fileno(), out.tell())  # what a failed buffered write still held back is dropped
        except OSError:
            pass
    assert os.statvfs(disk).f_bavail == 0


def _local_src(project: Path, body: str, folder: str = "job") -> ScriptRunConfig:
    (project / folder).mkdir(exist_ok=True)
    (project / folder / "job.py").write_text(body)
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / folder), script="job.py", run_config=run_config)


def test_a_snapshot_that_does_not_fit_fails_the_submit_naming_the_disk_and_leaves_nothing(
        small_disk: Path, project: Path) -> None:
    ws = Workspace.from_config()
    config = _local_src(project, "print('never runs')\n")
    (project / "job" / "data.bin").write_bytes(os.urandom(40 * 1024 * 1024))  # more than the whole disk
    with pytest.raises(SnapshotException) as caught:
        Experiment(ws, "full").submit(config)
    message = str(caught.value)
    assert "disk full" in message and f"'{small_disk}'" in message, message
    assert re.search(r"about 40\.\d MiB more", message), message
    assert "Cannot access file" not in message
    assert records.list_runs(ws._local.store) == []  # no run row
    snapshots = ws._local.layout.snapshots
    manifests = snapshots / "manifests"
    assert not manifests.exists() or not any(manifests.iterdir())  # no snapshot a run could use
    assert not list((snapshots / "objects" / "tmp").iterdir())  # no object half-written
    assert os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize > (DISK_MB - 4) * 1024 * 1024


RUNS_CLI = "import sys\nfrom jupyter_amltrain.cli.main import main\nsys.exit(main(['runs']))\n"


def _until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def test_a_workspace_on_a_full_disk_can_still_be_read(small_disk: Path, project: Path) -> None:
    ws = Workspace.from_config()
    store = ws._local.store
    done = Experiment(ws, "full").submit(_local_src(project, "from jupyter_amltrain.core import Run\n"
                                                            "Run.get_context().log('loss', 0.5)\nprint('ok')\n"))
    done.wait_for_completion()
    orphan = records.create_run(store, experiment="full", target="local", definition={}, snapshot_id=None,
                                properties={}, tags={}, warnings=[])
    records.set_status(store, orphan.run_id, "Running")  # its supervisor is dead: opening would recover it
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    records.update_run(store, orphan.run_id, supervisor_pid=gone.pid, supervisor_started=time.time() - 60)
    forget_open_workspaces()  # nobody has the store open: SQLite has removed its WAL index, as after a reboot
    _fill(small_disk)

    listed = subprocess.run([sys.executable, "-c", RUNS_CLI], cwd=project, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert done.id in listed.stdout and orphan.run_id in listed.stdout and "Completed" in listed.stdout
    # Opening hands the orphan to the agent, which cannot write a word about it on this disk: it stays as it
    # is (taken up at the next look once there is room), and the agent's log says why.
    reopened = Workspace.from_config()
    agent_log = Path(reopened._local.settings.home) / "agent" / "agent.log"
    _until(lambda: agent_log.exists() and "full" in agent_log.read_text(), "the agent saying the disk is full")
    runs = {run.id: run for run in Experiment(reopened, "full").get_runs()}
    assert set(runs) == {done.id, orphan.run_id}
    assert runs[done.id].get_metrics() == {"loss": 0.5}
    assert runs[done.id].get_details()["status"] == "Completed"
    assert records.get_run(reopened._local.store, orphan.run_id).status == "Running"  # type: ignore[union-attr]

    from jupyter_amltrain.engine.workspace import open_workspace
    from jupyter_amltrain.server import payloads

    forget_open_workspaces()
    local = open_workspace("ws-test")  # as the server opens it for a request
    listing = payloads.runs_payload(local, experiment=None, status=None, limit=50, offset=0)
    assert {row["run_id"] for row in listing["runs"]} == {done.id, orphan.run_id}
    assert payloads.run_payload(local, done.id)["status"] == "Completed"
    assert payloads.metrics_payload(local, done.id, None)["latest"] == {"loss": 0.5}
    assert [e["name"] for e in payloads.experiments_payload(local)["experiments"]] == ["full"]


FILL_OUTPUTS = """
import os, sys
written = 0
try:
    with open("outputs/fill.bin", "wb") as out:
        while True:
            out.write(b"x" * (1 << 20))
            out.flush()
            written += 1
except OSError as exc:
    print(f"wrote {written} MiB of outputs, then: {exc}", file=sys.stderr, flush=True)
    sys.exit(3)
"""


@pytest.mark.docker
@pytest.mark.usefixtures("base_image")
def test_a_docker_job_that_fills_the_disk_fails_with_its_exit_code_and_disk_full(
        small_disk: Path, project: Path, docker_client: docker.DockerClient) -> None:
    from jupyter_amltrain.core import Environment
    from jupyter_amltrain.core.runconfig import DockerConfiguration

    ws = Workspace.from_config()
    (project / "filler").mkdir()
    (project / "filler" / "job.py").write_text(FILL_OUTPUTS)
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    run = Experiment(ws, "full").submit(ScriptRunConfig(
        source_directory=str(project / "filler"), script="job.py", environment=env,
        docker_runtime_config=DockerConfiguration(use_docker=True)))
    try:
        deadline = time.monotonic() + 180
        while not records.get_run(ws._local.store, run.id).terminal:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, (
                f"the run stayed {run.get_status()} after its job filled the disk; control log:\n"
                + run._layout().control_log.read_text(errors="replace"))
            time.sleep(0.2)
        details = run.get_details()
        error = details["error"]["error"]
        assert details["status"] == "Failed", details
        assert error["exitCode"] == 3 and error["code"] == "DiskFull", error
        assert "disk full" in error["message"] and f"'{small_disk}'" in error["message"], error["message"]
        assert "No space left on device" in error["stderrTail"]
        record = records.get_run(ws._local.store, run.id)
        assert record is not None and record.exit_code == 3
        assert os.statvfs(small_disk).f_bavail < 1024  # still full: nothing above needed freeing by hand

        # The supervisor is done with the container (it was kept while the outcome lived only in memory).
        deadline = time.monotonic() + 30
        while docker_client.containers.list(all=True, filters={"label": f"amltrain.run_id={run.id}"}):
            assert time.monotonic() < deadline, "the finished run's container was never removed"
            time.sleep(0.2)

        forget_open_workspaces()
        listed = subprocess.run([sys.executable, "-c", RUNS_CLI], cwd=project, capture_output=True, text=True,
                                timeout=60)
        assert listed.returncode == 0 and run.id in listed.stdout and "Failed" in listed.stdout, listed.stderr
    finally:
        for container in docker_client.containers.list(all=True, filters={"label": f"amltrain.run_id={run.id}"}):
            container.remove(force=True)


def test_a_local_process_job_that_fills_the_disk_fails_saying_disk_full(small_disk: Path, project: Path) -> None:
    ws = Workspace.from_config()
    run = Experiment(ws, "full").submit(_local_src(project, FILL_OUTPUTS))
    deadline = time.monotonic() + 120
    while not records.get_run(ws._local.store, run.id).terminal:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, (
            f"the run stayed {run.get_status()} after its job filled the disk; control log:\n"
            + run._layout().control_log.read_text(errors="replace"))
        time.sleep(0.2)
    error = run.get_details()["error"]["error"]
    # Ended, saying why, with the job's own exit code: the launcher kept room for its exit record.
    assert run.get_status() == "Failed" and error["code"] == "DiskFull" and "disk full" in error["message"], error
    assert error["exitCode"] == 3, error


def test_runs_can_be_opened_as_a_run_object_on_a_full_disk(small_disk: Path, project: Path) -> None:
    ws = Workspace.from_config()
    run = Experiment(ws, "full").submit(_local_src(project, "print('ok')\n"))
    run.wait_for_completion()
    forget_open_workspaces()
    _fill(small_disk)
    again = Run(Experiment(Workspace.from_config(), "full"), run.id)
    assert again.get_status() == "Completed"
    assert again.wait_for_completion()["status"] == "Completed"
