"""``Environment`` and its sections, with v1 names, defaults and serialization (``azureml.core.environment``).

An environment is a definition only: base image or Dockerfile, Python dependencies, environment variables.
``image_spec(env)`` hands the parts that shape the image to the engine; registration stores the v1 dict in the
workspace with numbered versions. Warnings use the module logger as v1 does, so notebooks show the same
stderr lines.

Local differences: there are no curated (``AzureML-*``) environments, labels, cloud builds or Docker build
contexts; a container registry password is never stored (see ``container_registry``).
"""

from __future__ import annotations

import builtins
import copy
import json
import logging
import os
import subprocess
import tempfile
from typing import Any

from jupyter_amltrain.core.conda_dependencies import (
    PIP,
    PYTHON_DEFAULT_VERSION,
    CondaDependencies,
    _is_python,
)
from jupyter_amltrain.core.container_registry import ContainerRegistry
from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.engine import environments as registry
from jupyter_amltrain.engine.images.spec import ImageSpec, RegistrySpec, image_hash
from jupyter_amltrain.engine.store import Store
from jupyter_amltrain.exceptions import EnvironmentException, UserErrorException

module_logger = logging.getLogger(__name__)

DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:20230227.v1"
DEFAULT_GPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.3-cudnn8-ubuntu20.04:20230227.v1"
_DEFAULT_SHM_SIZE = "2g"
_DEFAULT_ENVIRONMENT_VARIABLES = {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
_RESERVED_PREFIXES = ("AzureML", "Microsoft")

_CONDA_DEPENDENCIES_FILE_NAME = "conda_dependencies.yml"
_BASE_DOCKERFILE_FILE_NAME = "BaseDockerfile"
_DEFINITION_FILE_NAME = "azureml_environment.json"
_DOCKERFILE_STARTS = ("FROM", "ARG", "#", "RUN", "ENV", "COPY", "WORKDIR", "USER", "LABEL")


class DockerImagePlatform:
    """Operating system and CPU architecture of the image (``Linux`` / ``amd64``)."""

    def __init__(self) -> None:
        self.os = "Linux"
        self.architecture = "amd64"


class DockerBuildContext:
    """A Docker build context (v1 holder). Accepted for compatibility; local builds cannot use one yet."""

    def __init__(
        self, location_type: str | None = None, location: str | None = None, dockerfile_path: str = "Dockerfile"
    ) -> None:
        self.location_type = location_type
        self.location = location
        self.dockerfile_path = dockerfile_path or "Dockerfile"

    def _to_dict(self) -> dict[str, Any]:
        return {"locationType": self.location_type, "location": self.location, "dockerfilePath": self.dockerfile_path}


class PythonSection:
    """Which Python runs the job and whether its packages are managed from ``conda_dependencies``."""

    def __init__(self, **kwargs: Any) -> None:
        self.interpreter_path = "python"
        self.user_managed_dependencies = False
        self.base_conda_environment: str | None = None
        self._conda_dependencies_file: str | None = None
        self.conda_dependencies: CondaDependencies | None = None
        if not kwargs.get("_skip_defaults", False):
            self.conda_dependencies = CondaDependencies()

    @property
    def conda_dependencies_file(self) -> str | None:
        """DEPRECATED. Use ``Environment.from_conda_specification``."""
        return self._conda_dependencies_file

    @conda_dependencies_file.setter
    def conda_dependencies_file(self, value: str | None) -> None:
        module_logger.warning(
            "Property conda_dependencies_file is deprecated. Use Environment.from_conda_specification"
        )
        self._conda_dependencies_file = value or None


class DockerSection:
    """The image: ``base_image``, ``base_dockerfile`` or ``build_context`` (mutually exclusive), and registry."""

    def __init__(self, **kwargs: Any) -> None:
        self._enabled = False
        self._shm_size: str | None = None
        self._shared_volumes = True
        self._arguments: list[str] = []
        self._base_image: str | None = None
        self._base_dockerfile: str | None = None
        self._build_context: DockerBuildContext | None = None
        self.base_image_registry = ContainerRegistry()
        self.platform = DockerImagePlatform()
        if not kwargs.get("_skip_defaults", False):
            self._shm_size = _DEFAULT_SHM_SIZE
            self._base_image = DEFAULT_CPU_IMAGE

    @property
    def base_image(self) -> str | None:
        return self._base_image

    @base_image.setter
    def base_image(self, value: str | None) -> None:
        self._base_image = value or None
        if value:
            self._reset("_base_dockerfile", "base_dockerfile", "base_image")
            self._reset("_build_context", "build_context", "base_image")

    @property
    def base_dockerfile(self) -> str | None:
        return self._base_dockerfile

    @base_dockerfile.setter
    def base_dockerfile(self, value: Any) -> None:
        self._base_dockerfile = _read_dockerfile(value) if value else None
        if value:
            self._reset("_base_image", "base_image", "base_dockerfile")
            self._reset("_build_context", "build_context", "base_dockerfile")

    @property
    def build_context(self) -> DockerBuildContext | None:
        return self._build_context

    @build_context.setter
    def build_context(self, value: DockerBuildContext | None) -> None:
        self._build_context = value or None
        if value:
            self._reset("_base_dockerfile", "base_dockerfile", "build_context")
            self._reset("_base_image", "base_image", "build_context")

    def _reset(self, attribute: str, name: str, winner: str) -> None:
        if getattr(self, attribute):
            setattr(self, attribute, None)
            module_logger.warning(f"Property {name} is mutually exclusive with {winner}. Reset {name} to None")

    # Deprecated in v1 in favour of runconfig.DockerConfiguration; still honoured by ScriptRunConfig.
    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        module_logger.warning(
            "'enabled' is deprecated. Please use the jupyter_amltrain.core.runconfig.DockerConfiguration "
            "object with the 'use_docker' param instead."
        )
        self._enabled = bool(value)

    @property
    def shared_volumes(self) -> bool:
        return self._shared_volumes

    @shared_volumes.setter
    def shared_volumes(self, value: bool) -> None:
        module_logger.warning(
            "'shared_volumes' is deprecated. Please use the jupyter_amltrain.core.runconfig.DockerConfiguration "
            "object instead."
        )
        self._shared_volumes = bool(value)

    @property
    def arguments(self) -> list[str]:
        return self._arguments

    @arguments.setter
    def arguments(self, value: list[str] | None) -> None:
        module_logger.warning(
            "'arguments' is deprecated. Please use the jupyter_amltrain.core.runconfig.DockerConfiguration "
            "object instead."
        )
        self._arguments = list(value or [])

    @property
    def shm_size(self) -> str | None:
        return self._shm_size

    @shm_size.setter
    def shm_size(self, value: str | None) -> None:
        module_logger.warning(
            "'shm_size' is deprecated. Please use the jupyter_amltrain.core.runconfig.DockerConfiguration "
            "object instead."
        )
        self._shm_size = value

    @property
    def gpu_support(self) -> bool:
        """DEPRECATED: GPUs are used when the compute target has them."""
        module_logger.warning(_GPU_SUPPORT_MESSAGE)
        return True

    @gpu_support.setter
    def gpu_support(self, _: bool) -> None:
        module_logger.warning(_GPU_SUPPORT_MESSAGE)


_GPU_SUPPORT_MESSAGE = (
    "'gpu_support' is no longer necessary; AzureML now automatically detects and uses nvidia docker extension "
    "when it is available. It will be removed in a future release."
)


def _read_dockerfile(value: Any) -> str:
    """Dockerfile text from a file-like object, a path to a file, or the text itself (v1 rules)."""
    if callable(getattr(value, "read", None)):
        return str(value.read())
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise UserErrorException(
            f"base_dockerfile must be Dockerfile text, a path to a Dockerfile or an open file, not "
            f"{type(value).__name__}."
        )
    if os.path.isfile(text):
        with open(text, encoding="utf-8") as handle:
            return handle.read()
    # A one-line value that is no Dockerfile instruction is almost surely a mistyped path; v1 would store
    # the path as the Dockerfile and fail much later in the build.
    first_word = text.strip().split(maxsplit=1)[0].upper() if text.strip() else ""
    if "\n" not in text.strip() and not first_word.startswith(_DOCKERFILE_STARTS):
        raise UserErrorException(
            f"Dockerfile '{text}' not found. Pass the path of an existing Dockerfile (relative paths are "
            f"resolved from '{os.getcwd()}') or the Dockerfile text itself, starting with FROM."
        )
    return text


class SparkSection:
    """Spark settings (kept for the v1 dict shape; unused locally)."""

    def __init__(self, **kwargs: Any) -> None:
        self.repositories: list[str] = []
        self.packages: list[Any] = []
        self.precache_packages = True


class DatabricksSection:
    """Databricks libraries (kept for the v1 dict shape; unused locally)."""

    def __init__(self, **kwargs: Any) -> None:
        self.maven_libraries: list[Any] = []
        self.pypi_libraries: list[Any] = []
        self.rcran_libraries: list[Any] = []
        self.jar_libraries: list[Any] = []
        self.egg_libraries: list[Any] = []


def _store_of(workspace: Any) -> Store:
    """The store behind a core ``Workspace`` or a ``LocalWorkspace``."""
    return engine_workspace(workspace).store


def _workspace_name(workspace: Any) -> str:
    return engine_workspace(workspace).name


class Environment:
    """A reproducible Python environment: dependencies, image and environment variables."""

    def __init__(self, name: str | None, **kwargs: Any) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Environment name expected str, {type(name)} found")
        skip = bool(kwargs.get("_skip_defaults", False))
        self.name = name
        self.version: str | None = None
        self.python = PythonSection(_skip_defaults=skip)
        self.docker = DockerSection(_skip_defaults=skip)
        self.spark = SparkSection(_skip_defaults=skip)
        self.databricks = DatabricksSection(_skip_defaults=skip)
        self.r: Any = None
        self.inferencing_stack_version: str | None = None
        self.asset_id: str | None = None
        self._environment_variables: dict[str, str] = {} if skip else dict(_DEFAULT_ENVIRONMENT_VARIABLES)

    @property
    def environment_variables(self) -> dict[str, str]:
        """DEPRECATED in v1: use ``RunConfiguration.environment_variables`` for runtime variables."""
        return self._environment_variables

    @environment_variables.setter
    def environment_variables(self, value: dict[str, str]) -> None:
        module_logger.warning(
            "Property environment_variables is deprecated. "
            "Use RunConfiguration.environment_variables to set runtime variables."
        )
        self._environment_variables = dict(value or {})

    def __str__(self) -> str:
        return f"Environment(Name: {self.name},\nVersion: {self.version})"

    def __repr__(self) -> str:
        return json.dumps(self._serialize_to_dict(), indent=4, sort_keys=True)

    # ---- workspace registry -----------------------------------------------------------------------------

    def register(self, workspace: Any) -> Environment:
        """Register in ``workspace``; returns the registered environment (same version if nothing changed)."""
        name = check_environment_name(self.name)
        if self.version is not None:
            module_logger.warning(
                "Environment version is set (%s). Local registration always auto-versions: a new version is "
                "created only when the definition differs from the latest one.",
                self.version,
            )
        spec = image_spec(self)  # fails on what cannot be built, before anything is stored
        version = registry.register_environment(_store_of(workspace), name, self._serialize_to_dict(), image_hash(spec))
        found = registry.get_environment(_store_of(workspace), name, version)
        assert found is not None  # just written in this process
        registered = environment_from_dict(found[0])
        # Same session: keep the password in memory so the returned object can still pull the image.
        registered.docker.base_image_registry.password = self.docker.base_image_registry.password
        return registered

    @staticmethod
    def get(workspace: Any, name: str, version: str | int | None = None, label: str | None = None) -> Environment:
        """The registered environment ``name`` (latest version unless ``version`` is given)."""
        if label and version:
            raise UserErrorException("Only one of version or label can be specified")
        if label:
            raise UserErrorException(
                f"Environment labels are not supported locally (label {label!r}). "
                f"Use Environment.get(ws, {name!r}, version=...) instead."
            )
        number = _version_number(version)
        store = _store_of(workspace)
        found = registry.get_environment(store, name, number) if number != -1 else None
        if found is None:
            raise UserErrorException(_not_found_message(store, workspace, name, version))
        return environment_from_dict(found[0])

    @staticmethod
    def list(workspace: Any) -> dict[str, Environment]:
        """Latest version of every environment registered in ``workspace``, by name."""
        return {
            name: environment_from_dict(definition)
            for name, (definition, _) in registry.list_environments(_store_of(workspace)).items()
        }

    @staticmethod
    def label(workspace: Any, name: str, version: str, labels: builtins.list[str]) -> None:
        raise UserErrorException(
            "Environment labels are not supported locally. Refer to versions instead: "
            f"Environment.get(ws, {name!r}, version={version!r})."
        )

    def clone(self, new_name: str) -> Environment:
        """A copy under ``new_name``, unregistered (version None)."""
        if not new_name:
            raise UserErrorException("Name is required to instantiate an Environment object")
        env = environment_from_dict(self._serialize_to_dict())
        env.name = new_name
        env.version = None
        env.asset_id = None
        env.docker.base_image_registry.password = self.docker.base_image_registry.password
        return env

    # ---- factories --------------------------------------------------------------------------------------

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        """From a conda environment YAML file (``conda env export``); malformed files raise, naming the line."""
        conda_dependencies = CondaDependencies(conda_dependencies_file_path=file_path)
        if not conda_dependencies.get_python_version():
            module_logger.warning(f'No Python version provided, defaulting to "{PYTHON_DEFAULT_VERSION}"')
            conda_dependencies.set_python_version(PYTHON_DEFAULT_VERSION)
        env = Environment(name=name)
        env.python.conda_dependencies = conda_dependencies
        return env

    @staticmethod
    def from_pip_requirements(
        name: str, file_path: str | os.PathLike[str], pip_version: str | None = None
    ) -> Environment:
        """From a pip requirements file; adds conda ``pip`` (pinned to ``pip_version`` if given)."""
        env = Environment(name=name)
        assert env.python.conda_dependencies is not None
        env.python.conda_dependencies.set_pip_requirements(_read_requirements(os.fspath(file_path)))
        env.python.conda_dependencies.add_conda_package(f"pip={pip_version}" if pip_version else "pip")
        return env

    @staticmethod
    def from_dockerfile(
        name: str,
        dockerfile: Any,
        conda_specification: str | None = None,
        pip_requirements: str | None = None,
    ) -> Environment:
        """From Dockerfile text or path; without Python dependencies the image's own Python is used."""
        env = Environment._from_dependencies(name, conda_specification, pip_requirements)
        env.docker.base_image = None
        env.docker.build_context = None
        env.docker.base_dockerfile = dockerfile
        return env

    @staticmethod
    def from_docker_image(
        name: str,
        image: str,
        container_registry: ContainerRegistry | None = None,
        conda_specification: str | None = None,
        pip_requirements: str | None = None,
    ) -> Environment:
        """From an image; without Python dependencies the image's own Python is used (user-managed)."""
        env = Environment._from_dependencies(name, conda_specification, pip_requirements)
        env.docker.base_dockerfile = None
        env.docker.build_context = None
        env.docker.base_image = image
        if container_registry:
            env.docker.base_image_registry = container_registry
        return env

    @staticmethod
    def from_docker_build_context(name: str, docker_build_context: DockerBuildContext) -> Environment:
        env = Environment(name, _skip_defaults=True)
        env.docker.build_context = docker_build_context
        return env

    @staticmethod
    def from_existing_conda_environment(name: str, conda_environment_name: str) -> Environment | None:
        """From a local conda environment via ``conda env export --no-builds``; None if that fails (v1)."""
        command = ["conda", "env", "export", "--no-builds", "--name", conda_environment_name]
        print(f"Exporting conda specifications for existing conda environment: {conda_environment_name}")
        try:
            exported = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        except FileNotFoundError:
            print("Unable to run Conda package manager. Please make sure Conda (>= 4.4.0) is installed.")
            return None
        except subprocess.CalledProcessError as error:
            print(f"Exporting conda specifications failed with exit code: {error.returncode}")
            return None
        with tempfile.TemporaryDirectory() as folder:
            spec = os.path.join(folder, "environment.yml")
            with open(spec, "w", encoding="utf-8") as handle:
                # conda records its own install location; meaningless elsewhere.
                handle.write("\n".join(line for line in exported.splitlines() if not line.startswith("prefix:")))
            return Environment.from_conda_specification(name, spec)

    @staticmethod
    def _from_dependencies(
        name: str, conda_specification: str | None = None, pip_requirements: str | None = None
    ) -> Environment:
        if conda_specification and pip_requirements:
            raise UserErrorException(
                "Only one of conda_specification or pip_requirements can be specified as python dependencies. "
                "Put the pip packages under 'pip:' in the conda file, or pass only the requirements file."
            )
        if conda_specification:
            return Environment.from_conda_specification(name, conda_specification)
        if pip_requirements:
            return Environment.from_pip_requirements(name, pip_requirements)
        env = Environment(name)
        env.python.user_managed_dependencies = True
        return env

    # ---- files ------------------------------------------------------------------------------------------

    def save_to_directory(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write ``azureml_environment.json``, ``conda_dependencies.yml`` and ``BaseDockerfile`` to ``path``."""
        path = os.fspath(path)
        try:
            os.makedirs(path, exist_ok=overwrite)
        except FileExistsError:
            raise FileExistsError(
                f"Directory '{path}' already exists. Pass overwrite=True to replace the environment files in "
                "it, or choose a new directory."
            ) from None
        definition = self._serialize_to_dict()
        conda_file = os.path.join(path, _CONDA_DEPENDENCIES_FILE_NAME)
        dockerfile = os.path.join(path, _BASE_DOCKERFILE_FILE_NAME)
        if self.python.conda_dependencies is not None:
            self.python.conda_dependencies.save_to_file(path, _CONDA_DEPENDENCIES_FILE_NAME)
            definition["python"].pop("condaDependencies", None)
        elif os.path.exists(conda_file):
            os.remove(conda_file)  # a stale file from an earlier save would be loaded back
        if self.docker.base_dockerfile:
            with open(dockerfile, "w", encoding="utf-8") as handle:
                handle.write(self.docker.base_dockerfile)
            definition["docker"].pop("baseDockerfile", None)
        elif os.path.exists(dockerfile):
            os.remove(dockerfile)
        with open(os.path.join(path, _DEFINITION_FILE_NAME), "w", encoding="utf-8") as handle:
            json.dump(definition, handle, indent=4)

    @staticmethod
    def load_from_directory(path: str | os.PathLike[str]) -> Environment:
        """Read back what ``save_to_directory`` wrote (the files may have been edited by hand)."""
        path = os.fspath(path)
        definition_path = os.path.join(path, _DEFINITION_FILE_NAME)
        if not os.path.isfile(definition_path):
            raise FileNotFoundError(
                f"{definition_path} not found. Pass a directory written by Environment.save_to_directory()."
            )
        try:
            with open(definition_path, encoding="utf-8") as handle:
                definition = json.load(handle)
        except json.JSONDecodeError as error:
            raise UserErrorException(
                f"Environment definition '{definition_path}' is not valid JSON (line {error.lineno}, column "
                f"{error.colno}: {error.msg}). Fix the file or save the environment again."
            ) from None
        if not isinstance(definition, dict):
            raise UserErrorException(
                f"Environment definition '{definition_path}' must hold a JSON object like the one "
                "save_to_directory() writes."
            )
        env = environment_from_dict(definition)
        conda_file = os.path.join(path, _CONDA_DEPENDENCIES_FILE_NAME)
        if os.path.isfile(conda_file):
            env.python.conda_dependencies = CondaDependencies(conda_file)
        dockerfile = os.path.join(path, _BASE_DOCKERFILE_FILE_NAME)
        if os.path.isfile(dockerfile):
            with open(dockerfile, encoding="utf-8") as handle:
                env.docker.base_dockerfile = handle.read()
        return env

    # ---- serialization ----------------------------------------------------------------------------------

    def _serialize_to_dict(self) -> dict[str, Any]:
        """The v1 environment dict (camelCase keys); the registry password is always None."""
        python, docker = self.python, self.docker
        return {
            "name": self.name,
            "version": self.version,
            "environmentVariables": dict(self._environment_variables),
            "python": {
                "userManagedDependencies": python.user_managed_dependencies,
                "interpreterPath": python.interpreter_path,
                "condaDependenciesFile": python.conda_dependencies_file,
                "baseCondaEnvironment": python.base_conda_environment,
                "condaDependencies": (
                    python.conda_dependencies.as_dict() if python.conda_dependencies is not None else None
                ),
            },
            "docker": {
                "enabled": docker.enabled,
                "baseImage": docker.base_image,
                "baseDockerfile": docker.base_dockerfile,
                "buildContext": docker.build_context._to_dict() if docker.build_context else None,
                "sharedVolumes": docker.shared_volumes,
                "shmSize": docker.shm_size,
                "arguments": list(docker.arguments),
                "baseImageRegistry": docker.base_image_registry._serialize_to_dict(),
                "platform": {"os": docker.platform.os, "architecture": docker.platform.architecture},
            },
            "spark": {
                "repositories": list(self.spark.repositories),
                "packages": copy.deepcopy(self.spark.packages),
                "precachePackages": self.spark.precache_packages,
            },
            "databricks": {
                "mavenLibraries": list(self.databricks.maven_libraries),
                "pypiLibraries": list(self.databricks.pypi_libraries),
                "rcranLibraries": list(self.databricks.rcran_libraries),
                "jarLibraries": list(self.databricks.jar_libraries),
                "eggLibraries": list(self.databricks.egg_libraries),
            },
            "r": None,
            "inferencingStackVersion": self.inferencing_stack_version,
            "assetId": self.asset_id,
        }

    @staticmethod
    def _deserialize_and_add_to_object(serialized_dict: dict[str, Any]) -> Environment:
        """v1's name for ``environment_from_dict``."""
        return environment_from_dict(serialized_dict)

    def _registry_password(self) -> str | None:
        """The base-image registry password, held in memory only (never serialized)."""
        return self.docker.base_image_registry.password


def environment_from_dict(serialized_dict: dict[str, Any]) -> Environment:
    """An Environment from its v1 dict (``_serialize_to_dict()``, what registration stores); missing sections keep
    empty values, as v1's ``_skip_defaults``."""
    data = serialized_dict
    env = Environment(data.get("name"), _skip_defaults=True)
    version = data.get("version")
    env.version = None if version is None else str(version)
    env._environment_variables = dict(data.get("environmentVariables") or {})
    env.inferencing_stack_version = data.get("inferencingStackVersion")
    env.asset_id = data.get("assetId")

    python = data.get("python") or {}
    env.python.user_managed_dependencies = bool(python.get("userManagedDependencies", False))
    env.python.interpreter_path = python.get("interpreterPath") or "python"
    env.python._conda_dependencies_file = python.get("condaDependenciesFile")
    env.python.base_conda_environment = python.get("baseCondaEnvironment")
    if python.get("condaDependencies") is not None:
        env.python.conda_dependencies = CondaDependencies(_underlying_structure=python["condaDependencies"])

    docker = data.get("docker") or {}
    section = env.docker
    section._enabled = bool(docker.get("enabled", False))
    section._base_image = docker.get("baseImage")
    section._base_dockerfile = docker.get("baseDockerfile")
    context = docker.get("buildContext")
    if context:
        section._build_context = DockerBuildContext(
            context.get("locationType"), context.get("location"), context.get("dockerfilePath", "Dockerfile")
        )
    section._shared_volumes = bool(docker.get("sharedVolumes", True))
    section._shm_size = docker.get("shmSize")
    section._arguments = list(docker.get("arguments") or [])
    section.base_image_registry = ContainerRegistry._deserialize(docker.get("baseImageRegistry"))
    platform = docker.get("platform") or {}
    section.platform.os = platform.get("os") or "Linux"
    section.platform.architecture = platform.get("architecture") or "amd64"

    spark = data.get("spark") or {}
    env.spark.repositories = list(spark.get("repositories") or [])
    env.spark.packages = list(spark.get("packages") or [])
    env.spark.precache_packages = bool(spark.get("precachePackages", True))
    return env


# ---- bridge to the engine ---------------------------------------------------------------------------


def image_spec(environment: Environment) -> ImageSpec:
    """What ``environment``'s image is made of: the input of ``image_hash`` and of the image builder. Raises
    EnvironmentException for what local builds can not make."""
    docker, python = environment.docker, environment.python
    if docker.build_context is not None:
        raise EnvironmentException(
            f"Environment '{environment.name}' uses a Docker build context, which local builds do not support. "
            "Put the build steps in a Dockerfile instead: Environment.from_dockerfile(name, 'Dockerfile')."
        )
    user_managed = bool(python.user_managed_dependencies)
    conda = python.conda_dependencies
    conda_packages: tuple[str, ...] = ()
    if conda is not None:
        # python is carried by python_version; a bare "pip" is always installed. A pinned pip is kept.
        conda_packages = tuple(p for p in conda.conda_packages if not _is_python(p) and p.strip() != PIP)
    return ImageSpec(
        base_image=docker.base_image,
        dockerfile=docker.base_dockerfile,
        registry=RegistrySpec(docker.base_image_registry.address, docker.base_image_registry.username),
        user_managed=user_managed,
        # v1: interpreter_path is only used when user-managed; do not let it change a managed image's hash.
        interpreter_path=(python.interpreter_path or "python") if user_managed else "python",
        conda_channels=tuple(conda.conda_channels) if conda else (),
        conda_packages=conda_packages,
        pip_packages=tuple(conda.pip_packages) if conda else (),
        pip_options=tuple(conda.pip_options) if conda else (),
        python_version=conda.get_python_version() if conda else None,
    )


def _version_number(version: str | int | None) -> int | None:
    """Versions are strings in v1 ('1'); -1 means "cannot exist" (e.g. a cloud 'Autosave_...' version)."""
    if version is None:
        return None
    try:
        return int(str(version))
    except ValueError:
        return -1


def check_environment_name(name: str | None) -> str:
    """``name`` when an environment may be registered under it; else UserErrorException saying why not (no
    name, or a name reserved for Azure ML's curated environments)."""
    if not name:
        raise UserErrorException("An environment needs a name to be registered: Environment(name='my-env').")
    if name.startswith(_RESERVED_PREFIXES):
        raise UserErrorException(
            f"Environment name '{name}' is reserved: names starting with 'AzureML' or 'Microsoft' belong "
            "to Azure ML curated environments. Register it under another name, e.g. "
            f"env = env.clone('{name.split('-', 1)[-1] or 'my-env'}')."
        )
    return name


def _not_found_message(store: Store, workspace: Any, name: str, version: str | int | None) -> str:
    which = f"Environment '{name}'" + (f" version {version}" if version is not None else "")
    message = f"{which} not found in workspace '{_workspace_name(workspace)}'."
    latest = registry.get_environment(store, name)
    if version is not None and latest is not None:
        return f"{message} Its latest version is {latest[1]}; call Environment.get(ws, {name!r}) for it."
    if name.startswith(_RESERVED_PREFIXES):
        return (
            f"{message} Curated Azure ML environments do not exist locally: build an equivalent with "
            "Environment.from_conda_specification() or Environment.from_docker_image() and register it."
        )
    names = sorted(registry.list_environments(store))
    known = ", ".join(names) if names else "none"
    return f"{message} Registered environments: {known}. Register it first with env.register(ws)."


def _read_requirements(path: str) -> list[str]:
    """Requirement lines without blanks and comments; nested ``-r``/``-c`` files cannot reach the image."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise UserErrorException(
            f"Pip requirements file '{path}' not found (relative paths are resolved from '{os.getcwd()}'). "
            "Pass the path of an existing requirements.txt."
        ) from None
    requirements = []
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.split()[0] in ("-r", "--requirement", "-c", "--constraint"):
            raise UserErrorException(
                f"Pip requirements file '{path}', line {number}: '{line}' refers to another file, which the "
                "image build cannot see. Copy that file's requirements into this one."
            )
        requirements.append(line)
    return requirements


__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DEFAULT_GPU_IMAGE",
    "DockerBuildContext",
    "DockerImagePlatform",
    "DockerSection",
    "Environment",
    "PythonSection",
    "SparkSection",
]
