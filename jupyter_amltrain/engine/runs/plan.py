"""What a supervisor needs to execute a run, written at submit time next to the run's files.

The plan holds no secret: a registry password reaches the supervisor through its stdin only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.agent.protocol import RunSettings
from jupyter_amltrain.engine.images.spec import ImageSpec, RegistrySpec

PYTHON_TOKEN = "{python}"  # replaced by the environment's interpreter when the command is launched
SHELL = "/bin/sh"  # what runs ScriptRunConfig(command="...") strings


@dataclass
class RunPlan:
    run_id: str
    experiment: str
    experiment_id: str
    workspace: dict[str, str]
    backend: str                      # "docker" | "process"
    image: dict[str, Any]             # ImageSpec fields
    command: list[str]                # argv, PYTHON_TOKEN for the interpreter; or [SHELL, "-c", cmd]
    environment_variables: dict[str, str] = field(default_factory=dict)
    shm_size: str = "2g"
    docker_arguments: list[str] = field(default_factory=list)
    max_run_duration_seconds: int | None = None
    gpus_wanted: int | None = None
    snapshot_id: str | None = None
    host_python: str | None = None    # user-managed local runs: the interpreter chosen at submit
    docker_host: str | None = None    # the submitter's DOCKER_HOST: the agent serves submitters of any engine
    settings: RunSettings = field(default_factory=lambda: RunSettings())  # the submitter's run-affecting settings

    def image_spec(self) -> ImageSpec:
        data = dict(self.image)
        data["registry"] = RegistrySpec(**(data.get("registry") or {}))
        for key in ("conda_channels", "conda_packages", "pip_packages", "pip_options"):
            data[key] = tuple(data.get(key) or ())
        return ImageSpec(**data)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunPlan:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(cls)}  # a plan written by an older version may hold retired fields
        return cls(**{key: value for key, value in data.items() if key in known})


def image_to_dict(spec: ImageSpec) -> dict[str, Any]:
    return asdict(spec)
