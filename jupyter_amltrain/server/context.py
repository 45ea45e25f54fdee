"""What every handler shares: the configuration, the thread pool that does all blocking work, and which
workspace a request is about."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tornado import web

from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.engine.workspace import LocalWorkspace, check_workspace_name, open_workspace
from jupyter_amltrain.engine.workspace_config import configured_workspace_name
from jupyter_amltrain.server.config import AmlTrainServer

T = TypeVar("T")
SETTINGS_KEY = "jupyter_amltrain"


class ApiError(web.HTTPError):
    """A request the API refuses: HTTP status and a message that says what to do instead. An HTTPError, so
    Tornado answers with its status; the handlers write ``message`` as the JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(status)
        self.message = message


@dataclass
class ServerContext:
    config: AmlTrainServer
    root_dir: Path
    executor: ThreadPoolExecutor

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` on the reader threads: SQLite, files, NVML and Docker never block the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(function, *args, **kwargs))

    def default_workspace(self) -> str:
        """Blocking (reads config.json): call it on the reader threads."""
        return self.config.workspace or configured_workspace_name(self.root_dir)

    def workspace(self, requested: str | None) -> LocalWorkspace:
        """The workspace a request names (``?workspace=``), else the server's default. A named workspace must
        exist already: a typo must not create an empty store. Blocking: call it on the reader threads."""
        if not requested:
            return open_workspace(self.default_workspace())
        try:
            check_workspace_name(requested)
        except Exception as error:
            raise ApiError(400, str(error)) from None
        if not (workspaces_root() / requested / "workspace.db").is_file():
            known = ", ".join(known_workspaces()) or "none yet"
            raise ApiError(404, f"Workspace '{requested}' does not exist under {workspaces_root()} (known: {known}). "
                           "Pass one of those as ?workspace=, or leave it out for the server's default.")
        return open_workspace(requested)


def workspaces_root() -> Path:
    return Path(load_settings().home).expanduser() / "workspaces"


def known_workspaces() -> list[str]:
    root = workspaces_root()
    if not root.is_dir():
        return []
    return sorted(entry.name for entry in os.scandir(root) if (Path(entry.path) / "workspace.db").is_file())
