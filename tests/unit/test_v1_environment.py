"""Environment: v1 defaults, mutual exclusion, factories, files, serialization and the image spec."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from jupyter_amltrain.core.conda_dependencies import PYTHON_DEFAULT_VERSION, CondaDependencies
from jupyter_amltrain.core.container_registry import ContainerRegistry
from jupyter_amltrain.core.environment import (
    DEFAULT_CPU_IMAGE,
    DockerBuildContext,
    Environment,
    image_spec,
)
from jupyter_amltrain.engine.images.spec import image_hash
from jupyter_amltrain.exceptions import EnvironmentException, UserErrorException

DOCKERFILE = "FROM ubuntu:22.04\nRUN echo hello\n"


def test_defaults_match_v1() -> None:
    env = Environment("myenv")
    assert env.name == "myenv"
    assert env.version is None
    assert env.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert env.python.user_managed_dependencies is False
    assert env.python.interpreter_path == "python"
    assert isinstance(env.python.conda_dependencies, CondaDependencies)
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert env.docker.base_dockerfile is None
    assert env.docker.enabled is False
    assert env.docker.shm_size == "2g"
    assert (env.docker.platform.os, env.docker.platform.architecture) == ("Linux", "amd64")


def test_default_environment_variables_are_not_shared() -> None:
    first, second = Environment("a"), Environment("b")
    first.environment_variables["X"] = "1"
    assert "X" not in second.environment_variables


def test_name_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="Environment name expected str"):
        Environment(42)  # type: ignore[arg-type]


def test_dockerfile_resets_base_image_with_v1_warning(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment("e")
    with caplog.at_level(logging.WARNING):
        env.docker.base_dockerfile = DOCKERFILE
    assert env.docker.base_image is None
    assert env.docker.base_dockerfile == DOCKERFILE
    assert "Property base_image is mutually exclusive with base_dockerfile. Reset base_image to None" in caplog.text


def test_base_image_resets_dockerfile_with_v1_warning(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment("e")
    env.docker.base_dockerfile = DOCKERFILE
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        env.docker.base_image = "python:3.11"
    assert env.docker.base_dockerfile is None
    assert "Property base_dockerfile is mutually exclusive with base_image. Reset base_dockerfile to None" in (
        caplog.text
    )


def test_setting_base_image_without_conflict_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment("e")
    with caplog.at_level(logging.WARNING):
        env.docker.base_image = "python:3.11"
    assert caplog.text == ""


def test_dockerfile_from_path_text_or_file_object(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(DOCKERFILE)
    env = Environment("e")
    env.docker.base_dockerfile = str(path)
    assert env.docker.base_dockerfile == DOCKERFILE  # a path is read
    env.docker.base_dockerfile = "FROM busybox"
    assert env.docker.base_dockerfile == "FROM busybox"  # text is kept
    env.docker.base_dockerfile = io.StringIO(DOCKERFILE)
    assert env.docker.base_dockerfile == DOCKERFILE


def test_mistyped_dockerfile_path_is_an_error() -> None:
    with pytest.raises(UserErrorException, match="Dockerfile 'dockerfiles/Dockerfle' not found"):
        Environment("e").docker.base_dockerfile = "dockerfiles/Dockerfle"


def test_deprecated_docker_settings_warn_but_apply(caplog: pytest.LogCaptureFixture) -> None:
    env = Environment("e")
    with caplog.at_level(logging.WARNING):
        env.docker.enabled = True
        env.docker.gpu_support = True
    assert env.docker.enabled is True
    assert "'enabled' is deprecated" in caplog.text
    assert "'gpu_support' is no longer necessary" in caplog.text


def test_from_pip_requirements(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# training deps\nnumpy==1.26.4\n\npandas  # for csv\n--extra-index-url https://x\n")
    env = Environment.from_pip_requirements("pipenv", str(requirements))
    cd = env.python.conda_dependencies
    assert cd is not None
    assert list(cd.pip_packages) == ["numpy==1.26.4", "pandas"]
    assert list(cd.pip_options) == ["--extra-index-url https://x"]
    assert "pip" in list(cd.conda_packages)
    assert env.python.user_managed_dependencies is False

    pinned = Environment.from_pip_requirements("pipenv", str(requirements), pip_version="23.3")
    assert pinned.python.conda_dependencies is not None
    assert "pip=23.3" in list(pinned.python.conda_dependencies.conda_packages)


def test_from_pip_requirements_errors(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match=r"requirements file '.*missing\.txt' not found"):
        Environment.from_pip_requirements("e", str(tmp_path / "missing.txt"))
    nested = tmp_path / "requirements.txt"
    nested.write_text("numpy\n-r base.txt\n")
    with pytest.raises(UserErrorException, match="line 2"):
        Environment.from_pip_requirements("e", str(nested))


def test_from_conda_specification(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = tmp_path / "env.yml"
    spec.write_text("name: x\ndependencies:\n  - numpy\n  - pip:\n      - torch\n")
    with caplog.at_level(logging.WARNING):
        env = Environment.from_conda_specification("condaenv", str(spec))
    cd = env.python.conda_dependencies
    assert cd is not None
    assert cd.get_python_version() == PYTHON_DEFAULT_VERSION  # v1 fills in a default python
    assert f'No Python version provided, defaulting to "{PYTHON_DEFAULT_VERSION}"' in caplog.text
    assert list(cd.pip_packages) == ["torch"]


def test_from_docker_image_without_dependencies_is_user_managed() -> None:
    registry = ContainerRegistry()
    registry.address, registry.username, registry.password = "myreg.io", "me", "s3cret"
    env = Environment.from_docker_image("img", "myreg.io/train:1", container_registry=registry)
    assert env.python.user_managed_dependencies is True
    assert env.docker.base_image == "myreg.io/train:1"
    assert env._registry_password() == "s3cret"


def test_from_docker_image_with_requirements_is_system_managed(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy\n")
    env = Environment.from_docker_image("img", "python:3.11", pip_requirements=str(requirements))
    assert env.python.user_managed_dependencies is False


def test_from_dockerfile_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        env = Environment.from_dockerfile("df", DOCKERFILE)
    assert caplog.text == ""
    assert env.docker.base_image is None
    assert env.docker.base_dockerfile == DOCKERFILE
    assert env.python.user_managed_dependencies is True


def test_conda_and_pip_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserErrorException, match="Only one of conda_specification or pip_requirements"):
        Environment.from_dockerfile("x", DOCKERFILE, conda_specification="a.yml", pip_requirements="r.txt")


def test_serialized_dict_has_v1_shape_and_no_password() -> None:
    env = Environment("e")
    env.docker.base_image_registry.address = "myreg.io"
    env.docker.base_image_registry.password = "s3cret"
    data = env._serialize_to_dict()
    assert {"name", "version", "python", "docker", "environmentVariables", "spark", "inferencingStackVersion"} <= (
        data.keys()
    )
    assert set(data["python"]) >= {"interpreterPath", "userManagedDependencies", "condaDependencies"}
    assert data["python"]["condaDependencies"]["name"] == "project_environment"
    assert data["docker"]["baseImageRegistry"] == {"address": "myreg.io", "username": None, "password": None}
    assert data["docker"]["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert "s3cret" not in repr(env)
    assert json.loads(repr(env)) == json.loads(json.dumps(data))


def test_deserialize_round_trip() -> None:
    env = Environment.from_dockerfile("e", DOCKERFILE)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy"])
    env.python.user_managed_dependencies = False
    env.version = "3"
    back = Environment._deserialize_and_add_to_object(env._serialize_to_dict())
    assert back._serialize_to_dict() == env._serialize_to_dict()
    assert back.version == "3"


def test_clone_keeps_definition_drops_version() -> None:
    env = Environment("e")
    env.version = "2"
    env.docker.base_image_registry.password = "pw"
    copy = env.clone("e2")
    assert (copy.name, copy.version) == ("e2", None)
    assert copy._registry_password() == "pw"
    copy.python.conda_dependencies.add_pip_package("numpy")  # type: ignore[union-attr]
    assert list(env.python.conda_dependencies.pip_packages) == []  # type: ignore[union-attr]


def test_save_and_load_directory(tmp_path: Path) -> None:
    env = Environment.from_dockerfile("e", DOCKERFILE, conda_specification=None)
    env.python.user_managed_dependencies = False
    folder = tmp_path / "envdir"
    env.save_to_directory(str(folder))
    assert {p.name for p in folder.iterdir()} == {
        "azureml_environment.json",
        "conda_dependencies.yml",
        "BaseDockerfile",
    }
    definition = json.loads((folder / "azureml_environment.json").read_text())
    assert "condaDependencies" not in definition["python"]  # lives in its own file
    loaded = Environment.load_from_directory(str(folder))
    assert loaded._serialize_to_dict() == env._serialize_to_dict()

    with pytest.raises(FileExistsError, match="overwrite=True"):
        env.save_to_directory(str(folder))
    image_env = Environment("e")
    image_env.save_to_directory(str(folder), overwrite=True)
    assert not (folder / "BaseDockerfile").exists()  # a stale Dockerfile would come back on load
    assert Environment.load_from_directory(str(folder)).docker.base_image == DEFAULT_CPU_IMAGE


def test_load_from_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="save_to_directory"):
        Environment.load_from_directory(str(tmp_path))
    (tmp_path / "azureml_environment.json").write_text("{not json")
    with pytest.raises(UserErrorException, match="not valid JSON"):
        Environment.load_from_directory(str(tmp_path))


# ---- the bridge to the engine ----------------------------------------------------------------------------


def test_image_spec_system_managed() -> None:
    env = Environment("e")
    cd = CondaDependencies.create(
        pip_packages=["torch==2.1"], conda_packages=["numpy", "pip"], python_version="3.10", pin_sdk_version=False
    )
    cd.set_pip_option("--extra-index-url https://download.pytorch.org/whl/cu121")
    env.python.conda_dependencies = cd
    env.docker.base_image_registry.address = "myreg.io"
    env.docker.base_image_registry.username = "me"
    spec = image_spec(env)
    assert spec.base_image == DEFAULT_CPU_IMAGE
    assert spec.dockerfile is None
    assert (spec.registry.address, spec.registry.username) == ("myreg.io", "me")
    assert spec.user_managed is False
    assert spec.python_version == "3.10"
    assert spec.conda_packages == ("numpy",)  # python and bare pip are carried elsewhere
    assert spec.conda_channels == ("conda-forge",)
    assert spec.pip_packages == ("torch==2.1",)
    assert spec.pip_options == ("--extra-index-url https://download.pytorch.org/whl/cu121",)


def test_image_spec_user_managed_uses_interpreter() -> None:
    env = Environment.from_dockerfile("e", DOCKERFILE)
    env.python.interpreter_path = "/opt/venv/bin/python"
    spec = image_spec(env)
    assert spec.user_managed is True
    assert spec.dockerfile == DOCKERFILE
    assert spec.interpreter_path == "/opt/venv/bin/python"


def test_image_hash_ignores_name_version_variables_and_password() -> None:
    env = Environment("first")
    other = env.clone("second")
    other.version = "7"
    other.docker.base_image_registry.password = "pw"
    other.environment_variables = {"A": "B"}
    assert image_hash(image_spec(env)) == image_hash(image_spec(other))


def test_image_hash_changes_with_dependencies_and_base_image() -> None:
    env = Environment("e")
    base = image_hash(image_spec(env))
    changed = env.clone("e")
    changed.python.conda_dependencies.add_pip_package("numpy")  # type: ignore[union-attr]
    assert image_hash(image_spec(changed)) != base
    moved = env.clone("e")
    moved.docker.base_image = "python:3.11"
    assert image_hash(image_spec(moved)) != base


def test_interpreter_path_does_not_change_a_managed_image() -> None:
    env = Environment("e")
    other = env.clone("e")
    other.python.interpreter_path = "/usr/bin/python3"
    assert image_hash(image_spec(env)) == image_hash(image_spec(other))


def test_build_context_cannot_be_built_locally() -> None:
    env = Environment.from_docker_build_context("ctx", DockerBuildContext("git", "https://x/repo.git"))
    with pytest.raises(EnvironmentException, match="from_dockerfile"):
        image_spec(env)
