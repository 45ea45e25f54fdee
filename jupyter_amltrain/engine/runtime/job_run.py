"""``Run`` as a job's script sees it: ``Run.get_context()`` and the logging calls of v1's run.

Runs inside job containers: standard library only, valid Python 3.6. Inside a job this is the ``Run`` behind
``from jupyter_amltrain.core import Run`` (the container's library holds only the runtime, see
``engine/runs/job_library.py``); on the host, ``core.run.Run.get_context()`` returns the same objects, so a script
behaves alike in a container, in a local process and in a notebook.
"""

import os
import time
from typing import Any, Dict, List, Mapping, Optional, Union

from jupyter_amltrain.engine.runtime.context import JobContext, OfflineContext

RUN_TYPE = "azureml.scriptrun"


class _ExperimentName:
    """What a job knows of its experiment: the name (v1 scripts print ``run.experiment.name``)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return "Experiment(Name: %s)" % self.name


class Run:
    """The run a script belongs to. ``Run.get_context()`` inside a job; v1's offline run anywhere else."""

    def __init__(self, context: Union[JobContext, OfflineContext], run_id: str, experiment: str):
        self._context = context
        self._run_id = run_id
        self._experiment = _ExperimentName(experiment)

    @classmethod
    def get_context(cls, allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any) -> "Run":
        context = JobContext.from_env()
        if context is not None:
            return cls(context, context.run_id, os.environ.get("AZUREML_ARM_PROJECT_NAME", ""))
        if not allow_offline:
            raise RuntimeError(
                "Run.get_context(allow_offline=False) was called outside a submitted run. Submit the script "
                "with Experiment.submit(), or allow an offline run.")
        return cls(OfflineContext(), "OfflineRun_%d" % int(time.time()), "offline")

    @property
    def offline(self) -> bool:
        return isinstance(self._context, OfflineContext)

    # -- identity ----------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._run_id

    @property
    def experiment(self) -> _ExperimentName:
        return self._experiment

    @property
    def type(self) -> Optional[str]:
        return None if self.offline else RUN_TYPE

    @property
    def status(self) -> str:
        return self.get_status()

    @property
    def parent(self) -> None:
        return None

    def get_status(self) -> str:
        return "Running"

    # -- metrics, tags, properties, files ----------------------------------------------------------------------
    def log(self, name: str, value: Any, description: str = "", step: Optional[int] = None) -> None:
        self._context.log(name, value, description, step)

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        self._context.log_list(name, value, description)

    def log_row(self, name: str, description: Optional[str] = None, **kwargs: Any) -> None:
        self._context.log_row(name, description, **kwargs)

    def log_table(self, name: str, value: Any, description: str = "") -> None:
        self._context.log_table(name, value, description)

    def log_image(self, name: str, path: Optional[str] = None, plot: Any = None, description: str = "") -> Any:
        return self._context.log_image(name, path=path, plot=plot, description=description)

    def tag(self, key: str, value: Any = None) -> None:
        self._context.tag(key, value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._context.set_tags(tags)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        self._context.add_properties(properties)

    def upload_file(self, name: str, path_or_stream: Any, datastore_name: Optional[str] = None) -> Any:
        return self._context.upload_file(name, path_or_stream)

    def upload_folder(self, name: str, path: str, datastore_name: Optional[str] = None) -> Any:
        return self._context.upload_folder(name, path)

    def get_metrics(self, name: Optional[str] = None, recursive: bool = False, run_type: Optional[str] = None,
                    populate: bool = False) -> Dict[str, Any]:
        # The job writes its metrics; the host reads them back (run.get_metrics() in the notebook).
        return {}

    def get_tags(self) -> Dict[str, Any]:
        return {}

    def get_file_names(self) -> List[str]:
        return []

    def flush(self, timeout_seconds: int = 300) -> None:
        self._context.flush(timeout_seconds)

    def complete(self, _set_status: bool = True) -> None:
        """v1 scripts often end with ``run.complete()``: the run's supervisor marks it Completed when the
        script exits, so there is nothing to do here but make sure every event is written."""
        self._context.flush()

    # -- printed protocol --------------------------------------------------------------------------------------
    def __str__(self) -> str:
        if self.offline:
            return "Run(Experiment: offline,\nId: %s,\nType: None,\nStatus: Running)" % self._run_id
        return "Run(Experiment: %s,\nId: %s,\nType: %s,\nStatus: Running)" % (
            self._experiment.name, self._run_id, RUN_TYPE)

    __repr__ = __str__
