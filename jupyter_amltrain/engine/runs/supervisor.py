"""What one run goes through, from Queued to a terminal status: booking a node, preparing the environment,
starting the job, watching it, finishing it.

The agent (``engine/agent``) drives each run with one of these in a thread of its own, so a run finishes
correctly whatever happens to the kernel that submitted it; after a crash of the agent, the next one drives it
again with ``recover=True``, re-attaching to its container or process. A registry password, when there is one,
arrives with the run's hand-over and is held in memory only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.agent.protocol import RunSettings
from jupyter_amltrain.engine.compute.gpus import GpuInventory, detect_gpus, parse_declared, resolve_inventory
from jupyter_amltrain.engine.compute.leases import HostLeases
from jupyter_amltrain.engine.compute.scheduler import Booking, try_book
from jupyter_amltrain.engine.images.probe import ImageFacts
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.backends.base import Outcome
from jupyter_amltrain.engine.runs.ownership import reclaim_run_folders
from jupyter_amltrain.engine.runs.plan import SHELL, RunPlan
from jupyter_amltrain.engine.runs.statuses import EXECUTING, TERMINAL
from jupyter_amltrain.engine.runs.system_sampler import SystemSampler
from jupyter_amltrain.engine.settings import AmlTrainSettings, load_settings
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.store.disk import DiskReserve, describe_disk, free_bytes, is_disk_full
from jupyter_amltrain.engine.store.layout import RunLayout, WorkspaceLayout
from jupyter_amltrain.engine.tracking.ingest import ingest_events
from jupyter_amltrain.engine.tracking.record import add_properties_in_store
from jupyter_amltrain.exceptions import AzureMLException, EnvironmentException, ImageBuildException

INGEST_EVERY = 1.0
CANCEL_GRACE_SECONDS = 10
WRITE_ERRORS = (sqlite3.Error, OSError)  # what a write to the store or the run folder raises; is_disk_full sorts
MAX_UNWRITTEN_LINES = 1000  # control lines kept in memory while the disk is full
FINAL_WRITE_MAX_DELAY = 30.0  # the longest pause between two tries of the final status on a full disk
# What a job's stderr says when its own writes met a full disk (Python, coreutils, most C libraries).
DISK_FULL_SIGNS = ("No space left on device", "Disk quota exceeded", "[Errno 28]")


class Canceled(Exception):
    pass


@dataclass(frozen=True)
class Prepared:
    image: str  # '' for local processes
    python: str  # the interpreter the job's command starts
    facts: ImageFacts | None = None  # Docker runs: what the image offers (interpreter, user, ENTRYPOINT)


def check_command(command: list[str], image: str, facts: ImageFacts) -> None:
    """A ``command=`` run goes through /bin/sh; a script run does not need a shell (its Python runs directly)."""
    if command[:1] == [SHELL] and not facts.has_shell:
        raise EnvironmentException(
            f"The image {image} has no shell ({SHELL}), and ScriptRunConfig(command=...) runs its command through "
            "one. Fix: use ScriptRunConfig(script='train.py', arguments=[...]), which runs the image's Python "
            "directly, or use an image with a shell."
        )


def runtime_properties(facts: ImageFacts) -> dict[str, str]:
    """What the run's details show of how the job runs (interpreter and user; the views read these)."""
    return {"amltrain.interpreter": f"{facts.interpreter} (Python {facts.python_version})",
            "amltrain.user": facts.runs_as}


