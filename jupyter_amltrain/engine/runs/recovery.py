"""Making sure every active run is driven: by the agent of its store home (``engine/agent``).

``recover_orphans`` is called whenever a workspace is opened, so a run orphaned by a crash (of the agent, or of
a process that submitted it and died before handing it over) is finished by whoever looks next.
``ensure_supervised`` does the same for one run, and is what anything that waits on a run calls while it waits
(``wait_for_completion``, the RunDetails widget, ``%aml_logs --follow``, the server's log stream): a waiter that
only read the store would wait forever on a run whose agent was killed.

Both go through the agent: it is started when none runs, and it adopts the workspace's undriven runs. The agent
is one process holding a lock, so any number of processes looking at once can never start two drivers of a run.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import warnings
from pathlib import Path

from jupyter_amltrain.engine.agent.client import AgentUnavailable, adopt_orphans, warm_agent
from jupyter_amltrain.engine.agent.paths import AgentPaths, agent_pid
from jupyter_amltrain.engine.runs.statuses import ACTIVE
from jupyter_amltrain.engine.store.disk import is_disk_full
from jupyter_amltrain.engine.workspace import LocalWorkspace

CLAIM_SECONDS = 30.0  # a NotStarted run younger than this is still being handed over by its submitter
# How often a waiter looks at its run's supervisor: a killed one is replaced within about this long, and a look
# costs one indexed row read and two small /proc reads (~0.1 ms), so waiters can afford it.
SUPERVISION_CHECK_SECONDS = 2.0
# A supervisor this process started that died again is not replaced by this process sooner than this: a
# supervisor that can not start (its disk is full, its Python is broken) must not be respawned every check.
RESTART_BACKOFF_SECONDS = 30.0

_checks_lock = threading.Lock()
_last_check: dict[tuple[str, str], float] = {}   # (workspace root, run id) -> monotonic time of the last look
_last_takeover: dict[tuple[str, str], float] = {}


def run_is_driven_elsewhere(pid: int | None, run_id: str, *, own_pid: int) -> bool:
    """True when another live process drives ``run_id``: a per-run supervisor of an earlier version (its command
    line names the run). The agent of the home is ``own_pid`` when the agent asks, and otherwise found by
    ``run_is_driven``."""
    if not pid or pid < 0 or pid == own_pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return run_id.encode() in cmdline.read()  # a reused pid runs something else
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def run_is_driven(ws: LocalWorkspace, pid: int | None, run_id: str) -> bool:
    """Whether the process recorded as driving ``run_id`` lives: the agent of the store home, or an old
    per-run supervisor."""
    agent = agent_pid(AgentPaths(Path(ws.settings.home).resolve()))
    return (agent is not None and pid == agent) or run_is_driven_elsewhere(pid, run_id, own_pid=-1)


def _take_over(ws: LocalWorkspace, row: sqlite3.Row, now: float) -> bool:
    """Have the agent adopt the active run ``row`` if nothing drives it; True when it was taken up now."""
    run_id = row["run_id"]
    if row["status"] == "NotStarted" and now - row["created"] < CLAIM_SECONDS:
        return False  # still being submitted: its hand-over to the agent may not have happened yet
    if run_is_driven(ws, row["supervisor_pid"], run_id):
        return False
    return run_id in adopt_orphans(Path(ws.settings.home), ws.root)


def ensure_supervised(ws: LocalWorkspace, run_id: str, *, every: float = SUPERVISION_CHECK_SECONDS) -> bool:
    """Give run ``run_id`` a new supervisor if it is still active and its supervisor died; True when this call
    started one.

    Meant to be called on every poll of a loop that waits on the run: it looks at most once per ``every``
    seconds for a (workspace, run) in this process and returns at once otherwise (``every=0`` looks now).
    Nothing is raised for a store that can not take the claim because its disk is full: the run is left as it
    is and the next look tries again.
    """
    key = (str(ws.root), run_id)
    tick = time.monotonic()
    with _checks_lock:
        if every > 0 and tick - _last_check.get(key, float("-inf")) < every:
            return False
        if tick - _last_takeover.get(key, float("-inf")) < RESTART_BACKOFF_SECONDS:
            return False
        _last_check[key] = tick
    row = ws.store.query_one(
        "SELECT run_id, status, supervisor_pid, created FROM runs WHERE run_id = ?", (run_id,))
    if row is None or row["status"] not in ACTIVE:
        with _checks_lock:
            _last_check.pop(key, None)
            _last_takeover.pop(key, None)
        return False
    try:
        started = _take_over(ws, row, time.time())
    except (sqlite3.Error, OSError) as exc:
        if is_disk_full(exc):
            return False  # a supervisor could not record anything either; look again once space is freed
        raise
    if started:
        with _checks_lock:
            _last_takeover[key] = time.monotonic()
    return started


def recover_orphans(ws: LocalWorkspace) -> list[str]:
    """Have the agent drive every active run of ``ws`` that nothing drives; returns the runs it took up now.
    With nothing to take up, the agent is still started in the background, so the next submit finds it warm.

    Reading a workspace must work whatever happens here: when the agent cannot be started (a full disk, a
    broken interpreter), recovery is skipped with a warning and tried again at the next look.
    """
    now = time.time()
    home = Path(ws.settings.home)
    orphans = [row["run_id"] for row in ws.store.query(
        f"SELECT run_id, supervisor_pid, status, created FROM runs WHERE status IN ({','.join('?' * len(ACTIVE))})",
        ACTIVE,
    ) if not (row["status"] == "NotStarted" and now - row["created"] < CLAIM_SECONDS)
        and not run_is_driven(ws, row["supervisor_pid"], row["run_id"])]
    if not orphans:
        warm_agent(home)
        return []
    try:
        adopted = adopt_orphans(home, ws.root)
    except (AgentUnavailable, sqlite3.Error, OSError) as exc:
        warnings.warn(
            f"Runs of workspace {ws.name} ({ws.root}) lost the process that drove them, and the agent that takes "
            f"them up could not be started ({exc}). They are taken up the next time the workspace is opened or a "
            "run is waited on.", RuntimeWarning, stacklevel=2)
        return []
    return [run_id for run_id in orphans if run_id in adopted]
