"""v1 ``azureml.core``: the same names, loaded on first use.

Loading lazily keeps ``from jupyter_amltrain.core import Run`` inside a job down to the standard library;
the rest (Docker SDK, YAML, the store) is imported only where it is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from jupyter_amltrain import VERSION

_EXPORTS = {
    "Workspace": "jupyter_amltrain.core.workspace",
    "Experiment": "jupyter_amltrain.core.experiment",
    "Environment": "jupyter_amltrain.core.environment",
    "ScriptRunConfig": "jupyter_amltrain.core.script_run_config",
    "RunConfiguration": "jupyter_amltrain.core.runconfig",
    "Run": "jupyter_amltrain.core.run",
    "ScriptRun": "jupyter_amltrain.core.script_run",
    "Model": "jupyter_amltrain.core.model",
    "ComputeTarget": "jupyter_amltrain.core.compute",
    "ContainerRegistry": "jupyter_amltrain.core.container_registry",
}
_SUBMODULES = {
    "workspace", "experiment", "environment", "conda_dependencies", "runconfig", "script_run_config", "run",
    "script_run", "model", "compute", "compute_target", "container_registry",
}

__all__ = ["VERSION", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # `import jupyter_amltrain.core` then `jupyter_amltrain.core.runconfig.X`
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(__all__) | _SUBMODULES)
