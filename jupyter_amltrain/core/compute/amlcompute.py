"""``AmlCompute``: a pool of local nodes standing in for an Azure ML compute cluster.

A node is a slot for one run at a time; ``max_nodes`` runs execute at once and later ones wait in a FIFO
queue. Each node holds the GPUs its ``vm_size`` implies (see ``engine/compute/sizes.py``), or
``gpus_per_node`` when given; ``gpu_ids`` pins the pool to particular host GPUs.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.core.compute.compute import ComputeTarget
from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.engine.compute import pools
from jupyter_amltrain.exceptions import ComputeTargetException

if TYPE_CHECKING:
    from jupyter_amltrain.core.workspace import Workspace


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int((epoch % 1) * 1e6):06d}+00:00"


class AmlComputeProvisioningConfiguration:
    def __init__(self, vm_size: str = "", vm_priority: str = "dedicated", min_nodes: int = 0,
                 max_nodes: int | None = None, idle_seconds_before_scaledown: int | None = 1800,
                 gpus_per_node: int | None = None, gpu_ids: list[int] | None = None,
                 tags: dict[str, str] | None = None, description: str | None = None, **kwargs: Any):
        self.vm_size = vm_size or "STANDARD_NC6"
        self.vm_priority = vm_priority
        self.min_nodes = min_nodes
        self.max_nodes = 4 if max_nodes is None else max_nodes
        idle = idle_seconds_before_scaledown
        self.idle_seconds_before_scaledown = 1800 if idle is None else idle
        self.gpus_per_node = gpus_per_node
        self.gpu_ids = gpu_ids
        self.tags = tags
        self.description = description
        self.extra = kwargs  # vnet, admin user, ssh...: Azure-only, accepted and ignored
        self.validate_configuration()

    def validate_configuration(self) -> None:
        if self.max_nodes < 0:
            raise ComputeTargetException(
                "Invalid provisioning configuration, max nodes count must be greater than or equal to 0"
            )
        if self.min_nodes < 0 or self.min_nodes > self.max_nodes:
            raise ComputeTargetException(
                "Invalid provisioning configuration, max nodes count must be greater than or equal to min nodes "
                "count"
            )


class AmlComputeStatus:
    def __init__(self, pool: pools.Pool, usage: pools.PoolUsage, errors: list[str] | None):
        busy = usage.running + usage.preparing
        # Nodes are slots, not VMs: min_nodes of them always count as present, busy ones beyond that appear.
        self.current_node_count = max(busy, pool.min_nodes)
        self.target_node_count = max(min(pool.max_nodes, busy + usage.queued), pool.min_nodes)
        self.node_state_counts = OrderedDict(
            preparingNodeCount=usage.preparing, runningNodeCount=usage.running,
            idleNodeCount=max(pool.min_nodes - busy, 0),
            unusableNodeCount=0, leavingNodeCount=0, preemptedNodeCount=0,
        )
        self.allocation_state = "Resizing" if usage.queued and busy < pool.max_nodes else "Steady"
        self.allocation_state_transition_time = _iso(pool.modified)
        self.errors = errors or None
        self.creation_time = _iso(pool.created)
        self.modified_time = _iso(pool.modified)
        self.provisioning_state = pool.provisioning_state
        self.provisioning_state_transition_time = None
        self.scale_settings = OrderedDict(minNodeCount=pool.min_nodes, maxNodeCount=pool.max_nodes,
                                          nodeIdleTimeBeforeScaleDown=f"PT{pool.idle_seconds}S")
        self.vm_priority = pool.vm_priority.capitalize()
        self.vm_size = pool.vm_size.upper()
        self.gpus_per_node = pool.gpus_per_node
        self.gpu_ids = list(pool.gpu_ids)
        self.queued_run_count = usage.queued

    def serialize(self) -> dict[str, Any]:
        return {
            "currentNodeCount": self.current_node_count,
            "targetNodeCount": self.target_node_count,
            "nodeStateCounts": dict(self.node_state_counts),
            "allocationState": self.allocation_state,
            "allocationStateTransitionTime": self.allocation_state_transition_time,
            "errors": self.errors,
            "creationTime": self.creation_time,
            "modifiedTime": self.modified_time,
            "provisioningState": self.provisioning_state,
            "provisioningStateTransitionTime": self.provisioning_state_transition_time,
            "scaleSettings": dict(self.scale_settings),
            "vmPriority": self.vm_priority,
            "vmSize": self.vm_size,
        }


class AmlCompute(ComputeTarget):
    _compute_type = "AmlCompute"

    @staticmethod
    def provisioning_configuration(vm_size: str = "", vm_priority: str = "dedicated", min_nodes: int = 0,
                                   max_nodes: int | None = None, idle_seconds_before_scaledown: int | None = 1800,
                                   admin_username: str | None = None, admin_user_password: str | None = None,
                                   admin_user_ssh_key: str | None = None, vnet_resourcegroup_name: str | None = None,
                                   vnet_name: str | None = None, subnet_name: str | None = None,
                                   tags: dict[str, str] | None = None, description: str | None = None,
                                   remote_login_port_public_access: str = "NotSpecified",
                                   identity_type: str | None = None, identity_id: list[str] | None = None,
                                   location: str | None = None, enable_node_public_ip: bool = True,
                                   gpus_per_node: int | None = None, gpu_ids: list[int] | None = None,
                                   ) -> AmlComputeProvisioningConfiguration:
        return AmlComputeProvisioningConfiguration(
            vm_size=vm_size, vm_priority=vm_priority, min_nodes=min_nodes, max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown, gpus_per_node=gpus_per_node,
            gpu_ids=gpu_ids, tags=tags, description=description,
        )

    @classmethod
    def _create(cls, workspace: Workspace, name: str, config: AmlComputeProvisioningConfiguration) -> AmlCompute:
        if not isinstance(config, AmlComputeProvisioningConfiguration):
            raise ComputeTargetException(
                "provisioning_configuration must come from AmlCompute.provisioning_configuration(vm_size=..., "
                f"max_nodes=...); got {type(config).__name__}."
            )
        _, warnings = pools.create_pool(
            engine_workspace(workspace).store, name, vm_size=config.vm_size, vm_priority=config.vm_priority,
            min_nodes=config.min_nodes, max_nodes=config.max_nodes,
            idle_seconds=config.idle_seconds_before_scaledown, gpus_per_node=config.gpus_per_node,
            gpu_ids=config.gpu_ids, tags=config.tags, description=config.description,
        )
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        target = cls(workspace, name)
        target._warnings = warnings
        return target

    _warnings: list[str] = []

    # v1's AmlCompute puts min_node_count and timeout_in_minutes before is_delete_operation.
    def wait_for_completion(self, show_output: bool = False, min_node_count: int | None = None,  # type: ignore[override]
                            timeout_in_minutes: int = 25, is_delete_operation: bool = False) -> None:
        self._refresh()
        if show_output:
            print(f"{self.provisioning_state}")
            print('Provisioning operation finished, operation "Succeeded"')
            print("AmlCompute wait for completion finished\n")
            print("Minimum number of nodes requested have been provisioned")
        sys.stdout.flush()

    def get_status(self) -> AmlComputeStatus:
        pool = self._refresh()
        usage = pools.pool_usage(engine_workspace(self.workspace).store, self.name)
        return AmlComputeStatus(pool, usage, self._warnings)

    @property
    def status(self) -> AmlComputeStatus:
        return self.get_status()

    @property
    def vm_size(self) -> str:
        return self._refresh().vm_size

    @property
    def scale_settings(self) -> dict[str, Any]:
        return dict(self.get_status().scale_settings)

    def update(self, min_nodes: int | None = None, max_nodes: int | None = None,
               idle_seconds_before_scaledown: int | None = None) -> None:
        pools.update_pool(engine_workspace(self.workspace).store, self.name, min_nodes=min_nodes,  # type: ignore[arg-type]
                          max_nodes=max_nodes, idle_seconds=idle_seconds_before_scaledown)  # type: ignore[arg-type]
        self._refresh()

    def list_nodes(self) -> list[dict[str, Any]]:
        from jupyter_amltrain.engine.views.computes import list_compute_summaries

        summaries = list_compute_summaries(engine_workspace(self.workspace).store)
        return [{"nodeId": f"node-{node.index}", "nodeState": "running", "runId": node.run_id, "gpus": node.gpus}
                for summary in summaries if summary.name == self.name
                for node in summary.nodes if node.run_id is not None]

    @staticmethod
    def supported_vmsizes(workspace: Workspace, location: str | None = None) -> list[dict[str, Any]]:
        from jupyter_amltrain.engine.compute.sizes import GPU_SIZES

        return [{"name": name.upper(), "gpus": gpus} for name, gpus in sorted(GPU_SIZES.items())]
