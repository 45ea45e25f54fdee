"""Which notebook a kernel serves: its file, its folder (what ``%aml_submit`` snapshots) and a name for runs.

A kernel's working directory is not always the notebook's folder (a server started elsewhere, a kernel shared
by several notebooks, ``os.chdir`` in a cell), so the notebook is found the way the front ends announce it:

* ``__session__`` in the user namespace: ipykernel copies ``JPY_SESSION_NAME`` there;
* ``__vsc_ipynb_file__``: VS Code's Jupyter extension sets it;
* the ``JPY_SESSION_NAME`` environment variable: jupyter_server sets it when it starts the kernel, as an
  absolute path or one relative to the server's root.

Without any of them (nbclient, a terminal IPython) the working directory stands in for the notebook's folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.runs.records import EXPERIMENT_NAME

_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-]+")


def _candidates(user_ns: dict[str, Any] | None) -> list[str]:
    found = []
    for key in ("__session__", "__vsc_ipynb_file__"):
        value = (user_ns or {}).get(key)
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
    env = os.environ.get("JPY_SESSION_NAME", "").strip()
    if env:
        found.append(env)
    return found


def _resolve(name: str) -> Path | None:
    path = Path(name).expanduser()
    if path.is_absolute():
        return path if path.is_file() else None
    cwd = Path.cwd()
    # jupyter_server starts a kernel in the notebook's folder, with the path relative to the server root:
    # the notebook is then the working directory's file of that name, or the path from the working directory.
    for candidate in (cwd / path, cwd / path.name):
        if candidate.is_file():
            return candidate.resolve()
    return None


def notebook_path(user_ns: dict[str, Any] | None = None) -> Path | None:
    """The notebook file this kernel runs, when a front end said which; None otherwise."""
    for name in _candidates(user_ns):
        if not name.endswith(".ipynb"):
            continue
        found = _resolve(name)
        if found is not None:
            return found
    return None


def notebook_dir(user_ns: dict[str, Any] | None = None) -> Path:
    """The notebook's folder, or the working directory when the notebook is not known."""
    found = notebook_path(user_ns)
    return found.parent if found is not None else Path.cwd().resolve()


def experiment_name_for(user_ns: dict[str, Any] | None = None) -> str:
    """An experiment name after the notebook (``Train Model.ipynb`` -> ``Train_Model``), or after its folder."""
    found = notebook_path(user_ns)
    stem = found.stem if found is not None else Path.cwd().resolve().name
    return safe_experiment_name(stem)


def safe_experiment_name(text: str) -> str:
    """``text`` made into a valid v1 experiment name (2-128 characters of letters, digits, '_' and '-',
    starting with a letter or digit)."""
    name = _NOT_ALLOWED.sub("_", text).strip("_-")[:128]
    if not name or not (name[0].isascii() and name[0].isalnum()):
        name = f"nb{name}"
    if len(name) < 2:
        name = f"{name}-notebook"
    return name if EXPERIMENT_NAME.match(name) else "notebook"


def session_workspace(user_ns: dict[str, Any] | None = None) -> Any:
    """The workspace a notebook works in: ``ws`` in the namespace when it is one, else the workspace of the
    ``config.json`` found from the notebook's folder upwards, else the default workspace."""
    from jupyter_amltrain.core.workspace import Workspace, find_workspace

    current = (user_ns or {}).get("ws")
    if isinstance(current, Workspace):
        return current
    return find_workspace(notebook_dir(user_ns))
