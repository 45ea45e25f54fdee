"""A local workspace: a named folder under the store home holding its database and files.

A v1 ``config.json`` (subscription_id, resource_group, workspace_name) names the workspace; the other two
coordinates are kept as metadata so ``ws.subscription_id`` and friends answer what the file said.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from jupyter_amltrain.engine.settings import AmlTrainSettings, load_settings
from jupyter_amltrain.engine.store import Store, WorkspaceLayout
from jupyter_amltrain.exceptions import UserErrorException

WORKSPACE_NAME = re.compile(r"^[a-zA-Z0-9][\w\-]{2,32}$")
DEFAULT_WORKSPACE = "default"
LOCAL_LOCATION = "local"

_open_lock = threading.Lock()
_open: dict[Path, LocalWorkspace] = {}


@dataclass
class LocalWorkspace:
    name: str
    subscription_id: str
    resource_group: str
    location: str
    layout: WorkspaceLayout
    store: Store
    settings: AmlTrainSettings

    @property
    def root(self) -> Path:
        return self.layout.root


def check_workspace_name(name: str) -> str:
    if not isinstance(name, str) or not WORKSPACE_NAME.match(name):
        raise UserErrorException(
            f"Workspace name {name!r} is invalid. Workspace name must be between 3 and 33 characters long. "
            "Its first character has to be alphanumeric, and the rest may contain hyphens and underscores. "
            "No whitespace is allowed."
        )
    return name


def open_workspace(
    name: str = DEFAULT_WORKSPACE,
    *,
    subscription_id: str = "",
    resource_group: str = "",
    location: str = LOCAL_LOCATION,
    settings: AmlTrainSettings | None = None,
) -> LocalWorkspace:
    """Open (creating on first use) the workspace ``name`` under the store home."""
    check_workspace_name(name)
    settings = settings or load_settings()
    root = (Path(settings.home).expanduser() / "workspaces" / name).resolve()
    with _open_lock:
        cached = _open.get(root)
        if cached is not None:
            return cached
        layout = WorkspaceLayout(root).ensure()
        store = Store(layout.database)
        wanted = {"name": name, "subscription_id": subscription_id, "resource_group": resource_group,
                  "location": location}
        meta = {row["key"]: row["value"] for row in store.query("SELECT key, value FROM meta")}
        if wanted.keys() - meta.keys():  # written once, when the workspace is new: opening one must not write,
            with store.write() as db:   # so that a workspace on a full disk can still be read
                for key, value in wanted.items():
                    db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value))
            meta = {row["key"]: row["value"] for row in store.query("SELECT key, value FROM meta")}
        workspace = LocalWorkspace(
            name=name,
            subscription_id=subscription_id or meta.get("subscription_id", ""),
            resource_group=resource_group or meta.get("resource_group", ""),
            location=meta.get("location", location),
            layout=layout,
            store=store,
            settings=settings,
        )
        _open[root] = workspace
        return workspace


def forget_open_workspaces() -> None:
    """Drop cached handles (tests switch AMLTRAIN_HOME between cases)."""
    with _open_lock:
        for workspace in _open.values():
            workspace.store.close()
        _open.clear()
