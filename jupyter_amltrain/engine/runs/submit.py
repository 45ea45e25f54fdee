"""Submitting a run: validate, snapshot, record, then hand it to a detached supervisor.

Everything that can be refused is checked before the run record is written, so a refused submission
leaves nothing behind in the store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.agent.client import hand_run
from jupyter_amltrain.engine.agent.protocol import RunSettings
from jupyter_amltrain.engine.compute.admission import check_gpu_request
from jupyter_amltrain.engine.compute.gpus import GpuInventory, gpu_inventory
from jupyter_amltrain.engine.compute.nvidia_docker import nvidia_support
from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET, get_pool
from jupyter_amltrain.engine.images.conda_pypi import map_conda_packages
from jupyter_amltrain.engine.images.dockerfile import needs_build
from jupyter_amltrain.engine.images.spec import ImageSpec
from jupyter_amltrain.engine.images.tls import ca_bundle_to_inject
from jupyter_amltrain.engine.runs import records, validation
from jupyter_amltrain.engine.runs.plan import RunPlan, image_to_dict
from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.engine.snapshots import SnapshotResult, SnapshotStore
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.exceptions import ComputeTargetException


@dataclass
class SubmitRequest:
    experiment: str
    source_dir: Path
    command: list[str]
    image: ImageSpec
    use_docker: bool
    target: str = LOCAL_TARGET
    environment_variables: dict[str, str] = field(default_factory=dict)
    shm_size: str = "2g"
    docker_arguments: list[str] = field(default_factory=list)
    max_run_duration_seconds: int | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, Any] = field(default_factory=dict)
    registry_password: str | None = None
    host_python: str | None = None
    gpus_wanted: int | None = None


def run_settings(ws: LocalWorkspace, inventory: GpuInventory) -> RunSettings:
    """This submitter's settings that shape its run (it may hold them in its environment, or in memory only):
    kept in the plan, since the agent that drives the run serves every submitter of the store home."""
    # As this process's environment and config files say now (a notebook may set AMLTRAIN_CA_BUNDLE after
    # opening the workspace), with what it holds in memory on top: the metrics interval and the inventory.
    current = load_settings()
    return {
        "ca_bundle": str(current.ca_bundle), "inject_ca_bundle": bool(current.inject_ca_bundle),
        "poll_interval": float(current.poll_interval),
        "system_metrics_interval": float(ws.settings.system_metrics_interval),
        "declared_gpus": list(inventory.ids) if inventory.declared else [],
    }


def submit(ws: LocalWorkspace, request: SubmitRequest) -> tuple[records.RunRecord, SnapshotResult]:
    records.check_experiment_name(request.experiment)
    # The kernel, Docker and the store would refuse these only later (a failed run, or a run listing the
    # size of a tag); refused here, nothing is written.
    validation.check_job(request.command, request.environment_variables,
                         inherits_host_environment=not request.use_docker)
    tags = validation.check_tags(request.tags, call="Experiment.submit(tags=...)")
    if request.target != LOCAL_TARGET and get_pool(ws.store, request.target) is None:
        raise ComputeTargetException(
            f"ComputeTargetNotFound: Compute Target with name {request.target} not found in provided workspace. "
            "Create it with ComputeTarget.create(ws, name, AmlCompute.provisioning_configuration(...)) or "
            "submit to 'local'."
        )
    client = None
    if request.use_docker:
        from jupyter_amltrain.engine.docker_engine import docker_client

        client = docker_client()  # refuse now, with the fix, rather than fail later in the supervisor
        if needs_build(request.image):
            # The CA bundle goes into the build: a missing or broken one is refused now, even when the image
            # is cached and no build would have noticed (a wrong setting must not pass unseen).
            ca_bundle_to_inject(load_settings())
    elif not request.image.user_managed:
        # A local environment is a virtual environment: conda-only packages can never install there.
        map_conda_packages(request.image.conda_packages).check()
    inventory = gpu_inventory(ws.settings)
    check_gpu_request(ws.store, request.target, request.gpus_wanted, inventory=inventory,
                      use_docker=request.use_docker,
                      nvidia_support=(lambda: nvidia_support(client)) if client is not None else None)
    snapshot = SnapshotStore(ws.layout.snapshots).take(request.source_dir)
    properties = {
        "_azureml.ComputeTargetType": "local" if request.target == LOCAL_TARGET else "amlcompute",
        "ContentSnapshotId": snapshot.snapshot_id,
        "amltrain.backend": "docker" if request.use_docker else "process",
    }
    experiment_id = records.ensure_experiment(ws.store, request.experiment)
    record = records.create_run(
        ws.store, experiment=request.experiment, target=request.target, definition=request.definition,
        snapshot_id=snapshot.snapshot_id, properties=properties, tags=tags, warnings=snapshot.warnings,
    )
    layout = RunLayout(ws.layout.run_dir(record.run_id)).ensure()
    plan = RunPlan(
        run_id=record.run_id, experiment=request.experiment, experiment_id=experiment_id,
        workspace={"name": ws.name, "subscription_id": ws.subscription_id, "resource_group": ws.resource_group},
        backend="docker" if request.use_docker else "process", image=image_to_dict(request.image),
        command=request.command, environment_variables=request.environment_variables, shm_size=request.shm_size,
        docker_arguments=request.docker_arguments, max_run_duration_seconds=request.max_run_duration_seconds,
        gpus_wanted=request.gpus_wanted, snapshot_id=snapshot.snapshot_id, host_python=request.host_python,
        docker_host=os.environ.get("DOCKER_HOST") or None,
        settings=run_settings(ws, inventory),
    )
    plan.save(layout.root / "plan.json")
    secrets = {"registry_password": request.registry_password} if request.registry_password else {}
    hand_run(Path(ws.settings.home), ws.root, record.run_id, secrets=secrets)
    fresh = records.get_run(ws.store, record.run_id)
    assert fresh is not None
    return fresh, snapshot
