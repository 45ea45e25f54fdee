"""Booking node slots (and their GPUs) for runs, first come first served, across processes.

Every decision that books happens inside one ``BEGIN IMMEDIATE`` transaction, so two supervisors in
different processes can never book the same node or GPU. A cheap read without the lock comes first, so the
many supervisors of a long queue poll without queueing on the write lock.

The queue of each compute is strictly FIFO: only its head may book, and a head that needs more GPUs than
are free waits, and every run behind it waits too, even one that would fit. Nobody is overtaken, so a
4-GPU run is never starved by a stream of 1-GPU runs. A GPU is never booked twice: free GPUs are those no
live run of this workspace holds, whatever its compute (two computes may share GPUs), and, with host
leases, no live run of another workspace under the same store home.

The ``local`` target has no node limit: runs that ask for no GPU start at once, side by side, as in v1;
runs that ask for GPUs (``Experiment.submit(..., gpus=N)``) queue FIFO for the host's GPUs.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from jupyter_amltrain.engine.compute.gpus import GpuInventory
from jupyter_amltrain.engine.compute.leases import HostLeases
from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET, Pool, get_pool
from jupyter_amltrain.engine.runs.statuses import TERMINAL, sql_list
from jupyter_amltrain.engine.store.db import Store, dumps, loads
from jupyter_amltrain.exceptions import ComputeTargetException

_LIVE = f"status NOT IN {sql_list(TERMINAL)}"


@dataclass(frozen=True)
class Booking:
    node: int
    gpus: tuple[int, ...]


@dataclass(frozen=True)
class Waiting:
    ahead: int
    reason: str


@dataclass(frozen=True)
class _Demand:
    target: str
    max_nodes: int | None      # None: no node limit (the local target)
    want: int                  # GPUs this run needs
    candidates: tuple[int, ...]  # GPUs it may get, in preference order


def gpus_wanted_by(pool: Pool | None, gpus_wanted: int | None) -> int:
    """How many GPUs a run gets: its own request, else the node default capped at what the pool has."""
    if pool is None:
        return gpus_wanted or 0
    if gpus_wanted is not None:
        return gpus_wanted
    return min(pool.gpus_per_node, len(pool.gpu_ids))


def _demand(store: Store, target: str, gpus_wanted: int | None, inventory: GpuInventory | None) -> _Demand:
    if target == LOCAL_TARGET:
        host = tuple(inventory.ids) if inventory is not None else ()
        return _Demand(target, None, gpus_wanted or 0, host)
    pool = get_pool(store, target)
    if pool is None:
        raise ComputeTargetException(
            f"ComputeTargetNotFound: Compute Target with name {target} not found in provided workspace"
        )
    candidates = pool.gpu_ids
    if inventory is not None:  # a GPU that vanished since the pool was made is never handed out
        candidates = tuple(gpu for gpu in candidates if gpu in set(inventory.ids))
    return _Demand(target, pool.max_nodes, gpus_wanted_by(pool, gpus_wanted), tuple(candidates))


def gpus_held(db: sqlite3.Connection) -> set[int]:
    """GPUs held by live runs of this workspace, on any compute."""
    rows = db.execute(f"SELECT gpus FROM runs WHERE node IS NOT NULL AND gpus != '[]' AND {_LIVE}").fetchall()
    return {int(gpu) for row in rows for gpu in loads(row[0], [])}


def _decide(db: sqlite3.Connection, run: sqlite3.Row, demand: _Demand) -> Booking | Waiting:
    what = "GPU" if demand.want else "node"
    if run["status"] in TERMINAL or run["cancel_requested"]:
        return Waiting(0, "canceled")
    if demand.max_nodes is None and not demand.want:
        return Booking(0, ())
    ahead = db.execute(
        f"SELECT COUNT(*) FROM runs WHERE target = ? AND node IS NULL AND queue_seq < ? AND {_LIVE}",
        (demand.target, run["queue_seq"]),
    ).fetchone()[0]
    if ahead:
        return Waiting(ahead, f"waiting for a {what}, {ahead} ahead")
    node = 0
    if demand.max_nodes is not None:
        used = {row[0] for row in db.execute(
            f"SELECT node FROM runs WHERE target = ? AND node IS NOT NULL AND {_LIVE}", (demand.target,))}
        free_nodes = [n for n in range(demand.max_nodes) if n not in used]
        if not free_nodes:
            busy = f"all {demand.max_nodes} node(s) busy" if demand.want else f"all {demand.max_nodes} busy"
            return Waiting(0, f"waiting for a {what}: {busy}")
        node = free_nodes[0]
    if not demand.want:
        return Booking(node, ())
    held = gpus_held(db)
    free = [gpu for gpu in demand.candidates if gpu not in held]
    if len(free) < demand.want:
        return Waiting(0, f"waiting for a GPU: {len(free)} free, {demand.want} needed")
    return Booking(node, tuple(free[: demand.want]))


def try_book(store: Store, run_id: str, gpus_wanted: int | None = None, *, inventory: GpuInventory | None = None,
             leases: HostLeases | None = None) -> Booking | Waiting:
    """Book a node (and GPUs) for ``run_id`` if it is its turn and they are free; else say why it waits.

    ``inventory``: the host's GPUs, needed for GPU requests on the local target and to skip GPUs that
    vanished; ``leases``: the host-wide lease table, so another workspace's runs are respected too."""
    run = store.query_one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    if run is None:
        raise ComputeTargetException(f"Run {run_id} vanished from the store while waiting for a node.")
    if run["node"] is not None:
        return Booking(run["node"], tuple(loads(run["gpus"], [])))
    demand = _demand(store, run["target"], gpus_wanted, inventory)
    first_look = _decide(store.db, run, demand)  # without the lock: most polls of a long queue end here
    if isinstance(first_look, Waiting):
        return first_look
    with store.write() as db:
        run = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if run["node"] is not None:
            return Booking(run["node"], tuple(loads(run["gpus"], [])))
        decision = _decide(db, run, demand)
        if isinstance(decision, Waiting):
            return decision
        if decision.gpus and leases is not None:
            held = gpus_held(db)
            free = [gpu for gpu in demand.candidates if gpu not in held]
            chosen = leases.acquire(free, demand.want, run_id, held)
            if chosen is None:
                return Waiting(0, f"waiting for a GPU: {demand.want} needed, the free ones are held by runs of "
                                  "another workspace")
            decision = Booking(decision.node, chosen)
        if demand.max_nodes is None and not decision.gpus:  # a plain local run: no queue, nothing to record
            db.execute("UPDATE runs SET node = 0 WHERE run_id = ?", (run_id,))
        else:
            _record_booking(db, run, decision)
        return decision


