"""Computes as a dashboard shows them: each pool's node slots with the run on each, and its FIFO queue.

One query for every live run of the workspace, whatever the number of computes. The ``local`` target is
listed too (it has no node limit, so its "nodes" are simply the runs it is running side by side).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET, list_pools
from jupyter_amltrain.engine.runs.statuses import TERMINAL, sql_list
from jupyter_amltrain.engine.store.db import Store, loads


@dataclass(frozen=True)
class NodeSlot:
    index: int
    run_id: str | None = None
    status: str | None = None
    gpus: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class QueuedRun:
    run_id: str
    experiment: str
    status: str
    sub_status: str
    created: float


@dataclass(frozen=True)
class ComputeSummary:
    name: str
    kind: str                  # "AmlCompute" | "local"
    vm_size: str | None
    min_nodes: int
    max_nodes: int | None      # None: no node limit (local)
    gpus_per_node: int
    gpu_ids: list[int]
    state: str
    nodes: list[NodeSlot]
    queue: list[QueuedRun]     # head first

    @property
    def busy(self) -> int:
        return sum(1 for node in self.nodes if node.run_id is not None)

    @property
    def idle(self) -> int | None:
        return None if self.max_nodes is None else self.max_nodes - self.busy

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "busy": self.busy, "idle": self.idle}


def list_compute_summaries(store: Store) -> list[ComputeSummary]:
    """Every compute pool of the workspace, then ``local``."""
    live = store.query(
        f"""SELECT run_id, experiment, status, sub_status, target, node, gpus, queue_seq, created FROM runs
            WHERE status NOT IN {sql_list(TERMINAL)} ORDER BY queue_seq, created"""
    )
    by_target: dict[str, list[Any]] = {}
    for row in live:
        by_target.setdefault(row["target"], []).append(row)

    def queue_of(rows: list[Any]) -> list[QueuedRun]:
        return [QueuedRun(r["run_id"], r["experiment"], r["status"], r["sub_status"], r["created"])
                for r in rows if r["node"] is None]

    summaries: list[ComputeSummary] = []
    for pool in list_pools(store):
        rows = by_target.get(pool.name, [])
        holders = {r["node"]: r for r in rows if r["node"] is not None}
        nodes = [
            NodeSlot(index, holders[index]["run_id"], holders[index]["status"], loads(holders[index]["gpus"], []))
            if index in holders else NodeSlot(index)
            for index in range(pool.max_nodes)
        ]
        summaries.append(ComputeSummary(
            name=pool.name, kind="AmlCompute", vm_size=pool.vm_size, min_nodes=pool.min_nodes,
            max_nodes=pool.max_nodes, gpus_per_node=pool.gpus_per_node, gpu_ids=list(pool.gpu_ids),
            state=pool.provisioning_state, nodes=nodes, queue=queue_of(rows),
        ))
    rows = by_target.get(LOCAL_TARGET, [])
    # Local runs all book node 0 (there is no limit to share), so number them by order of start instead.
    running = [r for r in rows if r["node"] is not None]
    summaries.append(ComputeSummary(
        name=LOCAL_TARGET, kind="local", vm_size=None, min_nodes=0, max_nodes=None, gpus_per_node=0,
        gpu_ids=[], state="Succeeded",
        nodes=[NodeSlot(i, r["run_id"], r["status"], loads(r["gpus"], [])) for i, r in enumerate(running)],
        queue=queue_of(rows),
    ))
    return summaries
