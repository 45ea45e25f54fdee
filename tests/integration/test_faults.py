"""Faults injected for real, on a GPU compute declared on this CPU-only machine: a supervisor killed with
SIGKILL, a Docker daemon restarted (one of the test's own, so nothing else on the machine is disturbed), the
submitting kernel gone, a container killed for memory, and two
processes submitting 20 runs each at once. Each test fails if the behaviour it names is taken away.

(The local-process variants of some of these live in test_run_lifecycle.py.)"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from takeover import NUMBERED_JOB, kill_supervisor_while_waiting, numbered_lines

from jupyter_amltrain.core import Environment, Experiment, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.core.runconfig import DockerConfiguration
from jupyter_amltrain.engine.compute.scheduler import booking_order
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.store.db import loads
from jupyter_amltrain.engine.workspace import forget_open_workspaces

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("base_image", "declared_gpus")]

@pytest.fixture
def declared_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1")
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture(autouse=True)
def _no_leftover_runs(cancel_leftover_runs: None) -> None:
    """A failing test must not leave jobs holding GPUs (or waiting for a release file) behind it."""


def _src(project: Path, compute: ComputeTarget | None, body: str, folder: str = "job",
         arguments: list[str] | None = None) -> ScriptRunConfig:
    (project / folder).mkdir(exist_ok=True)
    (project / folder / "job.py").write_text(body)
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / folder), script="job.py", compute_target=compute,
                           environment=env, docker_runtime_config=DockerConfiguration(use_docker=True,
                                                                                      arguments=arguments))


def _compute(ws: Workspace, name: str, vm_size: str = "STANDARD_NC6", max_nodes: int = 1) -> ComputeTarget:
    return ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(vm_size=vm_size,
                                                                                max_nodes=max_nodes))


def _until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def _log(run: Run) -> str:
    path = run._layout().std_log
    return path.read_text() if path.exists() else ""


def _release(run: Run) -> None:
    (run._layout().wd / "release").touch()


def _supervisor(run: Run) -> int:
    record = run._record()
    assert record is not None and record.supervisor_pid and record.supervisor_pid > 0
    return record.supervisor_pid


TICKING_JOB = """
import os, sys, time
i = 0
while not os.path.exists("release"):
    print("tick", i, flush=True)
    i += 1
    time.sleep(0.1)
