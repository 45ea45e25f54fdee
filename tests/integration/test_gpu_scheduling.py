"""GPU computes on a CPU-only machine, for real: a declared inventory (GPUs 0-3) stands in for the devices,
and everything else is the real thing: stores, supervisors, Docker containers, their environment. Each run
holds exactly its GPUs, the rest queue in order, refusals come at submit, and system metrics are recorded."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from jupyter_amltrain.core import Environment, Experiment, Run, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.core.runconfig import RunConfiguration
from jupyter_amltrain.engine.compute.admission import check_gpu_request
from jupyter_amltrain.engine.compute.gpus import GpuInfo, GpuInventory
from jupyter_amltrain.engine.compute.nvidia_docker import nvidia_support
from jupyter_amltrain.engine.views.runs import count_runs
from jupyter_amltrain.exceptions import ComputeTargetException, DockerEngineException, UserErrorException

pytestmark = pytest.mark.timeout(300)

# The job records the GPU variables it was given, then holds its GPUs until the test drops a file into
# its working folder: the test decides when GPUs free up, so nothing depends on how fast this machine is.
HOLDING_JOB = """
import json, os, time
os.makedirs("outputs", exist_ok=True)
keys = ["CUDA_VISIBLE_DEVICES", "AMLTRAIN_GPU_IDS", "NVIDIA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"]
json.dump({k: os.environ.get(k) for k in keys}, open("outputs/gpu_env.json", "w"))
print("holding my GPUs", flush=True)
while not os.path.exists("release"):
    time.sleep(0.05)
print("released", flush=True)
"""


@pytest.fixture
def four_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host 'has' GPUs 0-3 (the supervisors inherit the variable)."""
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1,2,3")
    monkeypatch.delenv("NVIDIA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture(autouse=True)
def _no_leftover_runs(cancel_leftover_runs: None) -> None:
    """A failing test must not leave jobs holding GPUs (or waiting for a release file) behind it."""


def _docker_src(project: Path, compute: ComputeTarget, body: str = HOLDING_JOB) -> ScriptRunConfig:
    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(body)
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / "job"), script="job.py", compute_target=compute,
                           environment=env)


def _until(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def _release(run: Run) -> None:
    (run._layout().wd / "release").touch()


def _gpu_env(run: Run, project: Path) -> dict[str, str]:
    target = project / f"{run.id}-gpu_env.json"
    run.download_file("outputs/gpu_env.json", str(target))
    return dict(json.loads(target.read_text()))


def _compute(ws: Workspace, name: str, vm_size: str, max_nodes: int, **kwargs: object) -> ComputeTarget:
    return ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(vm_size=vm_size, max_nodes=max_nodes,
                                                                                **kwargs))  # type: ignore[arg-type]


