"""Finding and reading a v1 workspace configuration file: the one place every face learns which workspace a
folder belongs to (``Workspace.from_config``, the notebook session, the CLI, the server extension).

The search is v1's: from the given folder (or file) up to the root, each folder's ``.azureml/``, then its
``aml_config/``, then the folder itself, looking for ``config.json`` and then ``project.json`` in each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from jupyter_amltrain.engine.workspace import DEFAULT_WORKSPACE
from jupyter_amltrain.exceptions import UserErrorException

CONFIG_DIRS = (".azureml", "aml_config", "")
CONFIG_FILES = ("config.json", "project.json")


@dataclass(frozen=True)
class WorkspaceConfig:
    """What a configuration file says: the workspace's name and its two other v1 coordinates."""

    workspace_name: str
    subscription_id: str
    resource_group: str
    path: Path  # the file it was read from


def find_config_file(path: str | Path | None = None, file_name: str | None = None) -> Path | None:
    """The configuration file for ``path`` (default: the current folder): ``path`` itself when it is a file,
    else the first file v1's search finds from that folder upwards; None when there is none. ``file_name``
    looks for that name instead of config.json and project.json."""
    start = Path(path or ".").expanduser().resolve()
    if start.is_file():
        return start
    names = (file_name,) if file_name else CONFIG_FILES
    folder = start
    while True:
        for sub in CONFIG_DIRS:
            for name in names:
                candidate = folder / sub / name if sub else folder / name
                if candidate.is_file():
                    return candidate
        if folder.parent == folder:
            return None
        folder = folder.parent


def read_config_file(found: Path) -> WorkspaceConfig:
    """The workspace ``found`` names; UserErrorException, saying how to fix it, when it names none."""
    try:
        config = json.loads(Path(found).read_text())
    except (OSError, ValueError) as exc:
        raise UserErrorException(
            f"The workspace configuration file {found} is not valid JSON ({exc}). It must hold "
            '{"subscription_id": "...", "resource_group": "...", "workspace_name": "..."}.'
        ) from exc
    name = (config.get("workspace_name") or config.get("Workspace name")) if isinstance(config, dict) else None
    if not name or not isinstance(name, str):
        raise UserErrorException(
            f"The workspace configuration file {found} has no 'workspace_name'. Add it, for example "
            '{"subscription_id": "local", "resource_group": "local", "workspace_name": "my-ws"}.'
        )
    return WorkspaceConfig(workspace_name=name, subscription_id=str(config.get("subscription_id") or ""),
                           resource_group=str(config.get("resource_group") or ""), path=Path(found))


def find_workspace_config(path: str | Path | None = None, file_name: str | None = None) -> WorkspaceConfig | None:
    """The configuration found for ``path`` (``find_config_file``), read; None when there is no file."""
    found = find_config_file(path, file_name)
    return None if found is None else read_config_file(found)


def configured_workspace_name(path: str | Path | None = None) -> str:
    """The workspace a folder works in: the one its configuration file names, else the default workspace (also
    when that file can not be read: a service picking a default must not fail on a broken file)."""
    try:
        config = find_workspace_config(path)
    except UserErrorException:
        return DEFAULT_WORKSPACE
    return config.workspace_name if config is not None else DEFAULT_WORKSPACE
