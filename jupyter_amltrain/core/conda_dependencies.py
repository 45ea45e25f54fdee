"""``CondaDependencies``: the conda/pip specification of a system-managed environment (v1 names and semantics).

The underlying structure is a conda environment file as a dict: ``{'name', 'dependencies', 'channels'}``, where
``dependencies`` holds conda specs (strings) and at most one ``{'pip': [...]}`` entry with pip packages and
options (entries starting with ``-``). Order is kept, because order changes the image hash (as in v1).

Deliberate differences from v1 (each keeps user code working):

* No ``azureml-defaults`` is added. v1 needs it for its cloud run-history agent; local runs report through
  this package's own runtime, so it would only slow image builds. ``pin_sdk_version`` is accepted and
  ignored: there is no Azure ML SDK version to pin to.
* Default channel is ``conda-forge`` only. v1's base file also listed ``anaconda``, whose packages come with
  commercial terms of use; builds here run on the user's own machine, so we do not opt them in silently.
  ``add_channel('anaconda')`` still works.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Iterator
from typing import Any

import yaml

from jupyter_amltrain.exceptions import UserErrorException

module_logger = logging.getLogger(__name__)

# v1's latest default interpreter. Kept so v1 notebooks that pin old packages (built for 3.6-3.9) still build;
# pass python_version= (or set_python_version) for anything newer.
PYTHON_DEFAULT_VERSION = "3.8.13"
DEFAULT_ENVIRONMENT_NAME = "project_environment"
DEFAULT_CHANNELS = ("conda-forge",)
DEFAULT_SDK_ORIGIN = "https://pypi.python.org/simple"
CONDA_FILE_NAME = "auto_conda_dependencies.yml"
RUN_CONFIG_DIR_NAME = ".azureml"

CHANNELS = "channels"
PACKAGES = "dependencies"
PIP = "pip"
PYTHON_PREFIX = "python"
VERSION_REGEX = re.compile(r"(\d+)\.(\d+)(\.(\d+))?([ab](\d+))?$")
_NAME_SPLIT = re.compile(r"[\[=<>~!;@ ]")


def _package_name(spec: str) -> str:
    """``numpy>=1.2`` -> ``numpy``; wheel files/URLs -> the distribution name (PEP 427)."""
    spec = spec.strip()
    if spec.endswith(".whl"):
        return spec.rsplit("/", 1)[-1].split("-", 1)[0]
    return _NAME_SPLIT.split(spec, 1)[0]


def _is_option(item: str) -> bool:
    return item.startswith("-")


def _is_python(spec: object) -> bool:
    # "python=3.8" yes; "python-dateutil" no.
    return isinstance(spec, str) and _package_name(spec) == PYTHON_PREFIX


_VALID_KEYS = ("name", "channels", "dependencies", "prefix", "variables")
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_EXPECTED = (
    "Expected a conda environment file such as:\n"
    "name: project_environment\n"
    "channels:\n"
    "  - conda-forge\n"
    "dependencies:\n"
    "  - python=3.10\n"
    "  - numpy\n"
    "  - pip:\n"
    "      - scikit-learn"
)


class _Malformed(Exception):
    def __init__(self, node: yaml.Node, problem: str):
        super().__init__(problem)
        self.line = node.start_mark.line + 1
        self.problem = problem


def _check_strings(node: yaml.Node, what: str) -> None:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return  # "channels:" with nothing under it: conda reads it as empty
    if not isinstance(node, yaml.SequenceNode):
        raise _Malformed(node, f"{what} must be a list")
    for item in node.value:
        if not (isinstance(item, yaml.ScalarNode) and item.tag == _STR_TAG):
            raise _Malformed(item, f"each entry of {what} must be a string such as 'numpy>=1.24'")


def _check_dependencies(node: yaml.Node) -> None:
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return
    if not isinstance(node, yaml.SequenceNode):
        raise _Malformed(node, "'dependencies' must be a list")
    for item in node.value:
        if isinstance(item, yaml.ScalarNode) and item.tag == _STR_TAG:
            continue
        if isinstance(item, yaml.MappingNode) and [k.value for k, _ in item.value] == [PIP]:
            _check_strings(item.value[0][1], "'pip'")
            continue
        raise _Malformed(item, "each dependency must be a conda spec string or a single 'pip:' list")


def _check_document(root: yaml.Node) -> None:
    if not isinstance(root, yaml.MappingNode):
        raise _Malformed(root, "the top level must be a mapping with keys 'name', 'channels', 'dependencies'")
    for key_node, value_node in root.value:
        key = key_node.value
        if key not in _VALID_KEYS:
            raise _Malformed(key_node, f"unknown key '{key}' (valid keys: {', '.join(_VALID_KEYS)})")
        if key == "channels":
            _check_strings(value_node, "'channels'")
        elif key == PACKAGES:
            _check_dependencies(value_node)
        elif key == "variables" and not isinstance(value_node, yaml.MappingNode):
            raise _Malformed(value_node, "'variables' must be a mapping of names to values")
        elif key in ("name", "prefix") and not isinstance(value_node, yaml.ScalarNode):
            raise _Malformed(value_node, f"'{key}' must be a single value")


def _load_conda_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a conda environment YAML file; errors name the file, the line and the expected shape."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise UserErrorException(
            f"Conda specification file '{path}' not found. Pass the path of an existing environment YAML "
            "file (for example one written by 'conda env export --no-builds')."
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserErrorException(
            f"Cannot read conda specification file '{path}': {error}. Pass a readable UTF-8 YAML file."
        ) from error
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        where, problem = describe_yaml_error(error)
        raise UserErrorException(
            f"Conda specification file '{path}' is not valid YAML{where}: {problem}. {_EXPECTED}"
        ) from error
    if root is None:
        raise UserErrorException(f"Conda specification file '{path}' is empty. {_EXPECTED}")
    try:
        _check_document(root)
    except _Malformed as error:
        raise UserErrorException(
            f"Conda specification file '{path}', line {error.line}: {error.problem}. {_EXPECTED}"
        ) from None
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def _validate_structure(data: dict[str, Any]) -> None:
    """Check an in-memory structure (e.g. ``condaDependencies`` of a stored definition) the same way."""
    try:
        root = yaml.compose(yaml.safe_dump(data), Loader=yaml.SafeLoader)
        if root is None:
            raise UserErrorException(f"Invalid conda dependencies: nothing given. {_EXPECTED}")
        _check_document(root)
    except (yaml.YAMLError, _Malformed) as error:
        problem = error.problem if isinstance(error, _Malformed) else str(error)
        raise UserErrorException(f"Invalid conda dependencies: {problem}. {_EXPECTED}") from None


class CondaDependencies:
    """Manages the conda and pip dependencies of an environment."""

    def __init__(
        self,
        conda_dependencies_file_path: str | os.PathLike[str] | None = None,
        _underlying_structure: dict[str, Any] | None = None,
    ) -> None:
        if conda_dependencies_file_path:
            self._conda_dependencies: dict[str, Any] = _load_conda_file(conda_dependencies_file_path)
        elif _underlying_structure is not None:
            _validate_structure(_underlying_structure)
            self._conda_dependencies = copy.deepcopy(dict(_underlying_structure))
        else:
            self._conda_dependencies = {
                "name": DEFAULT_ENVIRONMENT_NAME,
                PACKAGES: [f"{PYTHON_PREFIX}={PYTHON_DEFAULT_VERSION}"],
                CHANNELS: list(DEFAULT_CHANNELS),
            }
        self._python_version = self.get_python_version()

    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = PYTHON_DEFAULT_VERSION,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """New dependencies with the given packages; ``pin_sdk_version`` is accepted for v1 code and ignored."""
        cd = CondaDependencies()
        if pip_indexurl:
            # As v1: a custom index plus PyPI as an extra index.
            cd.set_pip_index_url(f"--index-url {pip_indexurl}")
            cd.set_pip_option(f"--extra-index-url {DEFAULT_SDK_ORIGIN}")
        cd.set_python_version(python_version or PYTHON_DEFAULT_VERSION)
        for package in pip_packages or []:
            if _package_name(package).startswith("azureml-"):
                module_logger.warning(
                    "pip package %r is part of the Azure ML SDK; jupyter_amltrain runs do not need it. "
                    "Remove it to make image builds faster.",
                    package,
                )
            cd.add_pip_package(package)
        for conda_package in conda_packages or []:
            cd.add_conda_package(conda_package)
        return cd

    @staticmethod
    def merge_requirements(requirements: list[str]) -> list[str]:
        """Merge requirements of the same package: ``['a>1', 'a<3']`` -> ``['a>1,<3']``."""
        merged: dict[str, list[str]] = {}
        for requirement in requirements:
            name = _package_name(requirement)
            merged.setdefault(name, []).append(requirement.strip()[len(name) :].strip())
        return [name + ",".join(part for part in parts if part) for name, parts in merged.items()]

    @staticmethod
    def sdk_origin_url() -> str:
        return DEFAULT_SDK_ORIGIN

    # ---- read access (copies, as v1: editing them does not change this object) -------------------------

    @property
    def conda_channels(self) -> Iterator[str]:
        return iter(list(self._conda_dependencies.get(CHANNELS) or []))

    @property
    def conda_packages(self) -> Iterator[str]:
        return iter([item for item in self._dependencies() if isinstance(item, str)])

    @property
    def pip_packages(self) -> Iterator[str]:
        return iter([item for item in self._pip_section() or [] if not _is_option(item)])

    @property
    def pip_options(self) -> Iterator[str]:
        return iter([item for item in self._pip_section() or [] if _is_option(item)])

    def get_python_version(self) -> str | None:
        for item in self._dependencies():
            if _is_python(item):
                match = VERSION_REGEX.search(item)
                return match.group() if match else None
        return None

    def as_dict(self) -> dict[str, Any]:
        """A plain copy of the structure (what v1 puts under ``python.condaDependencies``)."""
        return copy.deepcopy(self._conda_dependencies)

    def serialize_to_string(self) -> str:
        return yaml.safe_dump(self._conda_dependencies, default_flow_style=False, sort_keys=False)

    # ---- edits ------------------------------------------------------------------------------------------

    def set_python_version(self, version: str) -> None:
        dependencies = self._conda_dependencies.setdefault(PACKAGES, [])
        spec = f"{PYTHON_PREFIX}={version}"
        for index, item in enumerate(dependencies):
            if _is_python(item):
                dependencies[index] = spec  # in place, so the python line keeps its position
                break
        else:
            dependencies.append(spec)
        self._python_version = version

    def add_channel(self, channel: str) -> None:
        channels = self._conda_dependencies.setdefault(CHANNELS, [])
        if channel not in channels:
            channels.append(channel)

    def remove_channel(self, channel: str) -> None:
        channels = self._conda_dependencies.get(CHANNELS) or []
        if channel in channels:
            channels.remove(channel)

    def add_conda_package(self, conda_package: str) -> None:
        if _is_python(conda_package):
            version = VERSION_REGEX.search(conda_package)
            if version:
                self.set_python_version(version.group())
                return
        dependencies = self._conda_dependencies.setdefault(PACKAGES, [])
        if conda_package not in dependencies:
            dependencies.append(conda_package)

    def remove_conda_package(self, conda_package: str) -> None:
        dependencies = self._conda_dependencies.get(PACKAGES) or []
        if conda_package in dependencies:
            if _is_python(conda_package):
                raise UserErrorException(
                    "python must not be removed from conda dependencies. "
                    "To change the interpreter version, call set_python_version('3.10')."
                )
            dependencies.remove(conda_package)

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip package; an earlier entry for the same package is replaced and the new one goes last."""
        self._check_package(pip_package)
        self.remove_pip_package(pip_package)
        self._ensure_pip_section().append(pip_package)

    def remove_pip_package(self, pip_package: str) -> None:
        self._check_package(pip_package)
        section = self._pip_section()
        if section is None:
            return
        name = _package_name(pip_package)
        section[:] = [item for item in section if _is_option(item) or _package_name(item) != name]

    def set_pip_option(self, pip_option: str) -> None:
        """Add a pip option, or replace the option with the same flag (``--index-url``...)."""
        self._check_option(pip_option)
        section = self._ensure_pip_section()
        flag = pip_option.split()[0]
        for index, item in enumerate(section):
            if _is_option(item) and item.split()[0] == flag:
                section[index] = pip_option
                return
        section.append(pip_option)

    def set_pip_index_url(self, index_url: str) -> None:
        self.set_pip_option(index_url)

    def remove_pip_option(self, pip_option: str) -> None:
        self._check_option(pip_option)
        section = self._pip_section()
        if section is not None:
            flag = pip_option.split()[0]
            section[:] = [item for item in section if not (_is_option(item) and item.split()[0] == flag)]

    def set_pip_requirements(self, pip_requirements: list[str]) -> None:
        """Replace the whole pip section (packages and options)."""
        section = self._ensure_pip_section()
        section[:] = list(pip_requirements)

    # ---- files ------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the YAML to ``path`` (a file path, whose folder must exist); returns the path."""
        path = os.fspath(path)
        if os.path.isdir(path):
            raise UserErrorException(
                f"Cannot save a conda environment specification file to the directory '{path}'. "
                "Pass a file path, e.g. save('environment.yml')."
            )
        parent = os.path.dirname(path)
        if parent and not os.path.isdir(parent):
            raise UserErrorException(
                f"Cannot save the conda environment specification file to '{path}': folder '{parent}' "
                "does not exist. Create it first or choose another path."
            )
        self._validate()
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.serialize_to_string())
        return path

    def save_to_file(self, base_directory: str | os.PathLike[str], conda_file_path: str | None = None) -> str:
        """DEPRECATED in v1, use ``save``. Writes under ``base_directory``; returns the relative path."""
        relative = (conda_file_path or f"{RUN_CONFIG_DIR_NAME}/{CONDA_FILE_NAME}").replace("\\", "/")
        full_path = os.path.join(os.path.abspath(base_directory), relative)
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        self._validate()
        with open(full_path, "w", encoding="utf-8") as out:
            out.write(self.serialize_to_string())
        return relative

    # ---- internals --------------------------------------------------------------------------------------

    def _dependencies(self) -> list[Any]:
        return self._conda_dependencies.get(PACKAGES) or []

    def _pip_section(self) -> list[str] | None:
        for item in self._dependencies():
            if isinstance(item, dict) and PIP in item:
                section: list[str] = item[PIP]
                return section
        return None

    def _ensure_pip_section(self) -> list[str]:
        section = self._pip_section()
        if section is None:
            section = []
            self._conda_dependencies.setdefault(PACKAGES, []).append({PIP: section})
        return section

    def _validate(self) -> None:
        if not any(_is_python(item) for item in self._dependencies()):
            raise UserErrorException("Python package is missing. Add the interpreter with set_python_version('3.10').")

    @staticmethod
    def _check_package(pip_package: str) -> None:
        if _is_option(pip_package):
            raise UserErrorException(
                f"Invalid package name {pip_package}: it looks like a pip option; use set_pip_option()."
            )

    @staticmethod
    def _check_option(pip_option: str) -> None:
        if not _is_option(pip_option):
            raise UserErrorException(
                f"Invalid pip option {pip_option}: options start with '-' (e.g. '--index-url URL'); "
                "use add_pip_package() for packages."
            )

    def __repr__(self) -> str:
        return self.serialize_to_string()


def describe_yaml_error(error: yaml.YAMLError) -> tuple[str, str]:
    """Where a YAML error is (", line L, column C", or "") and what it is, for messages that point at it."""
    mark = getattr(error, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return where, getattr(error, "problem", None) or str(error)
