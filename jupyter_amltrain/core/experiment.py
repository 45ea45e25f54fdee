"""``Experiment``: a named group of runs in a workspace (v1 ``azureml.core.experiment``)."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.engine.runs import records

if TYPE_CHECKING:
    from jupyter_amltrain.core.run import Run
    from jupyter_amltrain.core.workspace import Workspace


class Experiment:
    def __init__(self, workspace: Workspace, name: str, _skip_name_validation: bool = False, _id: str | None = None,
                 _archived_time: Any = None, _create_in_cloud: bool = True, _experiment_dto: Any = None,
                 **kwargs: Any):
        if not _skip_name_validation:
            records.check_experiment_name(name)
        self._workspace = workspace
        self._name = name
        self._id = records.ensure_experiment(engine_workspace(workspace).store, name)

    @property
    def workspace(self) -> Workspace:
        return self._workspace

    @property
    def name(self) -> str:
        return self._name

    @property
    def id(self) -> str:
        return self._id

    @property
    def archived_time(self) -> None:
        return None

    def submit(self, config: Any, tags: dict[str, Any] | None = None, **kwargs: Any) -> Run:
        from jupyter_amltrain.core.script_run import ScriptRun
        from jupyter_amltrain.core.script_run_config import ScriptRunConfig
        from jupyter_amltrain.core.submission import build_request
        from jupyter_amltrain.engine.compute.admission import check_gpus_wanted
        from jupyter_amltrain.engine.runs.submit import submit
        from jupyter_amltrain.exceptions import UserErrorException

        if not isinstance(config, ScriptRunConfig):
            raise UserErrorException(
                f"Experiment.submit takes a ScriptRunConfig; got {type(config).__name__}. Wrap your script in "
                "ScriptRunConfig(source_directory=..., script=..., environment=..., compute_target=...)."
            )
        request = build_request(self._name, config, tags)
        # Extension: gpus=N asks for N GPUs instead of the compute's GPUs per node (0: the CPU only).
        request.gpus_wanted = check_gpus_wanted(kwargs.get("gpus"))
        record, snapshot = submit(engine_workspace(self._workspace), request)
        for warning in snapshot.warnings:
            print(f"Warning: {warning}")
        run = ScriptRun(self, record.run_id)
        if kwargs.get("show_output"):
            run.wait_for_completion(show_output=True)
        return run

    def get_runs(self, type: str | None = None, tags: Any = None, properties: Any = None,
                 include_children: bool = False) -> Iterator[Run]:
        from jupyter_amltrain.core.script_run import ScriptRun

        for record in records.list_runs(engine_workspace(self._workspace).store, self._name):
            if tags and not _matches(record.tags, tags):
                continue
            if properties and not _matches(record.properties, properties):
                continue
            yield ScriptRun(self, record.run_id)

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None, view_type: str = "ActiveOnly",
             tags: Any = None) -> list[Experiment]:
        return [Experiment(workspace, name, _skip_name_validation=True)
                for name in records.experiment_names(engine_workspace(workspace).store)
                if experiment_name in (None, name)]

    def __repr__(self) -> str:
        return f"Experiment(Name: {self._name},\nWorkspace: {self._workspace.name})"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("Name", "Workspace", "Report Page"))
        cells = [html.escape(self._name), html.escape(self._workspace.name),
                 f'<a href="{engine_workspace(self._workspace).root.as_uri()}">Link to workspace folder</a>']
        return f"<table><tr>{head}</tr><tr>{''.join(f'<td>{c}</td>' for c in cells)}</tr></table>"


def _matches(values: dict[str, Any], wanted: Any) -> bool:
    if isinstance(wanted, str):
        return wanted in values
    return all(str(values.get(k)) == str(v) for k, v in dict(wanted).items())
