"""Turning a v1 ``ScriptRunConfig`` into an engine submission."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET
from jupyter_amltrain.engine.runs.plan import PYTHON_TOKEN, SHELL
from jupyter_amltrain.engine.runs.submit import SubmitRequest
from jupyter_amltrain.exceptions import UserErrorException

if TYPE_CHECKING:
    from jupyter_amltrain.core.runconfig import RunConfiguration
    from jupyter_amltrain.core.script_run_config import ScriptRunConfig


def _target_name(target: Any) -> str:
    if target is None:
        return LOCAL_TARGET
    if isinstance(target, str):
        return target
    name = getattr(target, "name", None)
    if not isinstance(name, str):
        raise UserErrorException(
            f"compute_target must be a ComputeTarget, its name, or 'local'; got {type(target).__name__}."
        )
    return name


def _command(run_config: RunConfiguration) -> list[str]:
    command = run_config.command
    if command:
        if isinstance(command, str):
            # A shell string: put the environment's interpreter first on PATH so `python x.py` means it, and
            # where the image has only python3, `python` still means the interpreter the run resolved to.
            fallback = f'command -v python >/dev/null 2>&1 || python() {{ "{PYTHON_TOKEN}" "$@"; }}'
            return [SHELL, "-c", f'PATH="$(dirname "{PYTHON_TOKEN}")":"$PATH"; {fallback}; {command}']
        tokens = [str(token) for token in command]
        if tokens and tokens[0] in ("python", "python3"):
            tokens[0] = PYTHON_TOKEN
        return tokens
    script = run_config.script
    if not script:
        raise UserErrorException(
            "ScriptRunConfig has neither script nor command. Pass script='train.py' (a file in source_directory) "
            "or command=['python', 'train.py']."
        )
    arguments = run_config.arguments or []
    return [PYTHON_TOKEN, str(script), *(str(arg) for arg in arguments)]


def build_request(experiment_name: str, config: ScriptRunConfig, tags: dict[str, Any] | None) -> SubmitRequest:
    from jupyter_amltrain.core.environment import image_spec
    from jupyter_amltrain.core.script_run_config import get_run_config_from_script_run

    config._validate()
    run_config = get_run_config_from_script_run(config)  # the constructor's script/arguments/command applied
    environment = run_config.environment
    target = _target_name(getattr(run_config, "target", None))
    docker_config = getattr(run_config, "docker", None)
    use_docker = bool(getattr(docker_config, "use_docker", None) or environment.docker.enabled)
    if target != LOCAL_TARGET:
        use_docker = True  # compute clusters always run jobs in containers, as in v1
    image = image_spec(environment)
    if not use_docker and environment.docker.base_dockerfile and target == LOCAL_TARGET:
        raise UserErrorException(
            "The environment defines a Dockerfile but the run is set to run without Docker. Set "
            "environment.docker.enabled = True (or run_config.docker = DockerConfiguration(use_docker=True))."
        )
    host_python = None
    if not use_docker and image.user_managed:
        interpreter = environment.python.interpreter_path or "python"
        # "python" means the interpreter of this notebook: the one whose packages the user already has.
        host_python = sys.executable if interpreter in ("python", "python3") else interpreter
        if not Path(host_python).exists():
            raise UserErrorException(
                f"python.interpreter_path {interpreter!r} does not exist on this machine. Point it at a Python "
                "executable, or set python.user_managed_dependencies = False to let jupyter-amltrain build one."
            )
    variables = dict(environment.environment_variables or {})
    variables.update(getattr(run_config, "environment_variables", None) or {})
    shm_size = getattr(docker_config, "shm_size", None) or environment.docker.shm_size or "2g"
    arguments = list(getattr(docker_config, "arguments", None) or environment.docker.arguments or [])
    definition = run_config._serialize_to_dict()
    definition["target"] = target
    return SubmitRequest(
        experiment=experiment_name,
        source_dir=Path(config.source_directory or "."),
        command=_command(run_config),
        image=image,
        use_docker=use_docker,
        target=target,
        environment_variables={str(k): str(v) for k, v in variables.items()},
        shm_size=str(shm_size),
        docker_arguments=[str(a) for a in arguments],
        max_run_duration_seconds=getattr(run_config, "max_run_duration_seconds", None),
        definition=definition,
        tags=dict(tags or {}),
        registry_password=environment._registry_password(),
        host_python=host_python,
    )
