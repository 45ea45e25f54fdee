"""A private-registry run whose driver dies while the run is queued still completes: its base image was pulled
before it queued, so the driver that recovers it (which never had the password) needs no credentials."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig, Workspace
from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
from jupyter_amltrain.engine.workspace import forget_open_workspaces

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

WAITING_JOB = """
import os, time
while not os.path.exists("release"):
    time.sleep(0.1)
print("first run done")
"""
TRAIN = """
from jupyter_amltrain.core import Run
Run.get_context().log("accuracy", 0.91)
print("trained on the private image")
"""


def _until(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


def _src(project: Path, folder: str, body: str, env: Environment, compute: ComputeTarget) -> ScriptRunConfig:
    (project / folder).mkdir()
    (project / folder / "job.py").write_text(body)
    return ScriptRunConfig(source_directory=folder, script="job.py", compute_target=compute, environment=env)


def test_queued_private_registry_run_survives_the_loss_of_its_supervisor(
        ws: Workspace, project: Path, private_registry: Any, base_image: str,
        cancel_leftover_runs: None) -> None:
    compute = ComputeTarget.create(ws, "one-node", AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", max_nodes=1))
    plain = Environment("plain")
    plain.docker.base_image = base_image
    plain.python.user_managed_dependencies = True
    first = Experiment(ws, "queue").submit(_src(project, "first", WAITING_JOB, plain, compute))

    image = private_registry.push_base_image(f"recover-{secrets.token_hex(4)}:1")  # not local any more
    private = Environment("private")
    private.docker.base_image = image
    private.python.user_managed_dependencies = True
    private.docker.base_image_registry.address = private_registry.address
    private.docker.base_image_registry.username = private_registry.username
    private.docker.base_image_registry.password = private_registry.password
    queued = Experiment(ws, "queue").submit(_src(project, "second", TRAIN, private, compute))

    control = queued._layout().control_log
    # Preparing comes before Queued: a queued run already has its image, pulled with the password.
    _until(lambda: queued.get_status() == "Queued", "the run to be prepared and queued")
    assert f"pulling base image {image}" in " ".join(h["subStatus"] for h in queued.get_detailed_status()["history"])
    assert queued.get_status() == "Queued"
    record = queued._record()
    assert record is not None and record.supervisor_pid
    os.kill(record.supervisor_pid, signal.SIGKILL)

    forget_open_workspaces()
    Workspace.from_config()  # whoever opens the workspace next gives the orphan a new supervisor
    (first._layout().wd / "release").touch()
    queued.wait_for_completion(show_output=True)
    assert first.get_status() == "Completed"
    assert queued.get_status() == "Completed" and queued.get_metrics() == {"accuracy": 0.91}
    assert "recovering run" in control.read_text()
