"""``ComputeTarget``: v1's base class; ``ComputeTarget(ws, name)`` returns the matching subclass."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.engine.compute import pools
from jupyter_amltrain.exceptions import ComputeTargetException

if TYPE_CHECKING:
    from jupyter_amltrain.core.workspace import Workspace


class ComputeTarget:
    _compute_type = "Unknown"

    def __new__(cls, workspace: Workspace | None = None, name: str | None = None) -> Any:
        if workspace is None or name is None:  # unpickling or subclass construction
            return super().__new__(cls)
        pool = pools.get_pool(engine_workspace(workspace).store, name)
        if pool is None:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: Compute Target with name {name} not found in provided workspace"
            )
        from jupyter_amltrain.core.compute.amlcompute import AmlCompute

        return super().__new__(AmlCompute)

    def __init__(self, workspace: Workspace, name: str):
        self.workspace = workspace
        self.name = name
        self._refresh()

    def _refresh(self) -> pools.Pool:
        pool = pools.get_pool(engine_workspace(self.workspace).store, self.name)
        if pool is None:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: Compute Target with name {self.name} not found in provided workspace"
            )
        self._pool = pool
        self.provisioning_state = pool.provisioning_state
        self.tags = pool.tags
        self.description = pool.description
        return pool

    @property
    def type(self) -> str:
        return self._compute_type

    @property
    def location(self) -> str:
        return self.workspace.location

    @property
    def id(self) -> str:
        return f"{self.workspace._scope()}/computes/{self.name}"

    @staticmethod
    def create(workspace: Workspace, name: str, provisioning_configuration: Any) -> Any:
        from jupyter_amltrain.core.compute.amlcompute import AmlCompute

        return AmlCompute._create(workspace, name, provisioning_configuration)

    @staticmethod
    def list(workspace: Workspace) -> list[Any]:
        return [ComputeTarget(workspace, pool.name) for pool in pools.list_pools(engine_workspace(workspace).store)]

    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        if show_output:
            print(f"{self.provisioning_state}")
            print('Provisioning operation finished, operation "Succeeded"')
        sys.stdout.flush()

    def delete(self) -> None:
        pools.delete_pool(engine_workspace(self.workspace).store, self.name)
        self.provisioning_state = "Deleting"

    def detach(self) -> None:
        raise ComputeTargetException("Detach is not supported for AmlCompute object. Try to use delete instead.")

    def get_status(self) -> Any:
        return self.provisioning_state

    def serialize(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "location": self.location, "tags": self.tags,
                "properties": {"computeType": self.type, "provisioningState": self.provisioning_state}}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(workspace={self.workspace!r}, name={self.name}, id={self.id}, "
                f"type={self.type}, provisioning_state={self.provisioning_state}, location={self.location}, "
                f"tags={self.tags})")
