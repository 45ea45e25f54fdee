"""Environment.register/get/list against a real workspace store, and the engine registry underneath."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.core.environment import Environment
from jupyter_amltrain.engine import environments as registry
from jupyter_amltrain.engine.workspace import open_workspace
from jupyter_amltrain.exceptions import UserErrorException


@pytest.fixture
def ws(amltrain_home: Path) -> Any:
    """The engine's workspace: what core.Workspace stands for here (``engine_workspace`` accepts either)."""
    return open_workspace("envtest")


def _db_bytes(ws: Any) -> bytes:
    # WAL mode: committed rows may still sit in the -wal file.
    database = Path(ws.layout.database)
    return b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))


def test_register_versions_only_on_change(ws: Any) -> None:
    env = Environment("train-env")
    first = env.register(ws)
    assert first.version == "1"
    assert first.name == "train-env"
    assert env.version is None  # register returns a new object, as v1

    assert env.register(ws).version == "1"  # unchanged definition: same version

    env.python.conda_dependencies.add_pip_package("numpy")  # type: ignore[union-attr]
    assert env.register(ws).version == "2"
    assert Environment.get(ws, "train-env").version == "2"
    assert list(Environment.get(ws, "train-env", version="1").python.conda_dependencies.pip_packages) == []  # type: ignore[union-attr]


def test_fetched_environment_edited_and_registered_gets_next_version(ws: Any, caplog: pytest.LogCaptureFixture) -> None:
    Environment("edit-me").register(ws)
    fetched = Environment.get(ws, "edit-me")
    assert fetched.register(ws).version == "1"
    fetched.python.conda_dependencies.add_pip_package("pandas")  # type: ignore[union-attr]
    with caplog.at_level(logging.WARNING):
        assert fetched.register(ws).version == "2"
    assert "auto-versions" in caplog.text


def test_changing_environment_variables_is_a_new_version(ws: Any) -> None:
    env = Environment("vars")
    env.register(ws)
    env.environment_variables = {"A": "1"}
    assert env.register(ws).version == "2"


def test_get_round_trips_the_definition(ws: Any) -> None:
    env = Environment.from_dockerfile("df", "FROM ubuntu:22.04\nRUN true\n")
    env.register(ws)
    fetched = Environment.get(ws, "df")
    expected = env._serialize_to_dict()
    expected["version"] = "1"
    assert fetched._serialize_to_dict() == expected


def test_get_missing_names_the_workspace_and_registered_envs(ws: Any) -> None:
    Environment("present").register(ws)
    with pytest.raises(UserErrorException) as raised:
        Environment.get(ws, "absent")
    message = str(raised.value)
    assert "Environment 'absent' not found in workspace 'envtest'" in message
    assert "present" in message


def test_get_missing_version_points_at_latest(ws: Any) -> None:
    Environment("e").register(ws)
    with pytest.raises(UserErrorException, match="latest version is 1"):
        Environment.get(ws, "e", version="5")


def test_get_curated_name_explains(ws: Any) -> None:
    with pytest.raises(UserErrorException, match="Curated Azure ML environments do not exist locally"):
        Environment.get(ws, "AzureML-Minimal")


def test_get_label_is_unsupported(ws: Any) -> None:
    with pytest.raises(UserErrorException, match="Only one of version or label"):
        Environment.get(ws, "e", version="1", label="prod")
    with pytest.raises(UserErrorException, match="labels are not supported"):
        Environment.get(ws, "e", label="prod")


def test_list_returns_latest_versions(ws: Any) -> None:
    a = Environment("a")
    a.register(ws)
    a.python.conda_dependencies.add_pip_package("numpy")  # type: ignore[union-attr]
    a.register(ws)
    Environment("b").register(ws)
    listed = Environment.list(ws)
    assert sorted(listed) == ["a", "b"]
    assert listed["a"].version == "2"
    assert listed["b"].version == "1"


@pytest.mark.parametrize("name", ["AzureML-Custom", "Microsoft.Thing"])
def test_reserved_names_cannot_be_registered(ws: Any, name: str) -> None:
    with pytest.raises(UserErrorException, match="reserved"):
        Environment(name).register(ws)
    assert Environment.list(ws) == {}


def test_password_never_reaches_the_database(ws: Any) -> None:
    env = Environment.from_docker_image("private", "myreg.io/img:1")
    env.docker.base_image_registry.address = "myreg.io"
    env.docker.base_image_registry.username = "me"
    env.docker.base_image_registry.password = "Sup3r-S3cret-Pw"
    registered = env.register(ws)
    assert registered._registry_password() == "Sup3r-S3cret-Pw"  # kept in memory for this session
    assert b"Sup3r-S3cret-Pw" not in _db_bytes(ws)
    fetched = Environment.get(ws, "private")
    assert fetched._registry_password() is None
    assert fetched.docker.base_image_registry.username == "me"


def test_engine_strips_passwords_even_if_given(ws: Any) -> None:
    store = ws.store
    definition: dict[str, Any] = {
        "docker": {"baseImageRegistry": {"address": "r", "password": "LeakMe123"}},
        "x": [{"Password": "p2"}],
    }
    version = registry.register_environment(store, "raw", definition, "hash1")
    assert version == 1
    found = registry.get_environment(store, "raw")
    assert found is not None
    stored = found[0]
    assert stored["docker"]["baseImageRegistry"]["password"] is None
    assert stored["x"][0]["Password"] is None
    assert b"LeakMe123" not in _db_bytes(ws)
    assert definition["docker"]["baseImageRegistry"]["password"] == "LeakMe123"  # caller's dict untouched


def test_engine_registry_records_image_hash_and_versions(ws: Any) -> None:
    store = ws.store
    assert registry.register_environment(store, "n", {"a": 1}, "h1") == 1
    assert registry.register_environment(store, "n", {"a": 1, "name": "other", "version": "9"}, "h1") == 1
    assert registry.register_environment(store, "n", {"a": 2}, "h2") == 2
    assert registry.get_image_hash(store, "n", 2) == "h2"
    assert registry.get_environment(store, "n", 1) == ({"a": 1, "name": "n", "version": "1"}, 1)
    assert registry.get_environment(store, "missing") is None
    assert registry.list_environments(store) == {"n": ({"a": 2, "name": "n", "version": "2"}, 2)}


def test_malformed_conda_file_registers_nothing(ws: Any, tmp_path: Path) -> None:
    spec = tmp_path / "env.yml"
    spec.write_text("name: x\ndependencies:\n  - numpy\n  - {pip: numpy}\n")
    with pytest.raises(UserErrorException, match=r"env\.yml', line 4"):
        Environment.from_conda_specification("bad", str(spec)).register(ws)
    assert Environment.list(ws) == {}
