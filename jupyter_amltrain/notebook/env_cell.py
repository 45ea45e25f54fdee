"""The body of a ``%%aml_env NAME`` cell, turned into an ``Environment`` (nothing is registered or built here).

Two forms are accepted. A Dockerfile (first instruction ``FROM``, or ``ARG`` before it): the image is built
from it and its own Python runs the job. Or a conda-style YAML document::

    channels: [conda-forge]          # optional
    dependencies:                    # conda specs, and pip packages under "pip:"
      - python=3.11
      - pip:
          - scikit-learn==1.5.2
    docker:                          # optional: one of
      base_image: amltrain/base:bookworm
      # dockerfile: |                #   Dockerfile text, or a path to one
      #   FROM ...
    registry:                        # optional: where base_image is pulled from
      address: myregistry.example:5000
      username: me
      password_env: REGISTRY_PASSWORD   # the NAME of an environment variable holding the password
    user_managed: true               # optional: use the image's Python as it is, install nothing
    variables:                       # optional: environment variables of the job
      OMP_NUM_THREADS: "4"

Without ``dependencies`` the image's own Python is used, as ``Environment.from_docker_image`` does in v1.
Every error names the line and the fix, and is raised before anything is written anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from jupyter_amltrain.core.conda_dependencies import (
    DEFAULT_CHANNELS,
    CondaDependencies,
    _check_dependencies,
    _check_strings,
    _Malformed,
    describe_yaml_error,
)
from jupyter_amltrain.core.environment import Environment, image_spec
from jupyter_amltrain.exceptions import UserErrorException

TOP_KEYS = ("name", "channels", "dependencies", "docker", "registry", "user_managed", "interpreter_path",
            "variables", "prefix")
DOCKER_KEYS = ("base_image", "dockerfile")
REGISTRY_KEYS = ("address", "username", "password_env")
_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)(\s|$)")
_EXAMPLE = (
    "For example:\n"
    "%%aml_env my-env\n"
    "dependencies:\n"
    "  - pip:\n"
    "      - scikit-learn\n"
    "docker:\n"
    "  base_image: amltrain/base:bookworm\n"
    "or a Dockerfile starting with FROM."
)


@dataclass(frozen=True)
class EnvCell:
    """What a cell defines: the environment (unregistered), and how it was written."""

    environment: Environment
    kind: str  # "conda" or "dockerfile"
    password_env: str | None = None

    @property
    def registry_password(self) -> str | None:
        return self.environment.docker.base_image_registry.password


def is_dockerfile(body: str) -> bool:
    """True when the first instruction (after blank lines, comments and parser directives) is FROM or ARG."""
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _INSTRUCTION.match(stripped)
        return match is not None and match.group(1).upper() in ("FROM", "ARG")
    return False


def parse_env_cell(name: str, body: str, *, base_image: str | None = None,
                   environ: Mapping[str, str] | None = None) -> EnvCell:
    """The environment ``body`` defines under ``name``; ``base_image`` is the magic's ``--base-image``."""
    if not body.strip():
        raise UserErrorException(f"%%aml_env {name}: the cell is empty. Write the environment in it. {_EXAMPLE}")
    if is_dockerfile(body):
        if base_image:
            raise UserErrorException(
                f"%%aml_env {name}: --base-image cannot be combined with a Dockerfile cell; the Dockerfile's FROM "
                "line is the base image. Drop --base-image or edit the FROM line."
            )
        return EnvCell(Environment.from_dockerfile(name, body), "dockerfile")
    return _from_yaml(name, body, base_image, os.environ if environ is None else environ)


def _fail(name: str, node: yaml.Node | None, problem: str) -> UserErrorException:
    where = f", line {node.start_mark.line + 1}" if node is not None else ""
    return UserErrorException(f"%%aml_env {name}{where}: {problem}")


