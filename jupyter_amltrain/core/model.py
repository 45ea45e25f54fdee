"""``Model``: registered model files with a name and increasing versions (v1 ``azureml.core.model``), kept by the
engine's model registry (engine/models.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.engine import models
from jupyter_amltrain.exceptions import ModelNotFoundException, UserErrorException

if TYPE_CHECKING:
    from jupyter_amltrain.core.run import Run
    from jupyter_amltrain.core.workspace import Workspace


class Model:
    def __init__(self, workspace: Workspace, name: str | None = None, id: str | None = None,
                 tags: Any = None, properties: Any = None, version: int | None = None, run_id: str | None = None,
                 model_framework: str | None = None, expand: bool = True, **kwargs: Any):
        if id and not name:
            name, _, version_text = id.partition(":")
            version = int(version_text) if version_text else version
        if not name:
            raise UserErrorException("Model needs a name (or an id 'name:version').")
        record = models.get_model(engine_workspace(workspace), name, version=version, run_id=run_id)
        if record is None:
            raise ModelNotFoundException(
                f"ModelNotFound: Model with name {name}" + (f" and version {version}" if version else "")
                + " not found in provided workspace. Register it with Model.register(ws, model_path, model_name) or "
                "run.register_model(model_name, model_path)."
            )
        self._load(workspace, record)

    def _load(self, workspace: Workspace, record: models.ModelRecord) -> None:
        self.workspace = workspace
        self.name: str = record.name
        self.version: int = record.version
        self.run_id: str | None = record.run_id
        self.description: str | None = record.description
        self.tags: dict[str, Any] = record.tags
        self.properties: dict[str, Any] = record.properties
        self.created_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        self._path = record.path
        self.model_framework = self.properties.get("model_framework")
        self.model_framework_version = self.properties.get("model_framework_version")

    @staticmethod
    def _of(workspace: Workspace, record: models.ModelRecord) -> Model:
        model = Model.__new__(Model)
        model._load(workspace, record)
        return model

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def url(self) -> str:
        return self._path.as_uri()

    @staticmethod
    def register(workspace: Workspace, model_path: str, model_name: str, tags: dict[str, Any] | None = None,
                 properties: dict[str, Any] | None = None, description: str | None = None,
                 datasets: Any = None, model_framework: str | None = None,
                 model_framework_version: str | None = None, child_paths: Any = None,
                 sample_input_dataset: Any = None, sample_output_dataset: Any = None,
                 resource_configuration: Any = None, **kwargs: Any) -> Model:
        record = models.register_model_files(
            engine_workspace(workspace), model_name, model_path, tags=tags, description=description,
            properties=_properties(properties, model_framework, model_framework_version))
        return Model._of(workspace, record)

    @staticmethod
    def _register_from_run(run: Run, model_name: str, model_path: str, **kwargs: Any) -> Model:
        """``run.register_model``: a file or folder of the run, copied into the model registry."""
        workspace = run.experiment.workspace
        record = models.register_run_model(
            engine_workspace(workspace), run.id, model_name, model_path, tags=kwargs.get("tags"),
            description=kwargs.get("description"),
            properties=_properties(kwargs.get("properties"), kwargs.get("model_framework"),
                                   kwargs.get("model_framework_version")))
        return Model._of(workspace, record)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, tags: Any = None, properties: Any = None,
             run_id: str | None = None, latest: bool = False, **kwargs: Any) -> list[Model]:
        return [Model._of(workspace, record)
                for record in models.list_models(engine_workspace(workspace), name=name, run_id=run_id,
                                                 latest=latest)]

    def download(self, target_dir: str = ".", exist_ok: bool = False, exists_ok: bool | None = None) -> str:
        target = Path(target_dir) / self._path.name
        if target.exists() and not (exist_ok or exists_ok):
            raise UserErrorException(f"File {target} already exists. Pass exist_ok=True to overwrite it.")
        if self._path.is_dir():
            shutil.copytree(self._path, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self._path, target)
        return str(target)

    def get_model_path(self) -> str:
        return str(self._path)

    def delete(self) -> None:
        models.delete_model(engine_workspace(self.workspace), self.name, self.version)

    def serialize(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version, "runId": self.run_id, "url": self.url,
                "description": self.description, "tags": self.tags, "properties": self.properties,
                "createdTime": self.created_time}

    def __repr__(self) -> str:
        return (f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, version={self.version}, "
                f"tags={self.tags}, properties={self.properties})")


def _properties(properties: Any, framework: str | None, framework_version: str | None) -> dict[str, str]:
    """v1 keeps a model's framework and its version among its properties; every value is a string."""
    props = {str(k): str(v) for k, v in (properties or {}).items()}
    if framework:
        props["model_framework"] = framework
    if framework_version:
        props["model_framework_version"] = framework_version
    return props