class Supervisor:
    def __init__(self, root: Path, run_id: str, secrets: dict[str, Any] | None = None, *,
                 wait_for_change: Callable[[float, int], None] = lambda seconds, _: time.sleep(seconds),
                 change_token: Callable[[], int] = lambda: 0,
                 changed: Callable[[], None] = lambda: None, published: Callable[[], None] = lambda: None,
                 owner_pid: int | None = None):
        """The run's settings are its submitter's (``plan.settings``: the CA bundle, declared GPUs, intervals), not
        the agent's, which serves every submitter of the store home.
        ``change_token()`` then ``wait_for_change(seconds, token)``: how a queued run waits (the agent wakes it
        when a run ends, arrives or leaves a queue after the token was taken: no wake-up is lost in between);
        ``changed()``: says that a queue moved (this run left it), so the runs behind it look again at once;
        ``published()``: says a status or log text was written, so the run's followers look at once;
        ``owner_pid``: the process that drives the run (the agent), recorded so recovery can tell it lives."""
        self.wait_for_change = wait_for_change
        self.change_token = change_token
        self.changed = changed
        self.published = published
        self._prepared: Prepared | None = None
        self.owner_pid = owner_pid or os.getpid()
        self.workspace = WorkspaceLayout(root)
        self.store = Store(self.workspace.database)
        self.run_id = run_id
        self.layout = RunLayout(self.workspace.run_dir(run_id)).ensure()
        self.plan = RunPlan.load(self.layout.root / "plan.json")
        self.settings = apply_run_settings(load_settings(), self.plan.settings)
        self.password = (secrets or {}).get("registry_password")
        self.poll = self.settings.poll_interval
        self.inventory = GpuInventory()
        self.leases = HostLeases(Path(self.settings.home) / "gpu-leases.db", self.workspace.database)
        self._cleanup: Callable[[], None] | None = None  # stops the job if the supervisor fails around it
        # A full disk: the first write that met it, control lines waiting for room, the space kept for the
        # final status, and whether the outcome lives only in memory (then the container, which also knows the
        # exit code, is kept until the final status is written).
        self._disk_full_at: str | None = None
        self._unwritten: list[str] = []
        self._log_lock = threading.Lock()
        self._reserve = DiskReserve(self.layout.root / ".disk-reserve")
        self._outcome_unsaved = False

    # -- logging --------------------------------------------------------------------------------------------
    def control(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._log_lock:  # the log follower and the sampler write from their threads
            self._unwritten.append(f"[{stamp}Z] {message}\n")
            del self._unwritten[:-MAX_UNWRITTEN_LINES]
            try:
                with open(self.layout.control_log, "a", encoding="utf-8") as log:
                    log.write("".join(self._unwritten))
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                self._note_disk_full("the control log")  # kept in memory; written with the next line that fits
                return
            self._unwritten.clear()

    def build_log(self, line: str) -> None:
        with open(self.layout.build_log, "a", encoding="utf-8") as log:
            log.write(line if line.endswith("\n") else line + "\n")

    def status(self, status: str, sub_status: str = "", **fields: Any) -> None:
        record = records.get_run(self.store, self.run_id)
        if record is None:
            raise Canceled()
        if record.cancel_requested and status not in TERMINAL:
            raise Canceled()
        if not records.set_status(self.store, self.run_id, status, sub_status, **fields):
            raise Canceled()  # already terminal (canceled while queued)
        if (record.status, record.sub_status) != (status, sub_status):
            self.control(f"status {status}" + (f": {sub_status}" if sub_status else ""))
            self.published()

    def cancel_requested(self) -> bool:
        record = records.get_run(self.store, self.run_id)
        return record is None or record.cancel_requested

    # -- phases -----------------------------------------------------------------------------------------------
    def wait_for_node(self) -> Booking:
        reason = None
        while True:
            token = self.change_token()  # taken before the look: a change during it still wakes the wait below
            booked = try_book(self.store, self.run_id, self.plan.gpus_wanted, inventory=self.inventory,
                              leases=self.leases)
            if isinstance(booked, Booking):
                self.changed()  # those behind are one place nearer: they say so now, not at their next look
                self._announce_gpus(booked)
                return booked
            if booked.reason != reason:  # a write only when there is something new to say
                self.status("Queued", booked.reason)
                reason = booked.reason
            # A run's end (or a new run) wakes the queue at once; the timeout covers what other processes change
            # in the store. Deep in the queue a run cannot move before those ahead of it: it looks less often.
            self.wait_for_change(self.poll * min(1 + booked.ahead, 5) * 5, token)

    def _announce_gpus(self, booked: Booking) -> None:
        from jupyter_amltrain.engine.compute.pools import get_pool

        if booked.gpus:
            self.control(f"booked node {booked.node} with GPUs {list(booked.gpus)}"
                         + (f" ({self.inventory.describe()})" if self.inventory.declared else ""))
            return
        record = records.get_run(self.store, self.run_id)
        pool = get_pool(self.store, record.target) if record else None
        wanted = self.plan.gpus_wanted if self.plan.gpus_wanted is not None else (pool.gpus_per_node if pool else 0)
        if wanted and pool is not None and not pool.gpu_ids:
            warning = (f"Compute '{pool.name}' ({pool.vm_size}) asks for {wanted} GPU(s) per node, but this host "
                       "has no GPU visible to NVML: the job runs on the CPU.")
            self.control(f"WARNING: {warning}")
            records.add_warning(self.store, self.run_id, warning)

    def _ready(self) -> Prepared:
        """The environment and the working copy, made once per driver (before queueing, or at the start of a
        recovered run that had not got that far)."""
        if self._prepared is None:
            self._prepared = self.prepare()
            self.materialize()
        return self._prepared

    def prepare(self) -> Prepared:
        """Build or find the environment, and what a job gets in it."""
        spec = self.plan.image_spec()
        self.status("Preparing", "preparing environment")

        def progress(text: str) -> None:
            self.status("Preparing", text)

        if self.plan.backend == "docker":
            from jupyter_amltrain.engine.docker_engine import warm_docker_client
            from jupyter_amltrain.engine.images.builder import ImageBuilder

            builder = ImageBuilder(warm_docker_client(self.plan.docker_host), self.settings)
            built = builder.ensure(spec, password=self.password, log=self.build_log, progress=progress)
            check_command(self.plan.command, built.tag, built.facts)
            records.update_run(self.store, self.run_id, image_hash=built.hash)
            add_properties_in_store(self.store, self.run_id, runtime_properties(built.facts))
            self.control(f"image {built.tag} ({'cache hit' if built.cache_hit else 'built'})")
            return Prepared(built.tag, built.python, built.facts)
        if spec.user_managed:
            return Prepared("", self.plan.host_python or sys.executable)
        from jupyter_amltrain.engine.images.localenv import ensure_local_env
        from jupyter_amltrain.engine.images.spec import image_hash

        python = ensure_local_env(spec, Path(self.settings.home) / "envs", log=self.build_log)
        records.update_run(self.store, self.run_id, image_hash=image_hash(spec))
        return Prepared("", str(python))

    def materialize(self) -> None:
        from jupyter_amltrain.engine.snapshots import SnapshotStore

        if self.plan.snapshot_id and not (self.layout.wd / ".amltrain-materialized").exists():
            self.status("Preparing", "copying snapshot")
            if self.layout.wd.exists():  # a half-made copy from a supervisor that died: start it over
                import shutil

                shutil.rmtree(self.layout.wd)
            SnapshotStore(self.workspace.snapshots).materialize(self.plan.snapshot_id, self.layout.wd)
            (self.layout.wd / ".amltrain-materialized").touch()
        self.layout.outputs.mkdir(parents=True, exist_ok=True)
        self.layout.logs.mkdir(parents=True, exist_ok=True)

    def watch(self, poll_outcome: Any, stop: Any, ended: threading.Event | None = None) -> Outcome:
        """Until the job ends: its outcome, with metrics ingested, cancels obeyed and the time limit kept.
        ``ended`` is set the moment the job's output stream closes (its exit), so the end is seen at once; the
        poll interval remains for cancels, the time limit and ingest."""
        started = time.monotonic()
        last_ingest = 0.0
        stopping = False
        while True:
            outcome = poll_outcome()
            if outcome is not None:
                return outcome
            now = time.monotonic()
            if now - last_ingest >= INGEST_EVERY:
                self._ingest()  # on a full disk the events wait in their file; the job is watched on regardless
                last_ingest = now
            if not stopping and self.cancel_requested():
                self.control("cancel requested: stopping the job")
                stopping = stop() is not False  # False: the engine could not be asked; ask again next time
            limit = self.plan.max_run_duration_seconds
            if not stopping and limit and now - started > limit:
                if not self._timed_out:
                    self.control(f"max_run_duration_seconds={limit} reached: stopping the job")
                    records.update_run(self.store, self.run_id, sub_status="max_run_duration_seconds reached")
                self._timed_out = True
                stopping = stop() is not False
            if ended is not None:
                ended.wait(self.poll)
            else:
                time.sleep(self.poll)

    _timed_out = False

    def execute(self, recover: bool) -> Outcome:
        record = records.get_run(self.store, self.run_id)  # as the previous supervisor, if any, left it
        assert record is not None
        gpus = record.gpus
        was_started = recover and bool(record.container) and record.status in EXECUTING
        if self.plan.backend == "docker":
            from jupyter_amltrain.engine.docker_engine import warm_docker_client
            from jupyter_amltrain.engine.runs.backends.docker_backend import DockerExecution

            execution = DockerExecution(warm_docker_client(self.plan.docker_host), self.plan, self.layout, self.control,
                                        Path(self.settings.home), on_output=self.published)
            container = execution.find() if recover else None
            if container is None and was_started:
                # It ran and is gone. Never run it again (a second training would repeat its side effects):
                # its end was saved before the container was removed, or it is unknown, and said so.
                return self._saved_outcome() or Outcome(
                    exit_code=None, lost=f"its container {record.container} was removed while no supervisor "
                                         "watched it, so how it ended is unknown")
            if container is None or container.status == "created":
                prepared = self._ready()
                assert prepared.facts is not None
                self.status("Starting", "starting container")
                container = execution.start(prepared.image, prepared.facts, gpus, self.inventory)
                records.update_run(self.store, self.run_id, container=container.name)
            else:
                self.control(f"reattached to container {container.name}")
            started = container

            def cleanup() -> None:
                execution.stop(started)
                execution.remove(started)

            self._cleanup = cleanup
            execution.follow_logs(container, from_start=True)
            self.status("Running")
            sampler = self._sampler(lambda: execution.usage_source(started), gpus)
            try:
                outcome = self.watch(lambda: execution.poll_through_restarts(started),
                                     lambda: execution.stop(started), ended=execution.stream_ended)
            finally:
                self.control(sampler.stop().describe())
            # Saved before the container goes: a supervisor killed after the removal is recovered from it.
            self._save_outcome(outcome)
            if self._should_remove(started):
                execution.remove(started)
            self._reclaim_files()
            return outcome
        from jupyter_amltrain.engine.compute.usage import ProcessTreeUsage
        from jupyter_amltrain.engine.runs.backends.process_backend import ProcessExecution

        process = ProcessExecution(self.plan, self.layout, Path(self.settings.home), self.control)
        pid = int(record.container.split(":", 1)[1]) if recover and record.container else None
        if pid is None and recover:
            # A driver lost between starting the launcher and recording its pid: find it, never start it twice.
            pid = process.find_launcher()
            if pid is not None:
                self.control(f"found the job's launcher (pid {pid}), started before its driver was lost")
                records.update_run(self.store, self.run_id, container=f"pid:{pid}")
        if pid is None:
            prepared = self._ready()
            self.status("Starting", "starting process")
            pid = process.start(prepared.python, gpus, self.inventory)
            records.update_run(self.store, self.run_id, container=f"pid:{pid}")
        else:
            self.control(f"reattached to process {pid}")
        self._cleanup = lambda: process.stop(pid)
        self.status("Running")
        sampler = self._sampler(lambda: ProcessTreeUsage(pid), gpus)
        try:
            return self.watch(lambda: process.poll(pid), lambda: process.stop(pid), ended=process.ended)
        finally:
            self.control(sampler.stop().describe())

    @property
    def _outcome_file(self) -> Path:
        return self.layout.exit_file.parent / "outcome.json"

    def _save_outcome(self, outcome: Outcome) -> None:
        tmp = self._outcome_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(dataclasses.asdict(outcome)))
            os.replace(tmp, self._outcome_file)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            with contextlib.suppress(OSError):
                tmp.unlink()
            # The outcome stays in memory (finish() gets it) and the container stays until the final status is
            # written, so a supervisor killed meanwhile is still recovered with the real exit code.
            self._outcome_unsaved = True
            self._note_disk_full("outcome.json")
            self.control(f"disk full: the job's outcome (exit code {outcome.exit_code}) is kept in memory and "
                         "its container kept until the run's status is written")

    def _saved_outcome(self) -> Outcome | None:
        try:
            return Outcome(**json.loads(self._outcome_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _sampler(self, usage: Callable[[], Any], gpus: list[int]) -> SystemSampler:
        interval = self.settings.system_metrics_interval
        try:
            source = usage() if interval > 0 else None
        except Exception as exc:  # metrics are a bonus: a run never fails for want of them
            self.control(f"system metrics: no CPU and memory readings ({exc!r})")
            source = None
        uuids = {} if self.inventory.declared else dict(zip(gpus, self.inventory.uuids(gpus), strict=True))
        if gpus and self.inventory.declared:
            self.control(f"system metrics: {self.inventory.describe()}, so there are no GPU readings")
        return SystemSampler(self.store, self.run_id, interval=interval, gpu_uuids=uuids, usage=source,
                             control=self.control).start()

    def _should_remove(self, container: Any) -> bool:
        if self._outcome_unsaved:
            return False  # until the final status is written, the container is the only other record of the end
        try:
            container.reload()
            return container.status not in ("running", "restarting")
        except Exception:
            return False

    def finish(self, outcome: Outcome) -> None:
        self._ingest()
        if not self.cancel_requested():
            try:
                records.set_status(self.store, self.run_id, "Finalizing", "collecting outputs")
            except WRITE_ERRORS as exc:
                if not is_disk_full(exc):
                    raise
                self._note_disk_full("the store")  # a step on the way, skipped: the final status is what matters
        ingested = self._ingest()
        disk_full = self._disk_full_description(outcome)
        if not ingested:  # the reserve is given back for the events the job logged: they are the run's data
            self._reserve.release()
            ingested = self._ingest()
        record = records.get_run(self.store, self.run_id)
        fields: dict[str, Any] = {"exit_code": outcome.exit_code}
        if record is not None and record.cancel_requested:
            self.control("Run is canceled.")
            self._final_status("Canceled", **fields)
        elif outcome.exit_code == 0 and not outcome.lost and not self._timed_out and ingested:
            if disk_full is not None:
                self.control(f"WARNING: the disk holding the run's folder, {disk_full}, was full during the run")
            self.control("The experiment completed successfully. Finalizing run...")
            self._final_status("Completed", **fields)
        else:
            fields["error"] = {"error": failure_error(outcome, self.plan, timed_out=self._timed_out,
                                                      disk_full=disk_full, events_lost=not ingested)}
            self.control(f"The experiment failed: {fields['error']['error']['message']}")
            self._final_status("Failed", **fields)
        if self._outcome_unsaved and self._cleanup is not None:
            with contextlib.suppress(Exception):  # the container kept for its exit code is no longer needed
                self._cleanup()
        self._reserve.release()

    # -- a full disk ----------------------------------------------------------------------------------------
    def _note_disk_full(self, where: str) -> None:
        if self._disk_full_at is None:
            self._disk_full_at = where

    _said_events_refused = False

    def _events_refused(self, message: str) -> None:
        """The job put something other than a regular file at its event file: said once, in the control log and
        as a run warning (ingest tries every second); the run goes on and ends as its job does."""
        if not self._said_events_refused:
            self._said_events_refused = True
            self.control(f"WARNING: {message}")
            records.add_warning(self.store, self.run_id, message)

    def _ingest(self) -> bool:
        """Apply the job's new events; False when the store's disk is full (they stay in their file)."""
        try:
            ingest_events(self.store, self.run_id, self.layout.events, on_refused=self._events_refused)
            return True
        except WRITE_ERRORS as exc:
            if not is_disk_full(exc):
                raise
            self._note_disk_full("the store (the job's metrics)")
            return False

    def _disk_full_description(self, outcome: Outcome) -> str | None:
        """The run's disk, described, when the run met a full disk (its supervisor's writes failed, the job
        said so, or there is less room left than the reserve); None otherwise."""
        said = any(sign in outcome.stderr_tail for sign in DISK_FULL_SIGNS)
        free = free_bytes(self.layout.root)
        nearly_full = free is not None and free < self._reserve.size
        if self._disk_full_at is None and not said and not nearly_full:
            return None
        return describe_disk(self.layout.root)

    def _final_status(self, status: str, **fields: Any) -> None:
        """Write the run's terminal status, whatever it takes: on a full disk the reserve is given back, then the
        write is retried (with the outcome in memory) until space is freed. A run left active on a full disk
        would otherwise end as JobLost, its real exit code lost."""
        delay = 0.5
        while True:
            try:
                records.set_status(self.store, self.run_id, status, "", **fields)
                break
            except WRITE_ERRORS as exc:
                if not is_disk_full(exc):
                    raise
                self._note_disk_full("the store")
                if self._reserve.release():
                    continue
                time.sleep(delay)
                delay = min(delay * 2, FINAL_WRITE_MAX_DELAY)
        if self._disk_full_at is not None:
            self.control(f"status {status} recorded after the disk was full (first met writing {self._disk_full_at})")

    def main(self, recover: bool = False) -> None:
        records.update_run(self.store, self.run_id, supervisor_pid=self.owner_pid, supervisor_started=time.time())
        self.control(("recovering" if recover else "supervising") + f" run {self.run_id} (agent pid {self.owner_pid})")
        if not self._reserve.hold():
            self.control(f"WARNING: the disk holding the run's folder, {describe_disk(self.layout.root)}, has not "
                         f"even {self._reserve.size} bytes free to keep for the run's last writes")
        try:
            self._main(recover)
        finally:
            self._reserve.release()

    def _main(self, recover: bool) -> None:
        try:
            # The inventory the run was submitted under (its plan's settings), whatever the agent's own
            # environment says: the agent serves every submitter of the store home.
            self.inventory = resolve_inventory(parse_declared(self.settings.declared_gpus), detect_gpus())
            if self.inventory.declared:
                self.control(self.inventory.describe())
            record = records.get_run(self.store, self.run_id)
            if record is None or (record.node is None and not record.container):
                # As in v1, Preparing comes before Queued: the image and the working copy are made while the run
                # waits for nothing, so that a free node is followed by a single start. A private base image is
                # pulled here too, so a driver that recovers the run later (without the password) needs none.
                self._ready()
            if record is None or record.node is None:  # a recovered run that holds a node keeps its sub-status
                self.status("Queued", "waiting for a node")
            self.wait_for_node()
            outcome = self.execute(recover)
        except Canceled:
            self._stop_job()
            self.control("Run is canceled.")
            self._final_status("Canceled")
            return
        except AzureMLException as exc:
            self._stop_job()
            message = str(exc)
            if isinstance(exc, ImageBuildException):
                message += "\nThe whole build log is the run's azureml-logs/20_image_build_log.txt."
            self.control(f"failed: {message}")
            self._final_status("Failed", error={"error": {"code": type(exc).__name__, "message": message}})
            return
        except Exception as exc:
            self.control("internal error:\n" + traceback.format_exc())
            self._stop_job()
            if is_disk_full(exc):
                error = {"code": "DiskFull", "message": (
                    f"jupyter-amltrain could not go on with the run: disk full. The disk holding the run's folder, "
                    f"{describe_disk(self.layout.root)}, has no room left ({exc}). Free space there and submit "
                    "the run again.")}
            else:
                error = {"code": "SystemError", "message": f"jupyter-amltrain failed while running the job: "
                         f"{exc!r}. See azureml-logs/60_control_log.txt for the traceback."}
            self._final_status("Failed", error={"error": error})
            return
        self.finish(outcome)

    def _stop_job(self) -> None:
        """A run failed around a started job: stop it, so it never holds GPUs the store says are free."""
        if self._cleanup is not None:
            with contextlib.suppress(Exception):
                self._cleanup()
        self._reclaim_files()

    def _reclaim_files(self) -> None:
        """Files the job's non-root user left come back to the submitter (see engine/runs/ownership.py)."""
        try:
            changed = reclaim_run_folders(self.layout)
        except OSError as exc:
            self.control(f"could not give the job's files back to uid {os.getuid()}: {exc}")
            return
        if changed:
            self.control(f"{changed} files and folders the job created given back to uid {os.getuid()}")


def failure_error(outcome: Outcome, plan: RunPlan, *, timed_out: bool, disk_full: str | None = None,
                  events_lost: bool = False) -> dict[str, Any]:
    """The run's error. ``disk_full`` describes the run's disk when the run met a full disk; ``events_lost``:
    what the job logged could not all be recorded (the store's disk stayed full)."""
    tail = outcome.stderr_tail.strip().splitlines()[-20:]
    if outcome.docker_restarted and outcome.lost:
        message = (f"The Docker daemon restarted (or stopped answering) while the run was running, and {outcome.lost}. "
                   "Resubmit the run; to keep jobs running across daemon restarts, enable Docker's live-restore "
                   "(\"live-restore\": true in /etc/docker/daemon.json).")
        code = "JobLost"
    elif outcome.docker_restarted:
        message = (f"The Docker daemon restarted while the run was running, and the container stopped (exit code "
                   f"{outcome.exit_code}). Docker stops every container when it restarts unless live-restore is "
                   "on: resubmit the run, and enable \"live-restore\": true in /etc/docker/daemon.json to keep jobs "
                   "running across daemon restarts.")
        code = "DockerDaemonRestarted"
    elif disk_full is not None:  # before "lost": a launcher that could not write its exit file was lost to it
        last = tail[-1] if tail else ""
        events = (" Some of the metrics, tags or properties it logged could not be recorded."
                  if events_lost else "")
        ended = (f"The run's end could not be observed ({outcome.lost})" if outcome.lost
                 else f"Execution failed with exit code {outcome.exit_code}")
        message = (f"{ended}: disk full. The disk holding the run's folder, {disk_full}, ran out of space during "
                   f"the run.{events} Free space there (the run's outputs/ may hold what filled it) and submit the "
                   "run again." + (f" {last}" if last else ""))
        code = "DiskFull"
    elif outcome.lost:
        message = f"The run's end could not be observed: {outcome.lost}."
        code = "JobLost"
    elif outcome.oom_killed or (outcome.exit_code == 137 and not timed_out):
        message = ("The job was killed because it ran out of memory (exit code 137, OOM). Give it more memory "
                   "(docker_runtime_config arguments ['--memory', '8g']) or reduce batch size.")
        code = "OutOfMemory" if outcome.oom_killed else "Killed"
    elif timed_out or outcome.timed_out:
        message = (f"The run exceeded max_run_duration_seconds={plan.max_run_duration_seconds} and was stopped. "
                   "Raise max_run_duration_seconds in ScriptRunConfig if it needs longer.")
        code = "RunTimeout"
    else:
        last = tail[-1] if tail else ""
        message = f"Execution failed with exit code {outcome.exit_code}." + (f" {last}" if last else "")
        code = "UserError"
    return {"code": code, "message": message, "exitCode": outcome.exit_code,
            "stderrTail": "\n".join(tail), "details": []}


def apply_run_settings(settings: AmlTrainSettings, run: RunSettings) -> AmlTrainSettings:
    """``settings`` (the agent's) with the submitter's run-affecting ones in place."""
    for name in ("ca_bundle", "inject_ca_bundle", "poll_interval", "system_metrics_interval"):
        if name in run:
            setattr(settings, name, run[name])
    settings.declared_gpus = list(run.get("declared_gpus") or []) or None  # none declared: the real GPUs
    return settings


def fail_unplanned(store: Store, run_id: str) -> None:
    """The submitting process died between recording the run and writing its plan: nothing can run it, and left
    NotStarted it would hold up its compute's queue forever."""
    records.set_status(store, run_id, "Failed", "", error={"error": {
        "code": "SubmissionIncomplete", "message": "The submission of this run did not finish (the process "
        "that submitted it ended before handing it over), so it never started. Submit it again."}})
