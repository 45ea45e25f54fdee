"""Runs in local Docker containers.

The container is named after the run and labelled with it, so a restarted supervisor finds it again.
stdout and stderr go to Docker's log, which outlives any supervisor: the supervisor copies them into
``user_logs/std_log.txt`` as they arrive, and a recovering one copies the whole log again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest

from jupyter_amltrain.engine.compute.admission import NVIDIA_FIX
from jupyter_amltrain.engine.compute.gpus import GpuInventory
from jupyter_amltrain.engine.compute.nvidia_docker import nvidia_support
from jupyter_amltrain.engine.images.probe import ImageFacts
from jupyter_amltrain.engine.runs.backends.base import Outcome, gpu_environment, job_environment
from jupyter_amltrain.engine.runs.job_library import job_library
from jupyter_amltrain.engine.runs.ownership import container_identity, hand_run_folders
from jupyter_amltrain.engine.runs.plan import PYTHON_TOKEN, SHELL, RunPlan
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.exceptions import DockerEngineException

WORKDIR = "/amltrain/wd"
TRACKING = "/amltrain/tracking"
UPLOADS = "/amltrain/uploads"  # the runtime puts uploads beside its tracking folder
LIB = "/amltrain/lib"
RECONNECT_SECONDS = 120.0  # how long a lost Docker engine is waited for before the run is declared lost
SHUTDOWN_WATCH_SECONDS = 10.0  # after an unexplained kill: how long to watch for the daemon going down
# What a call to a Docker engine that is restarting raises: docker-py's errors, or the transport's own.
ENGINE_ERRORS = (APIError, DockerException, requests.exceptions.RequestException, OSError)


def container_name(run_id: str) -> str:
    return f"amltrain-{run_id}"


def has_nvidia_runtime(client: docker.DockerClient) -> bool:
    return nvidia_support(client) is not None


def _limits_from_arguments(arguments: list[str], warn: Callable[[str], None]) -> dict[str, Any]:
    """The subset of v1 ``DockerConfiguration.arguments`` (docker run flags) that the engine API can honour."""
    options: dict[str, Any] = {}
    flags = {"--memory": "mem_limit", "-m": "mem_limit", "--memory-swap": "memswap_limit",
             "--cpus": "nano_cpus", "--shm-size": "shm_size", "--ipc": "ipc_mode",
             "--user": "user", "-u": "user", "--entrypoint": "entrypoint"}
    tokens = list(arguments)
    while tokens:
        token = tokens.pop(0)
        key, equals, value = token.partition("=")
        if key in flags:
            if not equals and tokens:  # "--entrypoint=" is a value (none), "--entrypoint" takes the next one
                value = tokens.pop(0)
            option = flags[key]
            options[option] = int(float(value) * 1e9) if option == "nano_cpus" else value
        else:
            warn(f"docker argument {token!r} is not supported locally and was ignored")
    return options


class DockerExecution:
    def __init__(self, client: docker.DockerClient, plan: RunPlan, layout: RunLayout,
                 control: Callable[[str], None], home: Path, *, on_output: Callable[[], None] = lambda: None):
        """``on_output()`` is called after each chunk of the job's output lands in std_log.txt (followers)."""
        self.client = client
        self.home = home
        self.on_output = on_output
        self.plan = plan
        self.layout = layout
        self.control = control
        self._follower: threading.Thread | None = None
        self.stream_ended = threading.Event()  # set when the container's output stream closes: its end
        self._lost_since: float | None = None  # monotonic time the engine stopped answering
        self._engine_dropped = False           # the engine went away at least once while the job ran
        self._stop_requested = False           # we asked the container to stop (cancel, time limit)
        self.reconnect_seconds = RECONNECT_SECONDS

    def find(self) -> Container | None:
        try:
            return self.client.containers.get(container_name(self.plan.run_id))
        except NotFound:
            return None

    def start(self, image: str, facts: ImageFacts, gpus: list[int], inventory: GpuInventory | None = None,
              ) -> Container:
        stale = self.find()
        if stale is not None:  # a supervisor died between create and start: begin afresh
            stale.remove(force=True)
        inventory = inventory or GpuInventory()
        options = _limits_from_arguments(self.plan.docker_arguments, self.control)
        identity = container_identity(facts, submitter=(os.getuid(), os.getgid()),
                                      user_option=options.pop("user", None),
                                      entrypoint_option=options.pop("entrypoint", None))
        self.control(f"interpreter {facts.note}, Python {facts.python_version} at {facts.executable}")
        for note in identity.notes:
            self.control(note)
        if identity.hand_to is not None:
            hand_run_folders(self.layout, *identity.hand_to)
        env = job_environment(self.plan, tracking_dir=TRACKING, workdir=WORKDIR, pythonpath=LIB)
        for name, value in identity.environment.items():
            env.setdefault(name, value)
        env.update(gpu_environment(gpus, inventory, container=True))
        device_requests = []
        if gpus and inventory.declared:
            self.control(f"{inventory.describe()}: GPUs {gpus} booked; the container gets "
                         f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} and no device")
        elif gpus:
            how = nvidia_support(self.client)
            if how is None:
                raise DockerEngineException(f"GPUs {gpus} are booked for this run, but the Docker engine has no "
                                            f"NVIDIA container runtime to hand them over. {NVIDIA_FIX}")
            uuids = inventory.uuids(gpus)
            # By UUID: indices differ between NVML, CUDA and the runtime's view; a UUID is one device.
            device_requests.append(DeviceRequest(driver="nvidia", device_ids=uuids, capabilities=[["gpu"]]))
            self.control(f"GPUs {gpus} ({', '.join(uuids)}) handed to the container through the {how}")
        # A shell command names the interpreter by its path (its folder goes first on PATH); a script run starts it
        # by the name the run resolved to, as the image's PATH (and a wrapper ENTRYPOINT's) finds it.
        python = facts.executable if self.plan.command[:1] == [SHELL] else facts.interpreter
        command = [token.replace(PYTHON_TOKEN, python) for token in self.plan.command]
        options.setdefault("shm_size", self.plan.shm_size or "2g")
        self.control(f"Starting Linux command : {shlex.join(command)}")
        container = self.client.containers.create(
            image,
            command=command,
            name=container_name(self.plan.run_id),
            working_dir=WORKDIR,
            environment=env,
            user=identity.user,
            entrypoint=identity.entrypoint,
            volumes={
                str(self.layout.wd): {"bind": WORKDIR, "mode": "rw"},
                str(self.layout.tracking): {"bind": TRACKING, "mode": "rw"},
                str(self.layout.uploads): {"bind": UPLOADS, "mode": "rw"},
                str(job_library(self.home)): {"bind": LIB, "mode": "ro"},
            },
            labels={"amltrain.run_id": self.plan.run_id, "amltrain.experiment": self.plan.experiment},
            device_requests=device_requests or None,
            # An init as PID 1: the job then gets SIGTERM's default action on cancel (a bare PID 1 ignores
            # it, and every cancel would wait out the grace period), and its orphans are reaped.
            init=True,
            detach=True,
            **options,
        )
        try:
            container.start()
        except ENGINE_ERRORS as exc:  # never leave a created-but-dead container behind the failed run
            with contextlib.suppress(*ENGINE_ERRORS):
                container.remove(force=True)
            raise DockerEngineException(f"Docker could not start the run's container: {exc}") from exc
        return container

    def follow_logs(self, container: Container, *, from_start: bool) -> None:
        """Copy the container's output into std_log.txt from a thread, until the container stops."""
        mode = "wb" if from_start else "ab"

        self.stream_ended.clear()

        def pump() -> None:
            try:
                with open(self.layout.std_log, mode) as sink:
                    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
                        sink.write(chunk)
                        sink.flush()
                        self.on_output()
            except Exception as exc:  # daemon went away (any transport error): the watcher reports it
                self.control(f"log stream ended: {exc!r}")
            finally:
                self.stream_ended.set()  # the container stopped (or the engine went): the watcher looks now

        self._follower = threading.Thread(target=pump, name="amltrain-logs", daemon=True)
        self._follower.start()

    def poll(self, container: Container) -> Outcome | None:
        """None while the container runs; how it ended otherwise."""
        try:
            container.reload()
        except NotFound:
            return Outcome(exit_code=None, lost="the container disappeared (removed outside jupyter-amltrain)")
        except ENGINE_ERRORS as exc:
            raise DockerEngineException(f"Docker engine stopped answering: {exc}") from exc
        state = container.attrs.get("State", {})
        if state.get("Status") in ("created", "running", "restarting", "paused"):
            return None
        if self._follower is not None:
            self._follower.join(timeout=10)  # let the last lines land before anyone reads the log
        tail = b""
        with contextlib.suppress(*ENGINE_ERRORS):
            tail = container.logs(stdout=False, stderr=True, tail=50)
        return Outcome(exit_code=state.get("ExitCode"), oom_killed=bool(state.get("OOMKilled")),
                       stderr_tail=tail.decode("utf-8", "replace"))

    def poll_through_restarts(self, container: Container) -> Outcome | None:
        """``poll``, riding out a Docker engine that stops answering (a daemon restart).

        While the engine is away the run stays Running and this returns None; after ``reconnect_seconds``
        without an answer the run is lost. When the engine answers again the container is looked at: still
        running (live-restore), its log is followed again; ended (a restart without live-restore stops every
        container), the outcome says the daemon restarted and the whole log is copied again from Docker, so
        std_log.txt is complete.

        A stopping daemon first stops the containers and only then closes its API, so a container killed by
        a signal nobody here sent may be the first sign of a restart: then the engine is watched for a
        moment (``SHUTDOWN_WATCH_SECONDS``) before the kill is taken at face value."""
        try:
            outcome = self.poll(container)
        except DockerEngineException as exc:
            return self._engine_lost(exc)
        if self._lost_since is not None:
            self._lost_since = None
            self.control("the Docker engine answers again")
            if outcome is None:
                self.follow_logs(container, from_start=True)
        if outcome is not None and not self._engine_dropped and self._killed_unasked(outcome):
            outcome = self._after_daemon_shutdown(container, outcome)
        if outcome is not None and self._engine_dropped:
            self.copy_whole_log(container)
            outcome = dataclasses.replace(outcome, docker_restarted=True)
        return outcome

    def _engine_lost(self, exc: Exception) -> Outcome | None:
        now = time.monotonic()
        if self._lost_since is None:
            self._lost_since = now
            self._engine_dropped = True
            self.control(f"lost contact with the Docker engine ({exc}); waiting up to "
                         f"{self.reconnect_seconds:g} s for it to come back")
        elif now - self._lost_since > self.reconnect_seconds:
            return Outcome(exit_code=None, docker_restarted=True,
                           lost=f"the Docker engine stopped answering for {self.reconnect_seconds:g} s, so the "
                                "container's end could not be observed")
        return None

    def _killed_unasked(self, outcome: Outcome) -> bool:
        return outcome.exit_code in (137, 143) and not outcome.oom_killed and not self._stop_requested

    def _after_daemon_shutdown(self, container: Container, outcome: Outcome) -> Outcome:
        deadline = time.monotonic() + SHUTDOWN_WATCH_SECONDS
        while time.monotonic() < deadline:
            try:
                self.client.ping()
            except ENGINE_ERRORS as exc:
                self._engine_lost(exc)
                break
            time.sleep(0.2)
        else:
            return outcome  # the engine never went away: somebody else killed the container
        while True:  # the daemon is restarting: wait for it, then read the container's end afresh
            try:
                self.client.ping()
                fresh = self.poll(container)
            except (DockerEngineException, *ENGINE_ERRORS) as exc:
                lost = self._engine_lost(exc)
                if lost is not None:
                    return lost
                time.sleep(0.5)
                continue
            self.control("the Docker engine answers again")
            self._lost_since = None
            return fresh if fresh is not None else outcome

    def copy_whole_log(self, container: Container) -> None:
        # In place, not through a new file: readers holding std_log.txt open (a notebook streaming it) go on
        # reading the same file, whose first part is unchanged (Docker's log holds everything we copied).
        with contextlib.suppress(*ENGINE_ERRORS):
            data = container.logs(stdout=True, stderr=True)
            with open(self.layout.std_log, "r+b" if self.layout.std_log.exists() else "wb") as sink:
                sink.write(data)
                sink.truncate()

    def stop(self, container: Container, grace: int = 10) -> bool:
        """False when the engine could not be asked (the watcher asks again later)."""
        self._stop_requested = True
        try:
            container.stop(timeout=grace)
        except NotFound:
            pass
        except ENGINE_ERRORS as exc:
            self.control(f"could not stop the container yet: {exc}")
            return False
        return True

    def remove(self, container: Container) -> None:
        with contextlib.suppress(*ENGINE_ERRORS):
            container.remove(force=True)

    def usage_source(self, container: Container) -> Any:
        """Where the sampler reads CPU and memory: the container's cgroup files, else ``docker stats``."""
        from jupyter_amltrain.engine.compute.usage import CgroupUsage
        from jupyter_amltrain.engine.runs.system_sampler import DockerStatsUsage

        with contextlib.suppress(*ENGINE_ERRORS):
            container.reload()
        pid = (container.attrs.get("State") or {}).get("Pid") or 0
        if pid:
            try:
                return CgroupUsage(int(pid))
            except (OSError, ValueError) as exc:
                self.control(f"system metrics: cgroup of the container not readable ({exc}); using docker stats")
        return DockerStatsUsage(container)
