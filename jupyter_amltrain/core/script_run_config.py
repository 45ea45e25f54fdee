"""``ScriptRunConfig``: what ``Experiment.submit`` runs (v1 ``azureml.core.script_run_config``).

Constructor semantics follow v1: with a ``run_config``, the compute/environment/distribution/duration/docker
arguments are ignored with a warning, and ``script``/``arguments``/``command`` given here win over the
run_config's. ``_validate()`` checks the source directory and script before a snapshot is taken.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
from pathlib import Path
from typing import Any

from jupyter_amltrain.core.environment import Environment
from jupyter_amltrain.core.runconfig import (
    DockerConfiguration,
    EnvironmentDefinition,
    MpiConfiguration,
    PyTorchConfiguration,
    RunConfiguration,
    TensorflowConfiguration,
)
from jupyter_amltrain.exceptions import UserErrorException

_LISTED_FILES = 20  # files named in a "script not found" error
_SCANNED_FILES = 5000  # files looked at for a "did you mean" suggestion


class ScriptRunConfig:
    """Source directory, script or command, compute target and environment of one training run."""

    MAX_DURATION_SECONDS_DEFAULT = 2592000

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        _telemetry_values: dict[str, Any] | None = None,
        compute_target: Any = None,
        environment: Environment | None = None,
        distributed_job_config: MpiConfiguration | PyTorchConfiguration | TensorflowConfiguration | None = None,
        resume_from: Any = None,
        max_run_duration_seconds: int = MAX_DURATION_SECONDS_DEFAULT,
        command: list[str] | str | None = None,
        docker_runtime_config: DockerConfiguration | None = None,
    ) -> None:
        self.source_directory = os.fspath(source_directory) if source_directory is not None else None
        self.script = script
        self.command = command
        self.arguments = arguments
        self._telemetry_values = _telemetry_values
        if resume_from is not None:
            raise UserErrorException(
                "resume_from (a datastore DataPath) is not supported locally. Pass the checkpoint location to "
                "your script in arguments instead, e.g. arguments=['--resume-from', '/path/to/checkpoint']."
            )
        if run_config is not None:
            self.run_config = run_config
            self._take_from_run_config(
                run_config,
                ignored=max_run_duration_seconds != self.MAX_DURATION_SECONDS_DEFAULT
                or any([compute_target, environment, distributed_job_config, docker_runtime_config]),
            )
        else:
            self.run_config = RunConfiguration()
            self.run_config.target = compute_target if compute_target else "local"
            self.run_config.environment = environment if environment else EnvironmentDefinition("default-environment")
            self.run_config.max_run_duration_seconds = max_run_duration_seconds
            if distributed_job_config is not None:
                _apply_distribution(self.run_config, distributed_job_config)
            if docker_runtime_config is not None:
                if not isinstance(docker_runtime_config, DockerConfiguration):
                    raise UserErrorException(
                        "'docker_runtime_config' must be a 'DockerConfiguration' object, e.g. "
                        "DockerConfiguration(use_docker=True)."
                    )
                self.run_config.docker = docker_runtime_config
            elif environment is not None:
                # v1 backward compatibility: the deprecated env.docker settings become the run's docker config.
                self.run_config.docker = DockerConfiguration(
                    use_docker=environment.docker.enabled,
                    shm_size=environment.docker.shm_size or DockerConfiguration().shm_size,
                    shared_volumes=environment.docker.shared_volumes,
                    arguments=environment.docker.arguments,
                )
        if self.command and (self.script or self.arguments):
            raise UserErrorException(
                "ScriptRunConfig got both 'command' and 'script'/'arguments'; they are mutually exclusive. "
                "Either pass command=['python', 'train.py', '--lr', '0.1'], or script='train.py' with "
                "arguments=['--lr', 0.1]."
            )

    def _take_from_run_config(self, run_config: RunConfiguration, ignored: bool) -> None:
        # v1 warns through the root logger, so notebooks show "WARNING:root:..." lines; keep that.
        if ignored:
            logging.warning(
                "If 'run_config' is specified, the following parameters will be ignored: 'compute_target', "
                "'environment', 'distributed_job_config', 'max_run_duration_seconds', and "
                "'docker_runtime_config'."
            )
        for field, what in (("script", "a script file name"), ("arguments", "arguments"), ("command", "command")):
            mine, theirs = getattr(self, field), getattr(run_config, field)
            if theirs and mine:
                logging.warning(
                    f"If '{field}' has been provided here and {what} has been specified in 'run_config', "
                    f"'{field}' provided in ScriptRunConfig initialization will take precedence."
                )
            elif theirs:
                setattr(self, field, theirs)

    def _validate(self) -> None:
        """Check that the source directory exists and the script is a file inside it."""
        if self.source_directory is None:
            raise UserErrorException(
                "ScriptRunConfig needs a source_directory: the folder holding your training code, e.g. "
                "ScriptRunConfig(source_directory='.', script='train.py')."
            )
        root = Path(self.source_directory).expanduser().absolute()
        if not root.exists():
            raise UserErrorException(
                f"Source directory '{root}' does not exist. Pass the folder holding your training code as "
                f"source_directory (relative paths are resolved from '{os.getcwd()}')."
            )
        if not root.is_dir():
            raise UserErrorException(
                f"Source directory '{root}' is a file, not a directory. Pass the folder that contains it: "
                f"ScriptRunConfig(source_directory='{root.parent}', script='{root.name}')."
            )
        if not self.script:
            if not self.command:
                raise UserErrorException(
                    "Nothing to run: pass script='train.py' (a file in the source directory) or "
                    "command=['python', 'train.py']."
                )
            return
        _check_script(root, self.script)


def _check_script(root: Path, script: str) -> None:
    script_path = Path(script)
    if script_path.is_absolute():
        inside = _relative_inside(script_path, root)
        fix = (
            f"Use script='{inside}'."
            if inside
            else "Move it into the source directory, or pass its folder as source_directory."
        )
        raise UserErrorException(
            f"Script '{script}' must be a path relative to source directory '{root}', not an absolute path. {fix}"
        )
    target = root / script_path
    if _relative_inside(target, root) is None:
        raise UserErrorException(
            f"Script '{script}' resolves outside source directory '{root}'; only files inside the source "
            "directory are snapshotted and available to the run. Move the script into the source directory, "
            "or pass a parent folder as source_directory."
        )
    if target.is_file():
        return
    if target.is_dir():
        raise UserErrorException(
            f"Script '{script}' in source directory '{root}' is a directory, not a file. Pass the Python file "
            "to run, e.g. script='train.py'."
        )
    folder = target.parent if target.parent.is_dir() else root
    listed = sorted(entry.name for entry in folder.iterdir() if entry.is_file())
    shown = ", ".join(listed[:_LISTED_FILES]) if listed else "(none)"
    if len(listed) > _LISTED_FILES:
        shown += f", ... ({len(listed) - _LISTED_FILES} more)"
    where = "there" if folder == root else f"in '{folder}'"
    message = f"Script '{script}' not found in source directory '{root}'. Files {where}: {shown}"
    match = difflib.get_close_matches(script_path.as_posix(), _files_under(root), n=1, cutoff=0.6)
    if match:
        message += f" (did you mean '{match[0]}'?)"
    raise UserErrorException(message)


def _relative_inside(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` after resolving ``..`` and symlinks, or None if it lies outside."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None


def _files_under(root: Path) -> list[str]:
    """Relative paths of files under ``root`` (hidden folders skipped, bounded for huge trees)."""
    found: list[str] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        base = Path(folder).relative_to(root)
        found.extend((base / name).as_posix() for name in sorted(files))
        if len(found) >= _SCANNED_FILES:
            break
    return found


def _apply_distribution(
    run_config: RunConfiguration,
    config: MpiConfiguration | PyTorchConfiguration | TensorflowConfiguration,
) -> None:
    if isinstance(config, TensorflowConfiguration):
        run_config.node_count = config.worker_count
        run_config.tensorflow = config
        run_config.framework, run_config.communicator = "TensorFlow", "ParameterServer"
    elif isinstance(config, MpiConfiguration):
        run_config.node_count = config.node_count
        run_config.mpi = config
        run_config.framework, run_config.communicator = "Python", "IntelMpi"
    elif isinstance(config, PyTorchConfiguration):
        run_config.node_count = config.node_count
        run_config.pytorch = config
        run_config.framework, run_config.communicator = "PyTorch", config.communication_backend
    else:
        raise UserErrorException(
            "'distributed_job_config' must be a 'TensorflowConfiguration', 'MpiConfiguration', or "
            "'PyTorchConfiguration' object from jupyter_amltrain.core.runconfig."
        )


def get_run_config_from_script_run(script_run_config: ScriptRunConfig) -> RunConfiguration:
    """A deep copy of the run configuration with the ScriptRunConfig's script, arguments and command applied."""
    run_config = copy.deepcopy(script_run_config.run_config)
    if script_run_config.arguments:
        run_config.arguments = copy.deepcopy(script_run_config.arguments)
    if script_run_config.script:
        run_config.script = script_run_config.script
    if script_run_config.command:
        run_config.command = copy.deepcopy(script_run_config.command)
    return run_config
