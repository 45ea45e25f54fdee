"""A compute is a pool of local nodes: max_nodes runs at once, the rest queue in order, and get_status()
reports the live counts with v1's keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.exceptions import ComputeTargetException

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("base_image"), pytest.mark.timeout(240)]


def _src(project: Path, compute: ComputeTarget, seconds: float) -> ScriptRunConfig:
    (project / "job").mkdir(exist_ok=True)
    (project / "job" / "job.py").write_text(f"import time\nprint('start', flush=True)\ntime.sleep({seconds})\n")
    env = Environment("base-python")
    env.docker.base_image = "amltrain/base:bookworm"
    env.python.user_managed_dependencies = True
    return ScriptRunConfig(source_directory=str(project / "job"), script="job.py", compute_target=compute,
                           environment=env)


def test_one_node_runs_one_job_and_queues_the_rest_in_order(ws: Workspace, project: Path) -> None:
    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=1)
    compute = ComputeTarget.create(ws, "cpu-pool", config)
    assert ws.compute_targets["cpu-pool"].name == "cpu-pool"
    exp = Experiment(ws, "pool")
    first = exp.submit(_src(project, compute, 60))
    second = exp.submit(_src(project, compute, 0))
    third = exp.submit(_src(project, compute, 0))
    deadline = time.monotonic() + 60
    while first.get_status() != "Running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)
    assert second.get_status() == "Queued" and third.get_status() == "Queued"
    assert third.get_detailed_status()["details"] == "waiting for a node, 1 ahead"
    status = compute.get_status().serialize()
    assert status["currentNodeCount"] == 1 and status["targetNodeCount"] == 1
    assert status["nodeStateCounts"]["runningNodeCount"] == 1
    assert status["vmSize"] == "STANDARD_D2_V2" and status["scaleSettings"]["maxNodeCount"] == 1
    with pytest.raises(ComputeTargetException, match="active run"):
        compute.delete()
    first.cancel()
    second.wait_for_completion()
    third.wait_for_completion()
    ends = {run.id: run.get_details()["endTimeUtc"] for run in (second, third)}
    assert ends[second.id] <= ends[third.id]  # first in, first out
    assert compute.get_status().serialize()["nodeStateCounts"]["runningNodeCount"] == 0
    compute.delete()
    with pytest.raises(ComputeTargetException, match="ComputeTargetNotFound"):
        ComputeTarget(ws, "cpu-pool")


def test_gpu_cluster_without_gpus_warns_at_provisioning_and_in_the_run(ws: Workspace, project: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    compute = ComputeTarget.create(ws, "gpu-cluster",
                                   AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=1))
    assert "no GPU" in capsys.readouterr().err
    run = Experiment(ws, "pool").submit(_src(project, compute, 0))
    details = run.wait_for_completion()
    assert any("runs on the CPU" in w["message"] for w in details["warnings"])
    assert "runs on the CPU" in Path(details["logFiles"]["azureml-logs/60_control_log.txt"]).read_text()
