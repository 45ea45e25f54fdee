"""``Workspace``: v1's entry point, backed by a local store instead of an Azure resource.

Faces (notebook, widgets, server, CLI) reach the engine's workspace behind a ``Workspace`` through
``engine_workspace(ws)``, and the workspace a folder works in through ``find_workspace(folder)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.workspace import DEFAULT_WORKSPACE, LocalWorkspace, open_workspace
from jupyter_amltrain.engine.workspace_config import find_workspace_config
from jupyter_amltrain.exceptions import UserErrorException


def engine_workspace(workspace: Workspace | LocalWorkspace) -> LocalWorkspace:
    """The engine's workspace behind a v1 ``Workspace`` (a ``LocalWorkspace`` is returned as it is): what a face
    hands to the engine's functions (its ``store``, ``layout``, ``settings``, ``root``)."""
    if isinstance(workspace, Workspace):
        return workspace._local
    if isinstance(workspace, LocalWorkspace):
        return workspace
    raise UserErrorException(
        f"Expected a Workspace (from Workspace.from_config() or Workspace.get()), got {type(workspace).__name__}."
    )


def find_workspace(path: str | Path | None = None) -> Workspace:
    """The workspace a folder works in (default: the current one): the one named by the ``config.json`` that
    v1's search finds from there upwards (``Workspace.from_config``), else the default workspace."""
    config = find_workspace_config(path)
    if config is None:
        return Workspace.get()
    return Workspace(config.subscription_id, config.resource_group, config.workspace_name)


class Workspace:
    """A local workspace. ``Workspace(subscription_id, resource_group, workspace_name)`` as in v1."""

    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        workspace_name: str,
        auth: Any = None,
        _location: str | None = None,
        _disable_service_check: bool = False,
        _workspace_id: str | None = None,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        _cloud: str = "AzureCloud",
    ):
        self._local: LocalWorkspace = open_workspace(
            workspace_name,
            subscription_id=subscription_id or "",
            resource_group=resource_group or "",
            location=_location or "local",
        )
        self._tags = tags or {}
        self._sku = sku
        from jupyter_amltrain.engine.runs.recovery import recover_orphans

        recover_orphans(self._local)

    # -- v1 constructors ------------------------------------------------------------------------------------
    @staticmethod
    def from_config(
        path: str | None = None, auth: Any = None, _logger: Any = None, _file_name: str | None = None
    ) -> Workspace:
        config = find_workspace_config(path, _file_name)
        if config is None:
            raise UserErrorException(
                "The workspace configuration file config.json, could not be found in "
                f"{Path(path or '.').resolve()} or its parent directories. Please check whether the workspace "
                "configuration file exists, or provide the full path to the configuration file as an argument. "
                "You can download a configuration file for your workspace, via http://ml.azure.com and clicking "
                "on the name of your workspace in the right top. (Locally: write one with "
                "Workspace.get('default').write_config(), or use Workspace.get('default').)"
            )
        return Workspace(config.subscription_id, config.resource_group, config.workspace_name)

    @staticmethod
    def get(
        name: str = DEFAULT_WORKSPACE,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        cloud: str = "AzureCloud",
        id: str | None = None,
    ) -> Workspace:
        return Workspace(subscription_id or "", resource_group or "", name, _location=location)

    @staticmethod
    def create(
        name: str,
        auth: Any = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        create_resource_group: bool = True,
        sku: str = "basic",
        tags: dict[str, str] | None = None,
        exist_ok: bool = False,
        show_output: bool = True,
        **kwargs: Any,
    ) -> Workspace:
        return Workspace(subscription_id or "", resource_group or "", name, _location=location, tags=tags)

    def write_config(self, path: str | None = None, file_name: str | None = None) -> None:
        folder = Path(path or ".") / ".azureml"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (file_name or "config.json")
        tmp = target.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "subscription_id": self.subscription_id,
                    "resource_group": self.resource_group,
                    "workspace_name": self.name,
                },
                indent=4,
            )
        )
        os.replace(tmp, target)

    # -- v1 properties ---------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._local.name

    @property
    def subscription_id(self) -> str:
        return self._local.subscription_id

    @property
    def resource_group(self) -> str:
        return self._local.resource_group

    @property
    def location(self) -> str:
        return self._local.location

    @property
    def tags(self) -> dict[str, str]:
        return self._tags

    @property
    def sku(self) -> str:
        return self._sku

    @property
    def discovery_url(self) -> str:
        return self._local.root.as_uri()

    @property
    def compute_targets(self) -> dict[str, Any]:
        from jupyter_amltrain.core.compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def environments(self) -> dict[str, Any]:
        from jupyter_amltrain.core.environment import Environment

        return dict(Environment.list(self))

    @property
    def experiments(self) -> dict[str, Any]:
        from jupyter_amltrain.core.experiment import Experiment

        return {exp.name: exp for exp in Experiment.list(self)}

    @property
    def models(self) -> dict[str, Any]:
        from jupyter_amltrain.core.model import Model

        latest: dict[str, Any] = {}
        for model in Model.list(self):
            latest.setdefault(model.name, model)
        return latest

    def get_details(self) -> dict[str, Any]:
        return {
            "id": self._scope(),
            "name": self.name,
            "location": self.location,
            "type": "local",
            "workspaceid": self.name,
            "description": "",
            "friendlyName": self.name,
            "creationTime": "",
            "storagePath": str(self._local.root),
        }

    def _scope(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    def __repr__(self) -> str:
        return (
            f"Workspace.create(name='{self.name}', subscription_id='{self.subscription_id}', "
            f"resource_group='{self.resource_group}')"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other._local.root == self._local.root

    def __hash__(self) -> int:
        return hash(self._local.root)