@pytest.mark.docker
@pytest.mark.usefixtures("base_image", "four_gpus")
def test_each_run_holds_exactly_its_gpus_and_later_runs_wait(ws: Workspace, project: Path,
                                                             docker_client: docker.DockerClient) -> None:
    compute = _compute(ws, "gpu-nc12", "STANDARD_NC12", 2)  # 2 GPUs per node, 2 nodes: all four GPUs
    exp = Experiment(ws, "gpus")
    src = _docker_src(project, compute)
    first, second = exp.submit(src), exp.submit(src)
    single = exp.submit(src, gpus=1)  # a run may ask for another count than the node default
    for run in (first, second):
        _until(lambda run=run: run.get_status() == "Running", f"{run.id} running")  # type: ignore[misc]
    _until(lambda: single.get_detailed_status()["details"] == "waiting for a GPU: all 2 node(s) busy",
           "the third run waiting for a GPU")
    held = {run.id: run._record().gpus for run in (first, second)}  # type: ignore[union-attr]
    assert sorted(held[first.id] + held[second.id]) == [0, 1, 2, 3]
    for run in (first, second):
        container = docker_client.containers.get(f"amltrain-{run.id}")
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
        assert env["CUDA_VISIBLE_DEVICES"] == "0,1"  # what a container with two devices would see
        assert env["AMLTRAIN_GPU_IDS"] == ",".join(map(str, held[run.id]))
        assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
        assert not container.attrs["HostConfig"].get("DeviceRequests")  # declared GPUs: no device requested
    _release(first)
    assert first.wait_for_completion()["status"] == "Completed"
    _until(lambda: single.get_status() == "Running", "the third run starting once GPUs freed up")
    assert single._record().gpus == held[first.id][:1]  # type: ignore[union-attr]
    for run in (second, single):
        _release(run)
        run.wait_for_completion()
    assert _gpu_env(single, project) == {"CUDA_VISIBLE_DEVICES": "0", "AMLTRAIN_GPU_IDS": str(held[first.id][0]),
                                         "NVIDIA_VISIBLE_DEVICES": "void", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    control = Path(single.get_details()["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()
    assert "declared GPU inventory in use: 0,1,2,3 (no real GPUs)" in control
    assert "the container gets CUDA_VISIBLE_DEVICES=0 and no device" in control
    history = [h["subStatus"] for h in single.get_detailed_status()["history"]]
    assert f"booked node 0 with GPUs {held[first.id][:1]}" in history


@pytest.mark.docker
@pytest.mark.usefixtures("base_image", "four_gpus")
def test_cancelling_a_queued_run_removes_it_from_the_queue(ws: Workspace, project: Path,
                                                           docker_client: docker.DockerClient) -> None:
    compute = _compute(ws, "gpu-three", "STANDARD_NC6", 1, gpu_ids=[3])  # pinned to GPU 3
    exp = Experiment(ws, "gpus")
    src = _docker_src(project, compute)
    holder, canceled, last = exp.submit(src), exp.submit(src), exp.submit(src)
    _until(lambda: holder.get_status() == "Running", "the first run holding GPU 3")
    _until(lambda: last.get_detailed_status()["details"] == "waiting for a GPU, 1 ahead", "two runs in the queue")
    canceled.cancel()
    assert canceled.get_status() == "Canceled"  # at once: a queued run holds nothing to give back
    _until(lambda: last.get_detailed_status()["details"] == "waiting for a GPU: all 1 node(s) busy",
           "the last run moving to the head of the queue")
    _release(holder)
    _until(lambda: last.get_status() == "Running", "the last run starting")
    assert last._record().gpus == [3]  # type: ignore[union-attr]
    _release(last)
    assert last.wait_for_completion()["status"] == "Completed"
    statuses = [h["status"] for h in canceled.get_detailed_status()["history"]]
    assert statuses[-1] == "Canceled" and "Running" not in statuses and "Starting" not in statuses
    assert not docker_client.containers.list(all=True, filters={"label": f"amltrain.run_id={canceled.id}"})


@pytest.mark.docker
@pytest.mark.usefixtures("base_image", "four_gpus")
def test_gpu_requests_the_host_can_not_satisfy_are_refused_at_submit(ws: Workspace, project: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    compute = _compute(ws, "gpu-pinned", "STANDARD_NC6", 2, gpu_ids=[2, 3])
    exp = Experiment(ws, "gpus")
    src = _docker_src(project, compute)
    before = count_runs(ws._local.store)
    with pytest.raises(ComputeTargetException, match=r"asks for 3 GPU\(s\) but compute 'gpu-pinned' has 2"):
        exp.submit(src, gpus=3)
    with pytest.raises(UserErrorException, match="is not a GPU count"):
        exp.submit(src, gpus="two")
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1,2")  # GPU 3 is gone from the host
    with pytest.raises(ComputeTargetException, match=r"GPU\(s\) \[3\] do not exist.*Create the compute again"):
        exp.submit(src)
    assert count_runs(ws._local.store) == before  # nothing half-written


@pytest.mark.docker
def test_real_gpus_need_the_nvidia_container_runtime(ws: Workspace, docker_client: docker.DockerClient) -> None:
    if nvidia_support(docker_client) is not None:
        pytest.skip("this Docker engine has the NVIDIA runtime")
    real = GpuInventory((GpuInfo(index=0, uuid="GPU-0e1f", name="NVIDIA H200", memory_total_bytes=0),))
    with pytest.raises(DockerEngineException, match=r"no NVIDIA container runtime.*NVIDIA Container Toolkit"):
        check_gpu_request(ws._local.store, "local", 1, inventory=real, use_docker=True,
                          nvidia_support=lambda: nvidia_support(docker_client))


@pytest.mark.usefixtures("four_gpus")
def test_local_process_runs_get_cuda_visible_devices(ws: Workspace, project: Path) -> None:
    (project / "job").mkdir()
    (project / "job" / "job.py").write_text(
        "import json, os\nos.makedirs('outputs', exist_ok=True)\n"
        "json.dump({k: os.environ.get(k) for k in ['CUDA_VISIBLE_DEVICES', 'AMLTRAIN_GPU_IDS']},"
        " open('outputs/gpu_env.json', 'w'))\n")
    run_config = RunConfiguration()
    run_config.environment.python.user_managed_dependencies = True
    src = ScriptRunConfig(source_directory=str(project / "job"), script="job.py", run_config=run_config)
    with_gpus = Experiment(ws, "local-gpus").submit(src, gpus=2)
    without = Experiment(ws, "local-gpus").submit(src)
    for run in (with_gpus, without):
        assert run.wait_for_completion()["status"] == "Completed"
    assert _gpu_env(with_gpus, project) == {"CUDA_VISIBLE_DEVICES": "0,1", "AMLTRAIN_GPU_IDS": "0,1"}
    # A run that asked for no GPU sees none, not every GPU of the host.
    assert _gpu_env(without, project) == {"CUDA_VISIBLE_DEVICES": "", "AMLTRAIN_GPU_IDS": None}


@pytest.mark.docker
@pytest.mark.usefixtures("base_image", "four_gpus")
def test_system_metrics_are_recorded_apart_from_user_metrics(ws: Workspace, project: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMLTRAIN_SYSTEM_METRICS_INTERVAL", "0.2")
    compute = _compute(ws, "gpu-metrics", "STANDARD_NC6", 1)
    body = """
import os, time
from jupyter_amltrain.core import Run
run = Run.get_context()
block = bytearray(160 * 1024 * 1024)  # resident: every page written
for i in range(0, len(block), 4096):
    block[i] = 1
run.log("accuracy", 0.9)
while not os.path.exists("release"):
    sum(range(10000))  # busy: CPU time accrues
"""
    run = Experiment(ws, "metrics").submit(_docker_src(project, compute, body))

    def sampled() -> bool:
        metrics = run.get_system_metrics()
        return bool(metrics.get("memory_usage_bytes")) and max(metrics["memory_usage_bytes"]["value"]) > 150e6 \
            and len(metrics.get("cpu_utilization_percentage", {}).get("value", [])) >= 2

    _until(lambda: run.get_status() in ("Running", "Completed", "Failed"), "the run starting")
    _until(sampled, "CPU and memory readings of the container (flushed every few seconds)")
    _release(run)
    assert run.wait_for_completion()["status"] == "Completed"
    metrics = run.get_system_metrics()
    assert max(metrics["cpu_utilization_percentage"]["value"]) > 0
    times = metrics["memory_usage_bytes"]["time"]
    assert times == sorted(times)
    assert not any(name.startswith("gpu_") for name in metrics)  # declared GPUs have nothing to read
    assert run.get_metrics() == {"accuracy": 0.9}  # v1's shape, untouched by system metrics
    assert run.get_system_metrics("memory_usage_bytes").keys() == {"memory_usage_bytes"}
    control = Path(run.get_details()["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()
    assert "system metrics: declared GPU inventory in use" in control
    assert "ms of CPU per sample" in control
