"""What every backend reports, and the job environment they share."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import jupyter_amltrain
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


def runtime_lib_dir(home: Path) -> Path:
    """A folder holding only ``jupyter_amltrain`` (as a link), so a job's PYTHONPATH exposes nothing else."""
    lib = home / "runtime-lib"
    link = lib / "jupyter_amltrain"
    if not link.exists():
        lib.mkdir(parents=True, exist_ok=True)
        tmp = lib / f".link-{os.getpid()}"
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


def host_python() -> str:
    return sys.executable
