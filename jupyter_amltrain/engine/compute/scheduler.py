"""Booking node slots (and their GPUs) for runs, first come first served, across processes.

Every decision happens inside one ``BEGIN IMMEDIATE`` transaction, so two supervisors in different
processes can never book the same node or GPU, and only the head of a target's queue may take a free node.
"""

from __future__ import annotations

from dataclasses import dataclass

from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET, TERMINAL, get_pool
from jupyter_amltrain.engine.store.db import Store, dumps, loads
from jupyter_amltrain.exceptions import ComputeTargetException


@dataclass(frozen=True)
class Booking:
    node: int
    gpus: tuple[int, ...]


@dataclass(frozen=True)
class Waiting:
    ahead: int
    reason: str


def try_book(store: Store, run_id: str, gpus_wanted: int | None = None) -> Booking | Waiting:
    with store.write() as db:
        run = db.execute("SELECT target, node, gpus, queue_seq FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if run is None:
            raise ComputeTargetException(f"Run {run_id} vanished from the store while waiting for a node.")
        if run["node"] is not None:
            return Booking(run["node"], tuple(loads(run["gpus"], [])))
        target = run["target"]
        if target == LOCAL_TARGET:
            # The local target has no node limit (v1 runs local jobs side by side).
            db.execute("UPDATE runs SET node = 0 WHERE run_id = ?", (run_id,))
            return Booking(0, ())
        pool = get_pool(store, target)
        if pool is None:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: Compute Target with name {target} not found in provided workspace"
            )
        ahead = db.execute(
            f"""SELECT COUNT(*) FROM runs WHERE target = ? AND node IS NULL AND queue_seq < ?
                AND status NOT IN {TERMINAL}""",
            (target, run["queue_seq"]),
        ).fetchone()[0]
        if ahead:
            return Waiting(ahead, f"waiting for a node, {ahead} ahead")
        holders = db.execute(
            f"SELECT node, gpus FROM runs WHERE target = ? AND node IS NOT NULL AND status NOT IN {TERMINAL}",
            (target,),
        ).fetchall()
        used_nodes = {row["node"] for row in holders}
        free_nodes = [n for n in range(pool.max_nodes) if n not in used_nodes]
        if not free_nodes:
            return Waiting(0, f"waiting for a node: all {pool.max_nodes} busy")
        held = {gpu for row in holders for gpu in loads(row["gpus"], [])}
        want = pool.gpus_per_node if gpus_wanted is None else gpus_wanted
        free_gpus = [gpu for gpu in pool.gpu_ids if gpu not in held]
        if want and pool.gpu_ids and len(free_gpus) < min(want, len(pool.gpu_ids)):
            return Waiting(0, f"waiting for a GPU: {len(free_gpus)} free, {want} needed")
        gpus = tuple(free_gpus[: min(want, len(free_gpus))]) if want else ()
        db.execute("UPDATE runs SET node = ?, gpus = ? WHERE run_id = ?", (free_nodes[0], dumps(list(gpus)), run_id))
        return Booking(free_nodes[0], gpus)


def next_queue_seq(db_conn: object, target: str) -> int:
    row = db_conn.execute(  # type: ignore[attr-defined]
        "SELECT COALESCE(MAX(queue_seq), 0) + 1 FROM runs WHERE target = ?", (target,)
    ).fetchone()
    return int(row[0])