def _mapping(name: str, node: yaml.Node, what: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(name, node, f"'{what}' must be a mapping with keys {', '.join(allowed)}.")
    found: dict[str, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key not in allowed:
            where = "" if what == "the cell" else f" in '{what}'"
            raise _fail(name, key_node, f"unknown key '{key}'{where} (valid keys: {', '.join(allowed)}).")
        if key in found:
            raise _fail(name, key_node, f"'{key}' is given twice in '{what}'; keep one.")
        found[key] = value_node
    return found


def _text(name: str, node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null" or not str(node.value).strip():
        raise _fail(name, node, f"'{what}' must be a non-empty text value.")
    return str(node.value)


def _compose(name: str, body: str) -> yaml.Node:
    try:
        root = yaml.compose(body, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        where, problem = describe_yaml_error(error)
        raise UserErrorException(
            f"%%aml_env {name}{where}: the cell is neither a Dockerfile (first instruction FROM) nor valid YAML: "
            f"{problem}. {_EXAMPLE}"
        ) from None
    if not isinstance(root, yaml.MappingNode):
        raise UserErrorException(
            f"%%aml_env {name}: the cell must be a YAML mapping (keys {', '.join(TOP_KEYS)}) or a Dockerfile. "
            f"{_EXAMPLE}"
        )
    return root


def _from_yaml(name: str, body: str, base_image: str | None, environ: Mapping[str, str]) -> EnvCell:
    root = _compose(name, body)
    keys = _mapping(name, root, "the cell", TOP_KEYS)
    try:
        if "channels" in keys:
            _check_strings(keys["channels"], "'channels'")
        if "dependencies" in keys:
            _check_dependencies(keys["dependencies"])
    except _Malformed as error:
        raise UserErrorException(f"%%aml_env {name}, line {error.line}: {error.problem}. {_EXAMPLE}") from None
    data: dict[str, Any] = yaml.safe_load(body)

    user_managed = data.get("user_managed", False)
    if not isinstance(user_managed, bool):
        raise _fail(name, keys["user_managed"], "'user_managed' must be true or false.")
    dependencies = data.get("dependencies") or []
    if user_managed and dependencies:
        raise _fail(name, keys["user_managed"],
                    "'user_managed: true' means nothing is installed, so 'dependencies' would be ignored. Remove "
                    "'user_managed' to have them installed, or remove 'dependencies' to use the image as it is.")

    env = Environment(name)
    docker = _mapping(name, keys["docker"], "docker", DOCKER_KEYS) if "docker" in keys else {}
    if len(docker) > 1:
        raise _fail(name, keys["docker"], "give either 'docker.base_image' or 'docker.dockerfile', not both.")
    if base_image and docker:
        raise _fail(name, keys["docker"], "--base-image and the cell's 'docker:' section both name the image; "
                    "keep one.")
    if "dockerfile" in docker:
        env.docker.base_image = None
        env.docker.base_dockerfile = _text(name, docker["dockerfile"], "docker.dockerfile")
    elif "base_image" in docker or base_image:
        env.docker.base_image = base_image or _text(name, docker["base_image"], "docker.base_image")

    password_env = _registry(name, env, keys, environ)

    if dependencies:
        structure = {"name": str(data.get("name") or name), "channels": list(data.get("channels") or DEFAULT_CHANNELS),
                     "dependencies": dependencies}
        env.python.conda_dependencies = CondaDependencies(_underlying_structure=structure)
    else:
        # No dependencies: the image's Python runs the job, as v1's from_docker_image/from_dockerfile do.
        env.python.user_managed_dependencies = True
    if user_managed:
        env.python.user_managed_dependencies = True
    if "interpreter_path" in keys:
        env.python.interpreter_path = _text(name, keys["interpreter_path"], "interpreter_path")

    variables = data.get("variables")
    if variables is not None:
        if not isinstance(variables, dict):
            raise _fail(name, keys["variables"], "'variables' must be a mapping of names to values.")
        # Replaced in place: the public setter logs v1's deprecation warning, meant for run-time variables.
        env.environment_variables.clear()
        env.environment_variables.update({str(key): "" if value is None else str(value)
                                          for key, value in variables.items()})
    image_spec(env)  # anything that cannot be built fails here, before registration
    return EnvCell(env, "conda", password_env)


def _registry(name: str, env: Environment, keys: dict[str, yaml.Node], environ: Mapping[str, str]) -> str | None:
    if "registry" not in keys:
        return None
    node = keys["registry"]
    if isinstance(node, yaml.MappingNode) and any(str(k.value) == "password" for k, _ in node.value):
        raise _fail(name, node, "a registry password must not be written in a cell (it would be saved in the "
                    "notebook). Put it in an environment variable and name that variable in "
                    "'registry.password_env'.")
    registry = _mapping(name, node, "registry", REGISTRY_KEYS)
    if "address" not in registry:
        raise _fail(name, node, "'registry.address' is missing: the registry's host[:port], e.g. "
                    "myregistry.example:5000.")
    env.docker.base_image_registry.address = _text(name, registry["address"], "registry.address")
    if "username" in registry:
        env.docker.base_image_registry.username = _text(name, registry["username"], "registry.username")
    if "password_env" not in registry:
        return None
    variable = _text(name, registry["password_env"], "registry.password_env")
    password = environ.get(variable)
    if not password:
        raise _fail(name, registry["password_env"],
                    f"environment variable {variable} (registry.password_env) is not set in this kernel. Set it "
                    f"before running the cell, e.g. import os, getpass; os.environ[{variable!r}] = "
                    "getpass.getpass().")
    env.docker.base_image_registry.password = password
    return variable
