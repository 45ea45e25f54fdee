"""The model registry: model files and folders registered under a name, with versions 1, 2, ... per name.

Each version is a row of the workspace store's ``models`` table and a folder ``models/<name>/<version>/`` holding
the file or folder registered. v1's ``Model`` (core/model.py) and every other face go through these functions.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.store.db import dumps, loads
from jupyter_amltrain.engine.store.layout import RunLayout, check_safe_id
from jupyter_amltrain.engine.workspace import LocalWorkspace
from jupyter_amltrain.exceptions import ModelPathNotFoundException


@dataclass(frozen=True)
class ModelRecord:
    name: str
    version: int
    path: Path                     # the registered file or folder
    run_id: str | None = None      # the run it was registered from, if any
    description: str | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


def _record(ws: LocalWorkspace, row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(name=row["name"], version=int(row["version"]), path=ws.root / row["path"],
                       run_id=row["run_id"], description=row["description"], tags=loads(row["tags"], {}),
                       properties=loads(row["properties"], {}), created=row["created"])


def get_model(ws: LocalWorkspace, name: str, *, version: int | None = None,
              run_id: str | None = None) -> ModelRecord | None:
    """Version ``version`` of model ``name`` (default: its latest), of run ``run_id`` if given; None if none."""
    sql = "SELECT * FROM models WHERE name = ?"
    params: list[Any] = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(int(version))
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    row = ws.store.query_one(sql + " ORDER BY version DESC LIMIT 1", tuple(params))
    return None if row is None else _record(ws, row)


def list_models(ws: LocalWorkspace, *, name: str | None = None, run_id: str | None = None,
                latest: bool = False) -> list[ModelRecord]:
    """The registered models by name, newest version first; ``latest``: only the newest of each name."""
    sql, params = "SELECT * FROM models", []
    where = []
    if name:
        where.append("name = ?")
        params.append(name)
    if run_id:
        where.append("run_id = ?")
        params.append(run_id)
    if where:
        sql += " WHERE " + " AND ".join(where)
    models: list[ModelRecord] = []
    seen: set[str] = set()
    for row in ws.store.query(sql + " ORDER BY name, version DESC", tuple(params)):
        if latest and row["name"] in seen:
            continue
        seen.add(row["name"])
        models.append(_record(ws, row))
    return models


def register_model(ws: LocalWorkspace, name: str, place: Callable[[Path], str], *, run_id: str | None = None,
                   tags: dict[str, Any] | None = None, properties: dict[str, Any] | None = None,
                   description: str | None = None) -> ModelRecord:
    """Register the next version of model ``name``. ``place(staging)`` copies the model's file or folder into
    the empty folder ``staging`` and returns its name there; the folder becomes the version's at once, in the
    transaction that numbers it, so two registrations never share a version."""
    check_safe_id("Model name", name)
    staging = ws.layout.models / f".staging-{os.getpid()}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        top = place(staging)
        with ws.store.write() as db:
            version = db.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?",
                                 (name,)).fetchone()[0]
            final = ws.layout.model_dir(name, version)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging, final)
            db.execute(
                "INSERT INTO models(name, version, run_id, path, description, tags, properties, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (name, version, run_id, str((final / top).relative_to(ws.root)), description,
                 dumps(tags or {}), dumps(properties or {}), time.time()),
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = get_model(ws, name, version=version)
    assert found is not None  # just written
    return found


def register_model_files(ws: LocalWorkspace, name: str, model_path: str | Path, **fields: Any) -> ModelRecord:
    """Register the user's own file or folder ``model_path`` (copied as it is); ``fields`` as
    ``register_model``."""
    source = Path(model_path)
    if not source.exists():
        raise ModelPathNotFoundException(
            f"Could not locate the provided model_path {model_path}. Pass an existing file or folder."
        )

    def place(staging: Path) -> str:
        if source.is_dir():
            shutil.copytree(source, staging / source.name)
        else:
            shutil.copy2(source, staging / source.name)
        return source.name

    return register_model(ws, name, place, **fields)


def register_run_model(ws: LocalWorkspace, run_id: str, name: str, model_path: str,
                       **fields: Any) -> ModelRecord:
    """Register a file or folder of run ``run_id`` (``model_path``, relative to the run's folder, as v1's
    ``outputs/model.pkl``). The run's folder is the job's: it is read through engine.runs.artifacts, so links
    and special files the job left are never followed or copied. ``fields`` as ``register_model``."""
    from jupyter_amltrain.engine.runs.artifacts import (
        RunFileMissing,
        clean_name,
        copy_run_file,
        copy_run_folder,
        find_run_file,
        list_run_files,
    )

    clean = clean_name(model_path).rstrip("/")
    layout = RunLayout(ws.layout.run_dir(run_id))
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

    return register_model(ws, name, place, run_id=run_id, **fields)


def delete_model(ws: LocalWorkspace, name: str, version: int) -> None:
    """Remove version ``version`` of model ``name``: its row, then its folder."""
    with ws.store.write() as db:
        db.execute("DELETE FROM models WHERE name = ? AND version = ?", (name, int(version)))
    shutil.rmtree(ws.layout.model_dir(name, version), ignore_errors=True)
