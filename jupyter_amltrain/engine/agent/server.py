"""The agent: one long-lived process per store home that owns every run of its workspaces.

It replaces the process per run: each run is carried by a thread here (``engine/runs/supervisor.py`` holds what
a run goes through), with one warm interpreter, warm imports and one Docker connection pool. It listens on a
Unix socket that only its owner can reach, and checks every connection's peer credentials anyway.

* **One at a time.** The agent holds ``agent.lock`` (flock) while it lives; a second agent of the same home sees
  the lock taken and exits at once, so two agents never drive the same runs.
* **The store stays the truth.** A run is written to the store before the agent hears of it; the agent keeps
  nothing a successor would need. SIGKILL loses nothing: containers and job processes go on, and the next agent
  (started by whoever next submits, opens a workspace or waits on a run) re-attaches to every active run.
* **Events, not polling.** A queued run waits on a condition that a run's end, a submit or a ``wake`` notifies;
  a slow timer remains only for what other processes change in the store (a cancel from a notebook).
* **Idle.** With no run to drive and no request for ``idle_seconds``, it exits; the next request starts one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import struct
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from jupyter_amltrain.engine.agent.paths import AgentPaths
from jupyter_amltrain.engine.agent.protocol import Answer, Request, RunState, receive, send
from jupyter_amltrain.engine.runs.statuses import ACTIVE
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.store.layout import WorkspaceLayout
from jupyter_amltrain.exceptions import UserErrorException

IDLE_SECONDS = 60.0
QUEUE_FALLBACK_SECONDS = 2.0  # a queued run looks at the store at least this often (changes from elsewhere)
CLAIM_SECONDS = 30.0  # a NotStarted run younger than this is still being handed over by its submitter


@dataclass
class _Drive:
    workspace: Path
    run_id: str
    thread: threading.Thread | None = None
    phase: list[str] = field(default_factory=lambda: ["starting"])


class Agent:
    def __init__(self, home: Path, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self.home = Path(home).resolve()
        self.paths = AgentPaths(self.home)
        self.idle_seconds = idle_seconds
        self.started = time.time()
        self._drives: dict[tuple[Path, str], _Drive] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._generation = 0
        self._output = threading.Condition()  # a log line or a status was written: followers look at once
        self._output_generation = 0
        self._last_request = time.monotonic()
        self._stopping = threading.Event()
        self._log_lock = threading.Lock()

    # -- the process ---------------------------------------------------------------------------------------
    def serve(self) -> int:
        """Run until stopped or idle. Returns 0, also when another agent of this home already runs."""
        self.paths.ensure()
        lock_fd = os.open(self.paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another agent owns this home
        tmp = self.paths.pid.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(str(os.getpid()))
        os.replace(tmp, self.paths.pid)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = str(self.paths.socket)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)  # a dead agent's: we hold the lock, so nobody else answers there
        old_umask = os.umask(0o177)
        try:
            listener.bind(address)
        finally:
            os.umask(old_umask)
        listener.listen(64)
        listener.settimeout(1.0)
        self.log(f"agent {os.getpid()} serving {self.home} on {address}")
        try:
            self.adopt_all()
            while not self._stopping.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    if self._idle():
                        self.log("idle: no run to drive and no request; exiting")
                        break
                    continue
                threading.Thread(target=self._serve_connection, args=(connection,), daemon=True,
                                 name="agent-client").start()
        finally:
            with contextlib.suppress(OSError):
                os.unlink(address)
            listener.close()
            with contextlib.suppress(OSError):
                if self.paths.pid.read_text().strip() == str(os.getpid()):
                    self.paths.pid.unlink()
        return 0

    def _idle(self) -> bool:
        with self._lock:
            busy = bool(self._drives)
        return not busy and time.monotonic() - self._last_request > self.idle_seconds

    def log(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        with self._log_lock, open(self.paths.log, "a", encoding="utf-8") as log:
            log.write(f"[{stamp}Z] {message}\n")

    # -- requests -----------------------------------------------------------------------------------------
    def _serve_connection(self, connection: socket.socket) -> None:
        with connection:
            creds = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            _, uid, _ = struct.unpack("3i", creds)
            if uid != os.getuid():
                # The socket's folder is the owner's alone; this is the second lock on the door.
                self.log(f"refused a connection from uid {uid}: this agent serves uid {os.getuid()} only")
                with contextlib.suppress(OSError):
                    send(connection, {"ok": False, "error": f"this agent serves uid {os.getuid()} only"})
                return
            try:
                request = receive(connection)
            except (OSError, ValueError) as error:
                with contextlib.suppress(OSError):
                    send(connection, {"ok": False, "error": f"bad request: {error}"})
                return
            if request is None:
                return
            self._last_request = time.monotonic()
            if request.get("op") == "follow":
                self._follow(connection, request)  # type: ignore[arg-type]
                return
            try:
                answer = self.handle(request)  # type: ignore[arg-type]
            except Exception as error:
                self.log("request failed:\n" + traceback.format_exc())
                answer = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            with contextlib.suppress(OSError):
                send(connection, answer)
            if request.get("op") == "stop":
                self._stopping.set()

    def handle(self, request: Request) -> Answer:
        op = request.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "home": str(self.home), "started": self.started}
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "home": str(self.home), "started": self.started,
                    "runs": self.run_states()}
        if op == "stop":
            return {"ok": True, "pid": os.getpid()}
        if op == "wake":
            self.notify()
            return {"ok": True}
        workspace = self._workspace(request.get("workspace", ""))
        if op == "run":
            run_id = str(request.get("run_id", ""))
            self.drive(workspace, run_id, secrets=dict(request.get("secrets") or {}), recover=False)
            return {"ok": True, "pid": os.getpid()}
        if op == "adopt":
            return {"ok": True, "pid": os.getpid(), "adopted": self.adopt(workspace)}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def _workspace(self, value: str) -> Path:
        root = Path(value).resolve()
        if root.parent != self.home / "workspaces" or not (root / "workspace.db").exists():
            raise ValueError(f"{value!r} is not a workspace of {self.home}")
        return root

    # -- runs -----------------------------------------------------------------------------------------------
    def run_states(self) -> list[RunState]:
        with self._lock:
            return [{"workspace": str(d.workspace), "run_id": d.run_id, "phase": d.phase[0]}
                    for d in self._drives.values()]

    def drive(self, workspace: Path, run_id: str, *, secrets: dict[str, str], recover: bool) -> bool:
        """Carry ``run_id`` in a thread of its own; False when a thread already does."""
        key = (workspace, run_id)
        with self._lock:
            if key in self._drives:
                return False
            drive = _Drive(workspace, run_id)
            self._drives[key] = drive
        drive.thread = threading.Thread(target=self._drive, args=(drive, secrets, recover), daemon=True,
                                        name=f"run-{run_id}")
        drive.thread.start()
        self.notify()
        return True

    def _drive(self, drive: _Drive, secrets: dict[str, str], recover: bool) -> None:
        from jupyter_amltrain.engine.runs.supervisor import Supervisor, fail_unplanned

        try:
            layout = WorkspaceLayout(drive.workspace)
            if not (layout.run_dir(drive.run_id) / "plan.json").exists():
                fail_unplanned(Store(layout.database), drive.run_id)
                return
            supervisor = Supervisor(drive.workspace, drive.run_id, secrets,
                                    wait_for_change=self.wait_for_change, change_token=self.change_token,
                                    changed=self.notify,
                                    published=self.publish,
                                    owner_pid=os.getpid())
            supervisor.main(recover=recover)
        except Exception:
            self.log(f"run {drive.run_id} failed in the agent:\n{traceback.format_exc()}")
        finally:
            with self._lock:
                self._drives.pop((drive.workspace, drive.run_id), None)
            self.notify()  # a node or GPUs may be free: the head of each queue looks again
            self.publish()  # its final status: followers end

    def publish(self) -> None:
        """Something a follower shows was written (a log chunk, a status): wake the followers."""
        with self._output:
            self._output_generation += 1
            self._output.notify_all()

    def _follow(self, connection: socket.socket, request: Request) -> None:
        """Stream a run's status changes and new log text to one subscriber until the run ends (see
        ``engine/runs/follow.py``). The files are read, so a late or returning subscriber gets everything from
        its offsets; a write here wakes the stream at once, and a slow timer covers the job processes that
        write their log themselves."""
        from jupyter_amltrain.engine.runs.follow import FALLBACK_POLL_SECONDS, Offsets, run_events

        try:
            workspace = self._workspace(request.get("workspace", ""))
            run_id = str(request.get("run_id", ""))
            WorkspaceLayout(workspace).run_dir(run_id)  # a valid run id, or refused here
        except (ValueError, UserErrorException) as error:
            with contextlib.suppress(OSError):
                send(connection, {"ok": False, "error": str(error)})
            return
        offsets = Offsets({str(k): int(v) for k, v in (request.get("offsets") or {}).items()})

        def token() -> int:
            with self._output:
                return self._output_generation

        def wait(seen: int) -> None:
            with self._output:
                self._output.wait_for(lambda: self._output_generation != seen or self._stopping.is_set(),
                                      timeout=FALLBACK_POLL_SECONDS)

        try:
            send(connection, {"ok": True, "pid": os.getpid()})
            for event in run_events(WorkspaceLayout(workspace), run_id, offsets, token=token, wait=wait):
                connection.sendall(json.dumps({"event": asdict(event)}).encode() + b"\n")
                if self._stopping.is_set():
                    return
        except OSError:
            return  # the subscriber left

    def notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def change_token(self) -> int:
        with self._changed:
            return self._generation

    def wait_for_change(self, timeout: float, token: int) -> None:
        """Block until something that may move a queue happened here since ``token`` (``change_token()``), or
        ``timeout`` (what other processes change in the store)."""
        with self._changed:
            self._changed.wait_for(lambda: self._generation != token or self._stopping.is_set(),
                                   timeout=min(timeout, QUEUE_FALLBACK_SECONDS))

    def adopt_all(self) -> list[str]:
        adopted: list[str] = []
        for database in sorted((self.home / "workspaces").glob("*/workspace.db")):
            with contextlib.suppress(Exception):
                adopted += self.adopt(database.parent)
        return adopted

    def adopt(self, workspace: Path) -> list[str]:
        """Drive every active run of ``workspace`` that nothing drives: runs of a dead agent, or of a process
        that submitted them and died before handing them over."""
        from jupyter_amltrain.engine.runs.recovery import run_is_driven_elsewhere

        store = Store(WorkspaceLayout(workspace).database)
        adopted = []
        now = time.time()
        try:
            placeholders = ",".join("?" * len(ACTIVE))
            rows = store.query(f"SELECT run_id, supervisor_pid, status, created FROM runs "
                               f"WHERE status IN ({placeholders})", ACTIVE)
            for row in rows:
                run_id = row["run_id"]
                if (workspace, run_id) in self._drives:
                    continue
                if row["status"] == "NotStarted" and now - row["created"] < CLAIM_SECONDS:
                    continue  # its submitter is about to hand it over
                if run_is_driven_elsewhere(row["supervisor_pid"], run_id, own_pid=os.getpid()):
                    continue
                if self.drive(workspace, run_id, secrets={}, recover=True):
                    self.log(f"adopted run {run_id} ({row['status']}) of {workspace.name}")
                    adopted.append(run_id)
        finally:
            store.close()
        return adopted


def run_agent(home: Path, *, idle_seconds: float = IDLE_SECONDS) -> int:
    return Agent(home, idle_seconds=idle_seconds).serve()
