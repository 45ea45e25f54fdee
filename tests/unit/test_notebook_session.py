"""Finding the notebook a kernel serves, its folder, an experiment name after it, and its workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_amltrain.notebook.session import (
    experiment_name_for,
    notebook_dir,
    notebook_path,
    safe_experiment_name,
    session_workspace,
)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is not the notebook's folder, and no session variable from the outside."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return folder


def _notebook(folder: Path, name: str = "Train Model.ipynb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("{}")
    return path


def test_session_variable_names_the_notebook_wherever_the_kernel_runs(tmp_path: Path, elsewhere: Path) -> None:
    notebook = _notebook(tmp_path / "project")
    ns = {"__session__": str(notebook)}
    assert notebook_path(ns) == notebook
    assert notebook_dir(ns) == notebook.parent
    assert experiment_name_for(ns) == "Train_Model"


def test_vscode_variable_and_environment_variable_are_understood(tmp_path: Path, elsewhere: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    vscode = _notebook(tmp_path / "vs", "a.ipynb")
    assert notebook_dir({"__vsc_ipynb_file__": str(vscode)}) == vscode.parent
    server = _notebook(tmp_path / "server", "b.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", str(server))
    assert notebook_path({}) == server


def test_a_server_relative_path_resolves_in_the_kernels_folder(elsewhere: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # jupyter_server starts the kernel in the notebook's folder and may pass the path relative to its root.
    notebook = _notebook(elsewhere, "exp.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", "some/sub/folder/exp.ipynb")
    assert notebook_path({}) == notebook


def test_without_a_known_notebook_the_working_directory_stands_in(elsewhere: Path) -> None:
    ns = {"__session__": "/no/such/notebook.ipynb", "__vsc_ipynb_file__": "console-1"}
    assert notebook_path(ns) is None
    assert notebook_dir(ns) == elsewhere.resolve()
    assert experiment_name_for(ns) == "cwd"


@pytest.mark.parametrize(("text", "expected"), [
    ("quickstart", "quickstart"),
    ("My Notebook (copy)", "My_Notebook_copy"),
    ("_private", "private"),
    ("été-2024", "t_-2024"),
    ("x", "x-notebook"),
    ("", "nb"),
    ("a" * 300, "a" * 128),
])
def test_experiment_names_are_always_valid(text: str, expected: str) -> None:
    assert safe_experiment_name(text) == expected


def test_workspace_is_ns_ws_then_the_notebooks_config_then_default(tmp_path: Path, elsewhere: Path,
                                                                    amltrain_home: Path) -> None:
    notebook = _notebook(tmp_path / "project" / "notebooks")
    config = tmp_path / "project" / ".azureml" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"subscription_id": "s", "resource_group": "r", "workspace_name": "from-config"}))
    ns: dict[str, object] = {"__session__": str(notebook)}
    assert session_workspace(ns).name == "from-config"
    assert session_workspace({}).name == "default"
    chosen = session_workspace({})
    assert session_workspace({"ws": chosen, "__session__": str(notebook)}) is chosen
