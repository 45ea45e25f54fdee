"""A real Jupyter server (pytest-jupyter) with the jupyter_amltrain extension and nothing unauthenticated
allowed, rooted in the ``project`` folder (its config.json names workspace ``ws-test``).

The fixtures are imported here rather than through ``pytest_plugins`` so that pytest-jupyter's autouse
fixtures and async test runner apply to these tests only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403
from traitlets.config import Config

from jupyter_amltrain.engine.workspace import LocalWorkspace, open_workspace


@pytest.fixture
def jp_server_config() -> Config:
    return Config({
        "ServerApp": {"jpserver_extensions": {"jupyter_amltrain": True, "jupyter_server_terminals": False},
                      "allow_unauthenticated_access": False},
        "AmlTrainServer": {"log_stream_interval": 0.05},
    })


@pytest.fixture
def jp_root_dir(project: Path) -> Path:
    return project


@pytest.fixture
def local_ws(project: Path) -> LocalWorkspace:
    """The workspace the server shows by default (named by the project's config.json)."""
    return open_workspace("ws-test")
