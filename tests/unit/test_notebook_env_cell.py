"""The body of a %%aml_env cell: what each form defines, and the errors that name the line and the fix."""

from __future__ import annotations

import pytest

from jupyter_amltrain.core.environment import image_spec
from jupyter_amltrain.core.runconfig import DEFAULT_CPU_IMAGE
from jupyter_amltrain.exceptions import UserErrorException
from jupyter_amltrain.notebook.env_cell import is_dockerfile, parse_env_cell

CONDA = """\
channels: [conda-forge]
dependencies:
  - python=3.11
  - numpy
  - pip:
      - scikit-learn==1.5.2
      - tqdm
docker:
  base_image: amltrain/base:bookworm
variables:
  DATA_DIR: "${HOME}/data/{split}"
  THREADS: 4
"""


def test_conda_yaml_defines_a_system_managed_environment_with_literal_variables() -> None:
    cell = parse_env_cell("train-env", CONDA)
    env = cell.environment
    assert cell.kind == "conda" and env.name == "train-env"
    assert env.docker.base_image == "amltrain/base:bookworm"
    assert not env.python.user_managed_dependencies
    spec = image_spec(env)
    assert spec.pip_packages == ("scikit-learn==1.5.2", "tqdm")
    assert spec.conda_packages == ("numpy",) and spec.python_version == "3.11"
    assert env.environment_variables == {"DATA_DIR": "${HOME}/data/{split}", "THREADS": "4"}


def test_without_dependencies_the_image_python_is_used_and_v1_default_image_stays() -> None:
    env = parse_env_cell("plain", "variables:\n  A: '1'\n").environment
    assert env.python.user_managed_dependencies
    assert env.docker.base_image == DEFAULT_CPU_IMAGE
    assert parse_env_cell("plain", "user_managed: true\n", base_image="my/img:1").environment.docker.base_image == (
        "my/img:1")


@pytest.mark.parametrize("body", [
    "FROM amltrain/base:bookworm\nRUN echo '{x} $y'\n",
    "# syntax=docker/dockerfile:1\n\nARG TAG=bookworm\nFROM amltrain/base:${TAG}\n",
    "  from amltrain/base:bookworm\n",
])
def test_dockerfile_cells_are_kept_verbatim(body: str) -> None:
    assert is_dockerfile(body)
    cell = parse_env_cell("img", body)
    assert cell.kind == "dockerfile"
    assert cell.environment.docker.base_dockerfile == body
    assert cell.environment.docker.base_image is None
    assert cell.environment.python.user_managed_dependencies


def test_yaml_mentioning_from_is_not_a_dockerfile() -> None:
    assert not is_dockerfile("dependencies:\n  - pip:\n    - from-package\n")


def test_registry_password_comes_from_the_named_variable_and_is_never_serialized() -> None:
    body = ("docker:\n  base_image: reg.example:5000/team/img:1\nregistry:\n  address: reg.example:5000\n"
            "  username: me\n  password_env: TEAM_REGISTRY_PASSWORD\n")
    cell = parse_env_cell("private", body, environ={"TEAM_REGISTRY_PASSWORD": "s3cret"})
    registry = cell.environment.docker.base_image_registry
    assert (registry.address, registry.username, registry.password) == ("reg.example:5000", "me", "s3cret")
    assert cell.password_env == "TEAM_REGISTRY_PASSWORD"
    assert "s3cret" not in repr(cell.environment)


@pytest.mark.parametrize(("body", "base_image", "expected"), [
    ("", None, "the cell is empty"),
    ("dependencies:\n  - pip:\n    - six\ncolour: blue\n", None, "line 4: unknown key 'colour'"),
    ("dependencies:\n  - pip: six\n", None, "line 2: 'pip' must be a list"),
    ("dependencies: [numpy\n", None, "neither a Dockerfile (first instruction FROM) nor valid YAML"),
    ("- numpy\n", None, "must be a YAML mapping"),
    ("user_managed: true\ndependencies:\n  - numpy\n", None, "line 1: 'user_managed: true' means nothing"),
    ("user_managed: yes please\n", None, "line 1: 'user_managed' must be true or false"),
    ("docker:\n  base_image: a\n  dockerfile: FROM b\n", None, "either 'docker.base_image' or"),
    ("docker:\n  base_image: a\n", "b", "--base-image and the cell's 'docker:' section"),
    ("FROM a\n", "b", "--base-image cannot be combined with a Dockerfile"),
    ("docker:\n  base_image: ''\n", None, "line 2: 'docker.base_image' must be a non-empty text"),
    ("registry:\n  address: r:5000\n  password: hunter2\n", None, "must not be written in a cell"),
    ("registry:\n  username: me\n", None, "'registry.address' is missing"),
    ("registry:\n  address: r:5000\n  password_env: NOT_SET_ANYWHERE\n", None,
     "line 3: environment variable NOT_SET_ANYWHERE (registry.password_env) is not set"),
    ("variables: [a, b]\n", None, "'variables' must be a mapping"),
])
def test_bad_cells_name_the_line_and_the_fix(body: str, base_image: str | None, expected: str) -> None:
    with pytest.raises(UserErrorException) as raised:
        parse_env_cell("bad", body, base_image=base_image, environ={})
    assert expected in str(raised.value)
    assert str(raised.value).startswith("%%aml_env bad")