print("last line", flush=True)
sys.exit(3)
"""


@pytest.mark.timeout(240)
def test_supervisor_killed_mid_run_is_recovered_with_the_right_status_and_whole_log(
        ws: Workspace, project: Path, docker_client: docker.DockerClient) -> None:
    compute = _compute(ws, "gpu-one")
    run = Experiment(ws, "faults").submit(_src(project, compute, TICKING_JOB))
    _until(lambda: "tick 3" in _log(run), "the job ticking")
    gpus = run._record().gpus  # type: ignore[union-attr]
    os.kill(_supervisor(run), signal.SIGKILL)
    # The job ends while nobody supervises it: its exit code and last lines must still be recorded.
    _release(run)
    container = docker_client.containers.get(f"amltrain-{run.id}")
    _until(lambda: container.reload() or container.status == "exited", "the container ending unsupervised")
    assert run.get_status() == "Running"  # nobody has looked yet
    forget_open_workspaces()
    reopened = Workspace.from_config()  # whoever opens the workspace next finishes the run
    run = Run(Experiment(reopened, "faults"), run.id)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["error"]["exitCode"] == 3
    log = _log(run)
    ticks = [int(n) for n in re.findall(r"^tick (\d+)$", log, re.M)]
    assert ticks == list(range(len(ticks))) and "last line" in log  # nothing lost, nothing doubled
    assert run._record().gpus == gpus  # type: ignore[union-attr]
    assert "recovering run" in Path(details["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()
    sub_statuses = [h["subStatus"] for h in run.get_detailed_status()["history"]]
    assert sub_statuses.count("starting container") == 1  # recovered, not run again
    assert not docker_client.containers.list(all=True, filters={"label": f"amltrain.run_id={run.id}"})


@pytest.mark.timeout(240)
def test_a_notebook_waiting_with_show_output_takes_over_from_a_killed_supervisor(
        ws: Workspace, project: Path, docker_client: docker.DockerClient) -> None:
    run = Experiment(ws, "faults").submit(_src(project, None, NUMBERED_JOB))
    takeover = kill_supervisor_while_waiting(run)
    print(f"docker: a new supervisor {takeover.seconds} s after the SIGKILL")
    assert takeover.seconds is not None and takeover.seconds < 5, "the waiter never replaced the supervisor"
    assert run.get_status() == "Completed"
    printed = numbered_lines(takeover.output)
    # Every line once, in order, those printed after the kill too (the new supervisor reads the container's
    # log from its start again: the waiter must not show it twice).
    assert printed == list(range(len(printed))) and len(printed) >= takeover.lines_at_kill + 20
    assert "last line" in takeover.output and "Execution Summary" in takeover.output
    assert "recovering run" in run._layout().control_log.read_text()
    sub_statuses = [h["subStatus"] for h in run.get_detailed_status()["history"]]
    assert sub_statuses.count("starting container") == 1  # reattached, not run again
    assert not docker_client.containers.list(all=True, filters={"label": f"amltrain.run_id={run.id}"})


@pytest.mark.timeout(240)
def test_a_run_whose_container_vanished_while_unsupervised_is_reported_lost_not_run_again(
        ws: Workspace, project: Path, docker_client: docker.DockerClient) -> None:
    compute = _compute(ws, "gpu-one")
    run = Experiment(ws, "faults").submit(_src(project, compute, TICKING_JOB))
    _until(lambda: "tick 1" in _log(run), "the job ticking")
    os.kill(_supervisor(run), signal.SIGKILL)
    docker_client.containers.get(f"amltrain-{run.id}").remove(force=True)  # e.g. a `docker system prune`
    forget_open_workspaces()
    run = Run(Experiment(Workspace.from_config(), "faults"), run.id)
    details = run.wait_for_completion(raise_on_error=False)
    assert details["status"] == "Failed" and details["error"]["error"]["code"] == "JobLost"
    assert "was removed while no supervisor watched it" in details["error"]["error"]["message"]
    sub_statuses = [h["subStatus"] for h in run.get_detailed_status()["history"]]
    assert sub_statuses.count("starting container") == 1


@pytest.mark.timeout(240)
def test_a_queue_whose_head_lost_its_supervisor_moves_on_by_itself(ws: Workspace, project: Path) -> None:
    compute = _compute(ws, "gpu-one")
    exp = Experiment(ws, "faults")
    holder = exp.submit(_src(project, compute, "import os, time\nwhile not os.path.exists('release'):\n"
                                               "    time.sleep(0.05)\n"))
    orphan, last = exp.submit(_src(project, compute, "print('orphan ran')\n", "job2")), \
        exp.submit(_src(project, compute, "print('last ran')\n", "job3"))
    _until(lambda: holder.get_status() == "Running", "the first run holding the GPU")
    _until(lambda: last.get_detailed_status()["details"] == "waiting for a GPU, 1 ahead", "two runs queued")
    os.kill(_supervisor(orphan), signal.SIGKILL)  # the head of the queue loses its supervisor
    _release(holder)
    # No one opens the workspace: the supervisor waiting behind the orphan notices and replaces its supervisor.
    store = ws._local.store
    _until(lambda: all(records.get_run(store, r.id).terminal for r in (holder, orphan, last)),  # type: ignore[union-attr]
           "every run finishing without anyone reopening", 120)
    assert [records.get_run(store, r.id).status for r in (holder, orphan, last)] == ["Completed"] * 3  # type: ignore[union-attr]
    assert "orphan ran" in _log(orphan) and "last ran" in _log(last)
    assert booking_order(store, "gpu-one") == [holder.id, orphan.id, last.id]


@dataclass
class PrivateDockerd:
    """A Docker daemon of this test's own (own socket, data, containerd, and bridge), so restarting it
    disturbs nothing else on the machine: not the main daemon, not other tests running beside this one.

    It gets a bridge of its own: a daemon started with ``--bridge=none`` deletes the host's ``docker0``,
    which would cut the main daemon's containers off."""

    folder: Path
    bridge: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.folder}/docker.sock"

    def answers(self) -> bool:
        try:
            docker.DockerClient(base_url=self.host, timeout=10).ping()
        except Exception:
            return False
        return True

    def start(self) -> None:
        command = ["dockerd", "--host", self.host, "--data-root", str(self.folder / "data"), "--exec-root",
                   str(self.folder / "exec"), "--pidfile", str(self.folder / "docker.pid"), "--bridge", self.bridge,
                   "--iptables=false", "--ip-masq=false"]
        with open(self.folder / "dockerd.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        _until(self.answers, f"the test's dockerd answering (see {self.folder}/dockerd.log)", 120)

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it: live-restore is off, so it stops its containers first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def private_dockerd(docker_client: docker.DockerClient, base_image: str,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateDockerd]:
    if os.geteuid() != 0 or not shutil.which("dockerd") or not shutil.which("ip"):
        pytest.skip("a Docker daemon of the test's own needs root, dockerd and ip (iproute2)")
    bridge = f"amlt{secrets.token_hex(4)}"  # at most 15 characters
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    daemon = PrivateDockerd(Path(tempfile.mkdtemp(prefix="amltrain-dockerd-")), bridge)  # short: socket path limit
    try:
        for _ in range(20):  # a /24 nothing else on this host uses
            if subprocess.run(["ip", "addr", "add", f"10.213.{secrets.randbelow(256)}.1/24", "dev", bridge],
                              capture_output=True).returncode == 0:
                break
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        daemon.start()
        own = docker.DockerClient(base_url=daemon.host, timeout=300)
        for _ in own.api.load_image(docker_client.images.get(base_image).save(chunk_size=4 * 2**20, named=base_image)):
            pass
        monkeypatch.setenv("DOCKER_HOST", daemon.host)  # the supervisors inherit it
        yield daemon
    finally:
        daemon.stop()
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        subprocess.run(["rm", "-rf", str(daemon.folder)], check=False)


@pytest.mark.timeout(400)
def test_docker_daemon_restart_mid_run_ends_the_run_saying_what_happened(
        ws: Workspace, project: Path, private_dockerd: PrivateDockerd) -> None:
    compute = _compute(ws, "gpu-one")
    run = Experiment(ws, "faults").submit(_src(project, compute, TICKING_JOB))
    _until(lambda: "tick 3" in _log(run), "the job ticking")
    private_dockerd.restart()  # as `systemctl restart docker` does
    details = run.wait_for_completion(raise_on_error=False)
    error = details["error"]["error"]
    assert details["status"] == "Failed" and error["code"] == "DockerDaemonRestarted"
    assert "Docker daemon restarted" in error["message"] and "container stopped" in error["message"]
    assert error["exitCode"] is not None and f"exit code {error['exitCode']}" in error["message"]
    log = _log(run)
    ticks = [int(n) for n in re.findall(r"^tick (\d+)$", log, re.M)]
    assert len(ticks) > 3 and ticks == list(range(len(ticks)))  # the whole log, copied again from Docker
    control = Path(details["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()
    assert "lost contact with the Docker engine" in control and "answers again" in control


@pytest.mark.timeout(240)
def test_a_restarted_kernel_reattaches_to_the_live_log_of_its_run(ws: Workspace, project: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _compute(ws, "gpu-one")
    (project / "job").mkdir()
    (project / "job" / "job.py").write_text(
        "import os, time\nprint('waiting for release', flush=True)\nwhile not os.path.exists('release'):\n"
        "    time.sleep(0.05)\nprint('released after the reattach', flush=True)\n")
    kernel = """
import os, time
from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import ComputeTarget
ws = Workspace.from_config()
env = Environment("base-python")
env.docker.base_image = "amltrain/base:bookworm"
env.python.user_managed_dependencies = True
run = Experiment(ws, "kernel").submit(ScriptRunConfig("job", "job.py", compute_target=ComputeTarget(ws, "gpu-one"),
                                                      environment=env))
while run.get_status() != "Running":
    time.sleep(0.05)
print(run.id, flush=True)
os._exit(0)  # the kernel dies mid-run, without any cleanup
"""
    done = subprocess.run([sys.executable, "-c", kernel], cwd=project, capture_output=True, text=True, timeout=120,
                          env=os.environ)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[-1]
    forget_open_workspaces()
    run = Run(Experiment(Workspace.from_config(), "kernel"), run_id)  # the restarted kernel
    assert run.get_status() == "Running"

    def release_once_streaming() -> None:  # the job finishes only after we are attached to its log
        _until(lambda: "waiting for release" in _log(run), "the job waiting")
        time.sleep(0.5)
        _release(run)

    helper = threading.Thread(target=release_once_streaming, daemon=True)
    capsys.readouterr()
    helper.start()
    details = run.wait_for_completion(show_output=True)
    helper.join(timeout=30)
    out = capsys.readouterr().out
    assert details["status"] == "Completed"
    assert out.index("waiting for release") < out.index("released after the reattach") < out.index("Execution Summary")


@pytest.mark.timeout(240)
def test_out_of_memory_on_a_gpu_compute_fails_saying_so_and_frees_the_gpu(ws: Workspace, project: Path) -> None:
    compute = _compute(ws, "gpu-one")
    exp = Experiment(ws, "faults")
    hog = exp.submit(_src(project, compute, "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n",
                          arguments=["--memory", "128m", "--memory-swap", "128m"]))
    after = exp.submit(_src(project, compute, "print('got the GPU next')\n", "job2"))
    details = hog.wait_for_completion(raise_on_error=False)
    error = details["error"]["error"]
    assert details["status"] == "Failed" and error["code"] == "OutOfMemory" and "out of memory" in error["message"]
    assert after.wait_for_completion()["status"] == "Completed"
    assert hog._record().gpus == after._record().gpus == [0]  # type: ignore[union-attr]


SUBMITTER = """
import os, sys
from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import ComputeTarget
ws = Workspace.from_config()
env = Environment("base-python")
env.docker.base_image = "amltrain/base:bookworm"
env.python.user_managed_dependencies = True
src = ScriptRunConfig("job", "job.py", compute_target=ComputeTarget(ws, "gpu-two"), environment=env)
sys.stdin.readline()  # both submitters start together
ids = [Experiment(ws, "crowd").submit(src).id for _ in range(20)]
print(" ".join(ids), flush=True)
os._exit(0)  # gone: the queue must not need us
"""


@pytest.mark.timeout(600)
def test_two_processes_submitting_20_runs_each_share_a_2_gpu_compute_fairly(
        ws: Workspace, project: Path, docker_client: docker.DockerClient) -> None:
    _compute(ws, "gpu-two", "STANDARD_NC6", max_nodes=2)  # one GPU per node, two nodes: GPUs 0 and 1
    (project / "job").mkdir()
    (project / "job" / "job.py").write_text("import os, time\nprint('ran', os.environ['AZUREML_RUN_ID'], "
                                            "os.environ['AMLTRAIN_GPU_IDS'], flush=True)\ntime.sleep(0.2)\n")
    submitters = [subprocess.Popen([sys.executable, "-c", SUBMITTER], cwd=project, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
                  for _ in range(2)]
    for submitter in submitters:
        assert submitter.stdin is not None
        submitter.stdin.write("go\n")
        submitter.stdin.flush()
    outputs = [submitter.communicate(timeout=300) for submitter in submitters]
    assert all(submitter.returncode == 0 for submitter in submitters), [err for _, err in outputs]
    run_ids = [run_id for out, _ in outputs for run_id in out.split()]
    assert len(run_ids) == len(set(run_ids)) == 40
    store = ws._local.store
    most_busy = most_containers = 0
    deadline = time.monotonic() + 500
    while True:  # watch while they run: never more than two holding a GPU, never more than two containers
        rows = store.query("SELECT status, gpus FROM runs WHERE target = 'gpu-two' AND node IS NOT NULL AND status "
                           "NOT IN ('Completed', 'Failed', 'Canceled')")
        held = [gpu for row in rows for gpu in loads(row["gpus"], [])]
        assert len(held) == len(set(held)) <= 2
        most_busy = max(most_busy, len(rows))
        # sparse: no inspect per container, which races with containers ending between list and inspect
        running = docker_client.containers.list(sparse=True, filters={"label": "amltrain.experiment=crowd",
                                                                      "status": "running"})
        most_containers = max(most_containers, len(running))
        if all(records.get_run(store, run_id).terminal for run_id in run_ids):  # type: ignore[union-attr]
            break
        assert time.monotonic() < deadline, "the crowd of runs did not finish"
        time.sleep(0.2)
    assert most_busy <= 2 and most_containers <= 2
    finals = {run_id: records.get_run(store, run_id) for run_id in run_ids}
    assert {r.status for r in finals.values()} == {"Completed"}  # type: ignore[union-attr]
    # History: each run ran once, and the spans during which runs held a node never overlap by more than two.
    spans = []
    for run_id in run_ids:
        history = records.status_history(store, run_id)
        assert [h["status"] for h in history].count("Running") == 1
        booked = next(h["time"] for h in history if h["subStatus"].startswith("booked node"))
        ended = next(h["time"] for h in history if h["status"] == "Completed")
        spans.append((booked, ended))
        log = _log(Run(Experiment(ws, "crowd"), run_id))
        assert log.count("ran ") == 1 and f"ran {run_id}" in log
    for booked, _ in spans:
        assert sum(1 for start, end in spans if start <= booked < end) <= 2
    # FIFO: runs got their GPU in the order they were queued.
    queued = [row["run_id"] for row in store.query("SELECT run_id FROM runs WHERE target = 'gpu-two' "
                                                   "ORDER BY queue_seq")]
    assert booking_order(store, "gpu-two") == queued
    # Scheduling overhead, for the record (not asserted): a GPU freed -> the next run booked -> its container
    # running; and, for the first two runs, submit -> container running on an idle compute.
    completed = sorted(end for _, end in spans)
    hand_over, start_up, first = [], [], []
    for run_id, (booked, _) in zip(run_ids, spans, strict=True):
        history = records.status_history(store, run_id)
        running = next(h["time"] for h in history if h["status"] == "Running")
        start_up.append(running - booked)
        freed = [end for end in completed if end <= booked]
        if freed:
            hand_over.append(booked - freed[-1])
        else:
            first.append(running - history[0]["time"])

    def median(values: list[float]) -> str:
        return f"median {sorted(values)[len(values) // 2]:.3f} s, max {max(values):.3f} s" if values else "n/a"

    print(f"\n[scheduling] {len(run_ids)} runs on 2 GPUs. GPU freed -> next run booked: {median(hand_over)}; "
          f"booked -> container running: {median(start_up)}; submit -> running on the idle compute: "
          f"{median(first)}")
