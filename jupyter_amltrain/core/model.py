"""``Model``: registered model files with a name and increasing versions (v1 ``azureml.core.model``)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_amltrain.engine.store.db import dumps, loads
from jupyter_amltrain.engine.store.layout import check_safe_id
from jupyter_amltrain.exceptions import ModelNotFoundException, ModelPathNotFoundException, UserErrorException

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
        sql = "SELECT * FROM models WHERE name = ?"
        params: list[Any] = [name]
        if version is not None:
            sql += " AND version = ?"
            params.append(int(version))
        if run_id is not None:
            sql += " AND run_id = ?"
            params.append(run_id)
        row = workspace._local.store.query_one(sql + " ORDER BY version DESC LIMIT 1", tuple(params))
        if row is None:
            raise ModelNotFoundException(
                f"ModelNotFound: Model with name {name}" + (f" and version {version}" if version else "")
                + " not found in provided workspace. Register it with Model.register(ws, model_path, model_name) or "
                "run.register_model(model_name, model_path)."
            )
        self._load(workspace, row)

    def _load(self, workspace: Workspace, row: Any) -> None:
        self.workspace = workspace
        self.name: str = row["name"]
        self.version: int = row["version"]
        self.run_id: str | None = row["run_id"]
        self.description: str | None = row["description"]
        self.tags: dict[str, Any] = loads(row["tags"], {})
        self.properties: dict[str, Any] = loads(row["properties"], {})
        self.created_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["created"]))
        self._path = workspace._local.root / row["path"]
        self.model_framework = self.properties.get("model_framework")
        self.model_framework_version = self.properties.get("model_framework_version")

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
        source = Path(model_path)
        if not source.exists():
            raise ModelPathNotFoundException(
                f"Could not locate the provided model_path {model_path}. Pass an existing file or folder."
            )
        return Model._store(workspace, model_name, lambda staging: _copy_local(source, staging), None, tags,
                            properties, description, model_framework, model_framework_version)

    @staticmethod
    def _register_from_run(run: Run, model_name: str, model_path: str, **kwargs: Any) -> Model:
        """Copy a file or folder of the run into the model store. The run's folder is the job's: files are read
        through engine.runs.artifacts (links and special files the job left are never followed or copied)."""
        from jupyter_amltrain.engine.runs.artifacts import (
            RunFileMissing,
            copy_run_file,
            copy_run_folder,
            find_run_file,
            list_run_files,
        )

        clean = model_path.replace("\\", "/")
        while clean.startswith("./"):
            clean = clean[2:]
        clean = clean.rstrip("/")
        layout = run._layout()
        try:
            source = find_run_file(layout, clean)  # refuses a link or special file, with the reason
        except RunFileMissing:
            source = None

        def place(staging: Path) -> str:
            top = clean.rsplit("/", 1)[-1]
            if source is not None:
                copy_run_file(source, staging / top)
            elif copy_run_folder(layout, clean, staging / top) == 0:
                known = list_run_files(layout, limit=20, driver_alias=True)
                raise ModelPathNotFoundException(
                    f"Could not locate the provided model_path {model_path} in the set of files uploaded to the "
                    f"run: {known.names}. See https://aka.ms/run-logging for more details."
                )
            return top

        return Model._store(run.experiment.workspace, model_name, place, run.id, kwargs.get("tags"),
                            kwargs.get("properties"), kwargs.get("description"), kwargs.get("model_framework"),
                            kwargs.get("model_framework_version"))

    @staticmethod
    def _store(workspace: Workspace, name: str, place: Callable[[Path], str], run_id: str | None, tags: Any,
               properties: Any, description: str | None, framework: str | None,
               framework_version: str | None) -> Model:
        """``place(staging)`` copies the model's file or folder into ``staging`` and returns its name there."""
        check_safe_id("Model name", name)
        local = workspace._local
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        if framework:
            props["model_framework"] = framework
        if framework_version:
            props["model_framework_version"] = framework_version
        staging = local.layout.models / f".staging-{os.getpid()}-{time.time_ns()}"
        staging.mkdir(parents=True)
        try:
            top = place(staging)
            with local.store.write() as db:
                version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?",
                                     (name,)).fetchone()[0]
                final = local.layout.model_dir(name, version)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging, final)
                db.execute(
                    "INSERT INTO models(name, version, run_id, path, description, tags, properties, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, version, run_id, str((final / top).relative_to(local.root)), description,
                     dumps(tags or {}), dumps(props), time.time()),
                )
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Model(workspace, name, version=version)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, tags: Any = None, properties: Any = None,
             run_id: str | None = None, latest: bool = False, **kwargs: Any) -> list[Model]:
        rows = workspace._local.store.query("SELECT * FROM models ORDER BY name, version DESC")
        models = []
        seen: set[str] = set()
        for row in rows:
            if (name and row["name"] != name) or (run_id and row["run_id"] != run_id):
                continue
            if latest and row["name"] in seen:
                continue
            seen.add(row["name"])
            model = Model.__new__(Model)
            model._load(workspace, row)
            models.append(model)
        return models

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
        with self.workspace._local.store.write() as db:
            db.execute("DELETE FROM models WHERE name = ? AND version = ?", (self.name, self.version))
        shutil.rmtree(self._path.parent, ignore_errors=True)

    def serialize(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "version": self.version, "runId": self.run_id, "url": self.url,
                "description": self.description, "tags": self.tags, "properties": self.properties,
                "createdTime": self.created_time}

    def __repr__(self) -> str:
        return (f"Model(workspace={self.workspace!r}, name={self.name}, id={self.id}, version={self.version}, "
                f"tags={self.tags}, properties={self.properties})")


def _copy_local(source: Path, staging: Path) -> str:
    """A model the user registers from their own files (Model.register): copied as given."""
    if source.is_dir():
        shutil.copytree(source, staging / source.name)
    else:
        shutil.copy2(source, staging / source.name)
    return source.name
