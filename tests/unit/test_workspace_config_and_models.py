"""engine/workspace_config.py (v1's config.json search) and engine/models.py (the model registry), through the
engine's public functions and through the v1 face that calls them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_amltrain.engine import models
from jupyter_amltrain.engine.workspace import DEFAULT_WORKSPACE, LocalWorkspace, open_workspace
from jupyter_amltrain.engine.workspace_config import (
    configured_workspace_name,
    find_config_file,
    find_workspace_config,
)
from jupyter_amltrain.exceptions import ModelPathNotFoundException, UserErrorException


def _config(path: Path, name: str, **extra: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"subscription_id": "sub", "resource_group": "rg", "workspace_name": name, **extra}))
    return path


def test_config_search_is_v1s(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config_file(deep) is None or not str(find_config_file(deep)).startswith(str(tmp_path))
    top = _config(tmp_path / "a" / "project.json", "from-project")
    assert find_config_file(deep) == top
    plain = _config(tmp_path / "a" / "config.json", "plain")
    assert find_config_file(deep) == plain  # config.json before project.json
    legacy = _config(tmp_path / "a" / "aml_config" / "config.json", "legacy")
    assert find_config_file(deep) == legacy  # aml_config/ before the folder itself
    hidden = _config(tmp_path / "a" / ".azureml" / "config.json", "hidden")
    assert find_config_file(deep) == hidden  # .azureml/ first
    nearer = _config(deep / "config.json", "nearer")
    assert find_config_file(deep) == nearer  # the nearest folder wins
    assert find_config_file(hidden) == hidden  # a file is taken as it is
    other = _config(tmp_path / "a" / ".azureml" / "other.json", "other")
    assert find_config_file(deep, "other.json") == other

    config = find_workspace_config(nearer)
    assert config is not None
    assert (config.workspace_name, config.subscription_id, config.resource_group) == ("nearer", "sub", "rg")


def test_unreadable_configs_say_how_to_fix_them(tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(UserErrorException, match="not valid JSON"):
        find_workspace_config(tmp_path)
    assert configured_workspace_name(tmp_path) == DEFAULT_WORKSPACE  # a service falls back instead
    broken.write_text("[1, 2]")
    with pytest.raises(UserErrorException, match="has no 'workspace_name'"):
        find_workspace_config(tmp_path)
    broken.write_text(json.dumps({"Workspace name": "old-style"}))
    assert configured_workspace_name(tmp_path) == "old-style"


@pytest.fixture
def local_ws(amltrain_home: Path) -> LocalWorkspace:
    return open_workspace("modeltest")


def test_model_registry_versions_lists_and_deletes(local_ws: LocalWorkspace, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    first = models.register_model_files(local_ws, "m", source, tags={"k": "v"}, properties={"p": "1"})
    assert (first.name, first.version, first.run_id, first.tags, first.properties) == ("m", 1, None, {"k": "v"},
                                                                                      {"p": "1"})
    assert first.path.read_bytes() == b"weights" and first.path.is_relative_to(local_ws.layout.models)
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"x")
    second = models.register_model_files(local_ws, "m", folder)
    assert second.version == 2 and (second.path / "sub" / "w.bin").read_bytes() == b"x"
    models.register_model_files(local_ws, "other", source)

    latest = models.get_model(local_ws, "m")
    assert latest is not None and latest.version == 2
    assert models.get_model(local_ws, "m", version=1) == first
    assert models.get_model(local_ws, "m", version=3) is None
    assert [(m.name, m.version) for m in models.list_models(local_ws)] == [("m", 2), ("m", 1), ("other", 1)]
    assert [(m.name, m.version) for m in models.list_models(local_ws, latest=True)] == [("m", 2), ("other", 1)]
    assert [m.version for m in models.list_models(local_ws, name="m")] == [2, 1]

    models.delete_model(local_ws, "m", 2)
    assert not second.path.exists() and [m.version for m in models.list_models(local_ws, name="m")] == [1]
    assert not list(local_ws.layout.models.glob(".staging-*"))


def test_model_registration_refusals(local_ws: LocalWorkspace, tmp_path: Path) -> None:
    with pytest.raises(ModelPathNotFoundException, match=r"nowhere\.pkl"):
        models.register_model_files(local_ws, "m", tmp_path / "nowhere.pkl")
    source = tmp_path / "m.pkl"
    source.write_bytes(b"x")
    with pytest.raises(UserErrorException):
        models.register_model_files(local_ws, "../evil", source)

    def fails(staging: Path) -> str:
        (staging / "half").write_bytes(b"half")
        raise RuntimeError("copy failed")

    with pytest.raises(RuntimeError):
        models.register_model(local_ws, "m", fails)
    assert models.list_models(local_ws) == [] and not list(local_ws.layout.models.glob(".staging-*"))


def test_v1_model_goes_through_the_engine(local_ws: LocalWorkspace, tmp_path: Path) -> None:
    from jupyter_amltrain.core.model import Model
    from jupyter_amltrain.core.workspace import Workspace, engine_workspace

    workspace = Workspace.get("modeltest")
    assert engine_workspace(workspace) is local_ws and engine_workspace(local_ws) is local_ws
    source = tmp_path / "m.pkl"
    source.write_bytes(b"x")
    model = Model.register(workspace, str(source), "v1-model", model_framework="ScikitLearn")
    assert (model.id, model.properties) == ("v1-model:1", {"model_framework": "ScikitLearn"})
    assert Model(workspace, id="v1-model:1").get_model_path() == str(models.get_model(local_ws, "v1-model").path)
    assert [m.id for m in Model.list(workspace)] == ["v1-model:1"]
    model.delete()
    assert Model.list(workspace) == []
