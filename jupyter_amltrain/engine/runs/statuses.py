"""A run's statuses: the one list of them (v1's names) and their groupings. Every Python place that names a
group of statuses takes it from here. The faces that are not Python get it from here too: the widgets'
front end is sent ``STATUS_FAMILIES`` by the kernel (widgets/assets.py), the REST API documents ``ALL``
(docs/openapi.yaml), and the JupyterLab extension's one copy (labextension/src/format.ts) is checked against
this module by tests/unit/test_run_statuses.py.

v1 knows a few statuses a local run never takes (Provisioning, NotResponding, Unapproved, Pausing, Paused):
they are not listed, so nothing waits on a status no run can reach.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

RunStatus = Literal["NotStarted", "Queued", "Preparing", "Starting", "Running", "Finalizing", "CancelRequested",
                    "Completed", "Failed", "Canceled"]

# In the order a run passes through them.
LIFECYCLE: tuple[RunStatus, ...] = ("NotStarted", "Queued", "Preparing", "Starting", "Running", "Finalizing")
# v1's RUNNING_STATES: the run has not ended and its job's work is not done.
RUNNING: tuple[RunStatus, ...] = ("NotStarted", "Queued", "Preparing", "Starting", "Running")
# v1's POST_PROCESSING_STATES: the job's work is done or being stopped; the run has not ended yet.
POST_PROCESSING: tuple[RunStatus, ...] = ("Finalizing", "CancelRequested")
ACTIVE: tuple[RunStatus, ...] = (*RUNNING, *POST_PROCESSING)
TERMINAL: tuple[RunStatus, ...] = ("Completed", "Failed", "Canceled")
ALL: tuple[RunStatus, ...] = (*ACTIVE, *TERMINAL)

# No node booked yet: a cancel ends such a run at once.
WAITING: tuple[RunStatus, ...] = ("NotStarted", "Queued")
# The job's own process is not started yet (it starts in Starting), so it has written no output.
BEFORE_JOB: tuple[RunStatus, ...] = (*WAITING, "Preparing")
# The job was started on its node and may still be executing there (a cancel of it is still stopping it).
EXECUTING: tuple[RunStatus, ...] = ("Running", "Finalizing", "CancelRequested")

# How a status reads to a user: one colour per family in every view.
Family = Literal["ok", "failed", "canceled", "running", "waiting"]
STATUS_FAMILIES: dict[RunStatus, Family] = {
    "NotStarted": "waiting", "Queued": "waiting", "Preparing": "waiting", "Starting": "waiting",
    "Running": "running", "Finalizing": "running", "CancelRequested": "canceled",
    "Completed": "ok", "Failed": "failed", "Canceled": "canceled",
}


def is_terminal(status: str) -> bool:
    """Whether a run in ``status`` has ended (it never changes again)."""
    return status in TERMINAL


def is_active(status: str) -> bool:
    """Whether a run in ``status`` has not ended yet."""
    return status in ACTIVE


def family(status: str) -> Family:
    """The family ``status`` is shown in (an unknown status waits)."""
    return STATUS_FAMILIES.get(status, "waiting")  # type: ignore[call-overload]


def sql_list(statuses: Iterable[RunStatus]) -> str:
    """``statuses`` as an SQL list, ``('Completed', 'Failed', 'Canceled')``, for ``status [NOT] IN``. The names
    are this module's constants, never user input, so they are written into the statement."""
    names = list(statuses)
    if not names or any(name not in STATUS_FAMILIES for name in names):
        raise ValueError(f"not a list of run statuses: {names!r}")
    return "(" + ", ".join(f"'{name}'" for name in names) + ")"
