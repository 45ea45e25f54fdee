"""Fixtures shared by every test: an isolated store home and a workspace in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_amltrain.engine.workspace import forget_open_workspaces


@pytest.fixture
def amltrain_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "amltrain-home"
    monkeypatch.setenv("AMLTRAIN_HOME", str(home))
    forget_open_workspaces()
    yield home
    forget_open_workspaces()


@pytest.fixture
def project(tmp_path: Path, amltrain_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A notebook folder with a v1 config.json, as the user would have it; the working directory."""
    folder = tmp_path / "project"
    (folder / ".azureml").mkdir(parents=True)
    (folder / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "00000000-0000-0000-0000-000000000000", "resource_group": "rg-local",
         "workspace_name": "ws-test"}))
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def ws(project: Path):  # type: ignore[no-untyped-def]
    from jupyter_amltrain.core import Workspace

    return Workspace.from_config()
