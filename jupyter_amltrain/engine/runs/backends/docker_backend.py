"""Runs in local Docker containers.

The container is named after the run and labelled with it, so a restarted supervisor finds it again.
stdout and stderr go to Docker's log, which outlives any supervisor: the supervisor copies them into
``user_logs/std_log.txt`` as they arrive, and a recovering one copies the whole log again.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import threading
from collections.abc import Callable
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest

from jupyter_amltrain.engine.compute.gpus import detect_gpus
from jupyter_amltrain.engine.runs.backends.base import PACKAGE_DIR, Outcome, job_environment
from jupyter_amltrain.engine.runs.plan import PYTHON_TOKEN, RunPlan
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.exceptions import DockerEngineException

WORKDIR = "/amltrain/wd"
TRACKING = "/amltrain/tracking"
UPLOADS = "/amltrain/uploads"  # the runtime puts uploads beside its tracking folder
LIB = "/amltrain/lib"


def container_name(run_id: str) -> str:
    return f"amltrain-{run_id}"


def has_nvidia_runtime(client: docker.DockerClient) -> bool:
    runtimes = client.info().get("Runtimes") or {}
    return "nvidia" in runtimes or any("nvidia" in str(v) for v in runtimes.values())


def _limits_from_arguments(arguments: list[str], warn: Callable[[str], None]) -> dict[str, Any]:
    """The subset of v1 ``DockerConfiguration.arguments`` (docker run flags) that the engine API can honour."""
    options: dict[str, Any] = {}
    flags = {"--memory": "mem_limit", "-m": "mem_limit", "--memory-swap": "memswap_limit",
             "--cpus": "nano_cpus", "--shm-size": "shm_size", "--ipc": "ipc_mode"}
    tokens = list(arguments)
    while tokens:
        token = tokens.pop(0)
        key, _, value = token.partition("=")
        if key in flags:
            if not value and tokens:
                value = tokens.pop(0)
            option = flags[key]
            options[option] = int(float(value) * 1e9) if option == "nano_cpus" else value
        else:
            warn(f"docker argument {token!r} is not supported locally and was ignored")
    return options


class DockerExecution:
    def __init__(self, client: docker.DockerClient, plan: RunPlan, layout: RunLayout,
                 control: Callable[[str], None]):
        self.client = client
        self.plan = plan
        self.layout = layout
        self.control = control
        self._follower: threading.Thread | None = None

    def find(self) -> Container | None:
        try:
            return self.client.containers.get(container_name(self.plan.run_id))
        except NotFound:
            return None

    def start(self, image: str, python: str, gpus: list[int]) -> Container:
        stale = self.find()
        if stale is not None:  # a supervisor died between create and start: begin afresh
            stale.remove(force=True)
        env = job_environment(self.plan, tracking_dir=TRACKING, workdir=WORKDIR, pythonpath=LIB)
        if self.plan.run_as:  # an arbitrary uid has no home in the image; tools (pip, matplotlib) want one
            env.setdefault("HOME", "/tmp")
        device_requests = []
        if gpus and has_nvidia_runtime(self.client):
            uuids = {gpu.index: gpu.uuid for gpu in detect_gpus()}
            device_requests.append(DeviceRequest(device_ids=[uuids.get(i, str(i)) for i in gpus],
                                                 capabilities=[["gpu"]]))
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(len(gpus)))
        elif gpus:
            self.control(f"GPUs {gpus} booked, but Docker has no NVIDIA runtime: the container sees no GPU.")
        command = [token.replace(PYTHON_TOKEN, python) for token in self.plan.command]
        options = _limits_from_arguments(self.plan.docker_arguments, self.control)
        options.setdefault("shm_size", self.plan.shm_size or "2g")
        self.control(f"Starting Linux command : {shlex.join(command)}")
        container = self.client.containers.create(
            image,
            command=command,
            name=container_name(self.plan.run_id),
            working_dir=WORKDIR,
            environment=env,
            user=self.plan.run_as,
            volumes={
                str(self.layout.wd): {"bind": WORKDIR, "mode": "rw"},
                str(self.layout.tracking): {"bind": TRACKING, "mode": "rw"},
                str(self.layout.uploads): {"bind": UPLOADS, "mode": "rw"},
                str(PACKAGE_DIR): {"bind": f"{LIB}/jupyter_amltrain", "mode": "ro"},
            },
            labels={"amltrain.run_id": self.plan.run_id, "amltrain.experiment": self.plan.experiment},
            device_requests=device_requests or None,
            detach=True,
            **options,
        )
        container.start()
        return container

    def follow_logs(self, container: Container, *, from_start: bool) -> None:
        """Copy the container's output into std_log.txt from a thread, until the container stops."""
        mode = "wb" if from_start else "ab"

        def pump() -> None:
            try:
                with open(self.layout.std_log, mode) as sink:
                    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                        sink.write(chunk)
                        sink.flush()
            except (APIError, DockerException, OSError) as exc:  # daemon went away: the watcher reports it
                self.control(f"log stream ended: {exc}")

        self._follower = threading.Thread(target=pump, name="amltrain-logs", daemon=True)
        self._follower.start()

    def poll(self, container: Container) -> Outcome | None:
        """None while the container runs; how it ended otherwise."""
        try:
            container.reload()
        except NotFound:
            return Outcome(exit_code=None, lost="the container disappeared (removed outside jupyter-amltrain)")
        except (APIError, DockerException) as exc:
            raise DockerEngineException(f"Docker engine stopped answering: {exc}") from exc
        state = container.attrs.get("State", {})
        if state.get("Status") in ("created", "running", "restarting", "paused"):
            return None
        if self._follower is not None:
            self._follower.join(timeout=10)  # let the last lines land before anyone reads the log
        tail = b""
        with contextlib.suppress(APIError, DockerException):
            tail = container.logs(stdout=False, stderr=True, tail=50)
        return Outcome(exit_code=state.get("ExitCode"), oom_killed=bool(state.get("OOMKilled")),
                       stderr_tail=tail.decode("utf-8", "replace"))

    def stop(self, container: Container, grace: int = 10) -> None:
        with contextlib.suppress(NotFound):
            container.stop(timeout=grace)

    def remove(self, container: Container) -> None:
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)


def current_user() -> str | None:
    """Run containers as the submitting user so outputs/ and logs/ belong to them, not root."""
    uid, gid = os.getuid(), os.getgid()
    return None if uid == 0 else f"{uid}:{gid}"