def _record_booking(db: sqlite3.Connection, run: sqlite3.Row, booking: Booking) -> None:
    # The history row is written in the booking transaction, so the order of these rows is the order in
    # which runs got their node: the queue's real order, which tests and users can check.
    sub_status = f"booked node {booking.node}" + (f" with GPUs {list(booking.gpus)}" if booking.gpus else "")
    status = run["status"] if run["status"] != "NotStarted" else "Queued"
    now = time.time()
    db.execute("UPDATE runs SET node = ?, gpus = ?, status = ?, sub_status = ? WHERE run_id = ?",
               (booking.node, dumps(list(booking.gpus)), status, sub_status, run["run_id"]))
    db.execute("INSERT INTO run_status_history(run_id, status, sub_status, time) VALUES (?, ?, ?, ?)",
               (run["run_id"], status, sub_status, now))


def next_queue_seq(db_conn: object, target: str) -> int:
    row = db_conn.execute(  # type: ignore[attr-defined]
        "SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM runs WHERE target = ?", (target,)
    ).fetchone()
    return int(row[0])


def booking_order(store: Store, target: str) -> list[str]:
    """Run ids of ``target`` in the order they were booked: history rows written under the write lock, so
    their rowids follow the commits."""
    rows = store.query(
        """SELECT h.run_id FROM run_status_history h JOIN runs r ON r.run_id = h.run_id
           WHERE r.target = ? AND h.sub_status LIKE 'booked node %' ORDER BY h.rowid""", (target,))
    return [row[0] for row in rows]

