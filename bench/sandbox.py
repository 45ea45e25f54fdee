"""A throwaway workspace per benchmark, and removal of everything Docker-side the benchmarks create.

Each benchmark gets its own ``AMLTRAIN_HOME`` in a temporary folder, so figures never depend on what an
earlier benchmark (or the user's own store) left behind. Containers and images the benchmarks create
directly carry the label ``amltrain.bench=<session>`` and are removed by that label; containers of runs are
removed by their supervisors, and any a crash left behind are removed by their run ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import docker.errors

if TYPE_CHECKING:
    from jupyter_amltrain.core import Environment, Workspace

BASE_IMAGE = "amltrain/base:bookworm"
BENCH_LABEL = "amltrain.bench"
SESSION = secrets.token_hex(4)  # one per benchmark process: cleanup touches only what this process made
SETTLE_SECONDS = 60.0


@dataclass
class Sandbox:
    root: Path
    project: Path
    ws: Workspace

    def job(self, folder: str, files: dict[str, str]) -> Path:
        """A source folder under the project holding ``files`` (name -> text)."""
        path = self.project / folder
        path.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (path / name).write_text(text)
        return path


def container_environment(name: str = "bench-base") -> Environment:
    """The cached environment of the benchmarks: the base image as it is, Python of the image (no build)."""
    from jupyter_amltrain.core import Environment

    env = Environment(name)
    env.docker.base_image = BASE_IMAGE
    env.python.user_managed_dependencies = True
    return env


@contextmanager
def isolated_workspace(tag: str) -> Iterator[Sandbox]:
    """A fresh store home and project folder (the working directory), removed afterwards with its runs."""
    from jupyter_amltrain.core import Workspace
    from jupyter_amltrain.engine.workspace import forget_open_workspaces

    root = Path(tempfile.mkdtemp(prefix=f"amltrain-bench-{tag}-"))
    previous_home, previous_cwd = os.environ.get("AMLTRAIN_HOME"), os.getcwd()
    project = root / "project"
    (project / ".azureml").mkdir(parents=True)
    (project / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "bench", "resource_group": "bench", "workspace_name": f"bench-{tag}"}))
    os.environ["AMLTRAIN_HOME"] = str(root / "home")
    forget_open_workspaces()
    os.chdir(project)
    ws = None
    try:
        ws = Workspace.from_config()
        yield Sandbox(root, project, ws)
    finally:
        if ws is not None:
            _settle_runs(ws)
        from jupyter_amltrain.engine.agent import stop_agent

        stop_agent(root / "home")  # this store home's agent: nothing of the benchmark keeps running
        os.chdir(previous_cwd)
        if previous_home is None:
            os.environ.pop("AMLTRAIN_HOME", None)
        else:
            os.environ["AMLTRAIN_HOME"] = previous_home
        forget_open_workspaces()
        shutil.rmtree(root, ignore_errors=True)


def _settle_runs(ws: Workspace) -> None:
    """Cancel what still runs and wait for the supervisors to finish, so nothing writes into a removed folder."""
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.runs import records
    from jupyter_amltrain.engine.runs.statuses import TERMINAL, sql_list

    store = engine_workspace(ws).store
    run_ids = [row["run_id"] for row in store.query("SELECT run_id FROM runs")]
    for run_id in run_ids:
        record = records.get_run(store, run_id)
        if record is not None and not record.terminal:
            records.request_cancel(store, run_id)
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        live = store.query_one(f"SELECT COUNT(*) FROM runs WHERE status NOT IN {sql_list(TERMINAL)}")
        if live is None or live[0] == 0:
            break
        time.sleep(0.2)
    _remove_run_containers(run_ids)


def _remove_run_containers(run_ids: list[str]) -> None:
    from jupyter_amltrain.engine.runs.backends.docker_backend import container_name

    client = docker_client_or_none()
    if client is None:
        return
    for run_id in run_ids:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.containers.get(container_name(run_id)).remove(force=True)


def docker_client_or_none() -> docker.DockerClient | None:
    try:
        client = docker.from_env()
        client.ping()
        return client
    except Exception:
        return None


def remove_labelled() -> None:
    """Containers and images this process labelled ``amltrain.bench=<session>``."""
    client = docker_client_or_none()
    if client is None:
        return
    selector = {"label": f"{BENCH_LABEL}={SESSION}"}
    for container in client.containers.list(all=True, filters=selector):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    # Children before parents: an image labelled here may be the parent of another labelled one.
    images = client.images.list(filters=selector)
    for _ in range(3):
        left = []
        for image in images:
            try:
                client.images.remove(image.id, force=True)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError:
                left.append(image)
        if not left:
            break
        images = left
