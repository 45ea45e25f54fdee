"""What every backend reports, and the job environment they share."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import jupyter_amltrain
from jupyter_amltrain.engine.compute.gpus import GpuInventory
from jupyter_amltrain.engine.runs.plan import RunPlan

PACKAGE_DIR = Path(jupyter_amltrain.__file__).resolve().parent


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    oom_killed: bool = False
    timed_out: bool = False
    signal: int | None = None
    stderr_tail: str = ""
    lost: str | None = None  # why the job's end could not be observed (daemon restart, process vanished)
    docker_restarted: bool = False  # the Docker daemon went away while the job ran (it stops containers)


def runtime_lib_dir(home: Path) -> Path:
    """A folder holding only ``jupyter_amltrain`` (as a link), so a job's PYTHONPATH exposes nothing else."""
    lib = home / "runtime-lib"
    link = lib / "jupyter_amltrain"
    if not link.exists():
        lib.mkdir(parents=True, exist_ok=True)
        tmp = lib / f".link-{os.getpid()}-{threading.get_ident()}"  # the agent makes it from many threads
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(PACKAGE_DIR, target_is_directory=True)
        os.replace(tmp, link)
    return lib


def job_environment(plan: RunPlan, *, tracking_dir: str, workdir: str, pythonpath: str) -> dict[str, str]:
    ws = plan.workspace
    scope = (f"/subscriptions/{ws.get('subscription_id', '')}/resourceGroups/{ws.get('resource_group', '')}"
             f"/providers/Microsoft.MachineLearningServices/workspaces/{ws.get('name', '')}")
    env = {
        **{k: str(v) for k, v in plan.environment_variables.items()},
        "AZUREML_RUN_ID": plan.run_id,
        "AZUREML_ROOT_RUN_ID": plan.run_id,
        "AZUREML_ARM_SUBSCRIPTION": ws.get("subscription_id", ""),
        "AZUREML_ARM_RESOURCEGROUP": ws.get("resource_group", ""),
        "AZUREML_ARM_WORKSPACE_NAME": ws.get("name", ""),
        "AZUREML_ARM_PROJECT_NAME": plan.experiment,
        "AZUREML_EXPERIMENT_ID": plan.experiment_id,
        "AZUREML_WORKSPACE_SCOPE": scope,
        "AZUREML_EXPERIMENT_SCOPE": f"{scope}/experiments/{plan.experiment}",
        "MLFLOW_RUN_ID": plan.run_id,
        "MLFLOW_EXPERIMENT_NAME": plan.experiment,
        "AMLTRAIN_TRACKING_DIR": tracking_dir,
        "AMLTRAIN_RUN_WORKDIR": workdir,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": pythonpath,
    }
    return env


def gpu_environment(gpus: list[int], inventory: GpuInventory, *, container: bool) -> dict[str, str]:
    """The variables that give a job exactly its booked GPUs (host indices ``gpus``).

    A process sees every host GPU, so it gets their host indices, in NVML's (PCI bus) order. A container
    sees only the devices handed to it, numbered from 0. ``NVIDIA_VISIBLE_DEVICES`` is set either way in
    containers: CUDA images say ``all``, which under an NVIDIA default runtime would expose every GPU.
    ``AMLTRAIN_GPU_IDS`` names the host GPUs held, for logs and for the job's own curiosity."""
    if not gpus:
        hidden = {"CUDA_VISIBLE_DEVICES": ""} if inventory else {}  # GPUs exist, none of them is this run's
        return {**hidden, "NVIDIA_VISIBLE_DEVICES": "void"} if container else hidden
    env = {"AMLTRAIN_GPU_IDS": ",".join(str(i) for i in gpus), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    if container:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(gpus)))
        env["NVIDIA_VISIBLE_DEVICES"] = "void" if inventory.declared else ",".join(inventory.uuids(gpus))
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpus)
    return env


def host_python() -> str:
    return sys.executable
