"""Compute pools in the store: a pool is ``max_nodes`` local node slots, each with its share of GPUs."""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass

from jupyter_amltrain.engine.compute.gpus import GpuInventory, gpu_inventory
from jupyter_amltrain.engine.compute.sizes import gpus_for_vm_size
from jupyter_amltrain.engine.runs.statuses import EXECUTING, TERMINAL, sql_list
from jupyter_amltrain.engine.store.db import Store, dumps, loads
from jupyter_amltrain.exceptions import ComputeTargetException, UserErrorException

LOCAL_TARGET = "local"
RESERVED_NAMES = frozenset({"amlcompute", "local", "containerinstance"})
COMPUTE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9\-]{1,23}$")


@dataclass(frozen=True)
class Pool:
    name: str
    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds: int
    gpus_per_node: int
    gpu_ids: tuple[int, ...]
    tags: dict[str, str]
    description: str | None
    provisioning_state: str
    created: float
    modified: float


@dataclass(frozen=True)
class PoolUsage:
    running: int
    preparing: int
    queued: int

    def idle(self, pool: Pool) -> int:
        return max(pool.max_nodes - self.running - self.preparing, 0)


def check_compute_name(name: str) -> str:
    if not isinstance(name, str) or name.lower() in RESERVED_NAMES:
        raise UserErrorException(f"Please specify a different target name. {name} is a reserved name.")
    if not COMPUTE_NAME.match(name):
        raise UserErrorException(
            f"Compute name {name!r} is invalid: use 2 to 24 characters, letters, digits and hyphens, starting "
            "with a letter (for example 'gpu-cluster')."
        )
    return name


def _row_to_pool(r: sqlite3.Row) -> Pool:
    return Pool(
        name=r["name"], vm_size=r["vm_size"], vm_priority=r["vm_priority"], min_nodes=r["min_nodes"],
        max_nodes=r["max_nodes"], idle_seconds=r["idle_seconds"], gpus_per_node=r["gpus_per_node"],
        gpu_ids=tuple(loads(r["gpu_ids"], [])), tags=loads(r["tags"], {}), description=r["description"],
        provisioning_state=r["provisioning_state"], created=r["created"], modified=r["modified"],
    )


def create_pool(
    store: Store,
    name: str,
    *,
    vm_size: str,
    vm_priority: str = "dedicated",
    min_nodes: int = 0,
    max_nodes: int = 4,
    idle_seconds: int = 1800,
    gpus_per_node: int | None = None,
    gpu_ids: list[int] | None = None,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    inventory: GpuInventory | None = None,
) -> tuple[Pool, list[str]]:
    """Create or update a pool; returns it with warnings to show (e.g. no GPU on this host)."""
    check_compute_name(name)
    if max_nodes is None or max_nodes < 0:
        raise ComputeTargetException(
            "Invalid provisioning configuration, max nodes count must be greater than or equal to 0"
        )
    if min_nodes < 0 or min_nodes > max_nodes:
        raise ComputeTargetException(
            "Invalid provisioning configuration, max nodes count must be greater than or equal to min nodes count"
        )
    per_node = gpus_for_vm_size(vm_size) if gpus_per_node is None else int(gpus_per_node)
    if per_node < 0:
        raise ComputeTargetException(f"gpus_per_node must be 0 or more, got {per_node}.")
    warnings: list[str] = []
    host = gpu_inventory() if inventory is None else inventory
    host_ids = host.ids
    if host.declared:
        warnings.append(f"{host.describe()}: compute '{name}' books these GPUs on paper; its containers get no "
                        "device.")
    if gpu_ids is not None:
        if isinstance(gpu_ids, (str, bytes)) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                        for i in gpu_ids):
            raise ComputeTargetException(f"gpu_ids must be a list of GPU indices such as [0, 1]; got {gpu_ids!r}.")
        unknown = sorted(set(gpu_ids) - set(host_ids))
        if unknown and host_ids:
            raise ComputeTargetException(
                f"GPU ids {unknown} do not exist on this host (it has {host_ids}). Pass gpu_ids from that list."
            )
        if unknown:
            raise ComputeTargetException(
                f"GPU ids {unknown} were requested but this host has no GPU visible to NVML. Drop gpu_ids, or "
                "install the NVIDIA driver."
            )
        ids = sorted(set(gpu_ids))
    else:
        ids = host_ids
    if per_node and not ids:
        warnings.append(
            f"This host has no GPU (NVML found none): compute '{name}' with vm_size {vm_size} "
            f"({per_node} GPU per node) will run its jobs on the CPU."
        )
    elif per_node and len(ids) < per_node:
        warnings.append(
            f"Compute '{name}' wants {per_node} GPUs per node but only {len(ids)} are available; each node "
            f"gets at most {len(ids)}."
        )
    now = time.time()
    with store.write() as db:
        db.execute(
            """INSERT INTO computes(name, type, vm_size, vm_priority, min_nodes, max_nodes, idle_seconds,
                   gpus_per_node, gpu_ids, tags, description, provisioning_state, created, modified)
               VALUES (?, 'AmlCompute', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'Succeeded', ?, ?)
               ON CONFLICT(name) DO UPDATE SET vm_size=excluded.vm_size, vm_priority=excluded.vm_priority,
                   min_nodes=excluded.min_nodes, max_nodes=excluded.max_nodes,
                   idle_seconds=excluded.idle_seconds, gpus_per_node=excluded.gpus_per_node,
                   gpu_ids=excluded.gpu_ids, tags=excluded.tags, description=excluded.description,
                   modified=excluded.modified""",
            (name, vm_size, vm_priority, min_nodes, max_nodes, idle_seconds, per_node, dumps(ids),
             dumps(tags or {}), description, now, now),
        )
    pool = get_pool(store, name)
    assert pool is not None
    return pool, warnings


def get_pool(store: Store, name: str) -> Pool | None:
    row = store.query_one("SELECT * FROM computes WHERE name = ?", (name,))
    return None if row is None else _row_to_pool(row)


def list_pools(store: Store) -> list[Pool]:
    return [_row_to_pool(row) for row in store.query("SELECT * FROM computes ORDER BY name")]


def update_pool(store: Store, name: str, **changes: int) -> Pool:
    allowed = {"min_nodes", "max_nodes", "idle_seconds"}
    pool = get_pool(store, name)
    if pool is None:
        raise ComputeTargetException(
            f"ComputeTargetNotFound: Compute Target with name {name} not found in provided workspace"
        )
    fields = {key: value for key, value in changes.items() if key in allowed and value is not None}
    merged = {"min_nodes": pool.min_nodes, "max_nodes": pool.max_nodes, **fields}
    if merged["min_nodes"] > merged["max_nodes"]:
        raise ComputeTargetException(
            "Invalid provisioning configuration, max nodes count must be greater than or equal to min nodes count"
        )
    if fields:
        sets = ", ".join(f"{key} = ?" for key in fields)
        with store.write() as db:
            db.execute(
                f"UPDATE computes SET {sets}, modified = ? WHERE name = ?", (*fields.values(), time.time(), name)
            )
    updated = get_pool(store, name)
    assert updated is not None
    return updated


def delete_pool(store: Store, name: str) -> None:
    with store.write() as db:
        live = db.execute(
            f"SELECT COUNT(*) FROM runs WHERE target = ? AND status NOT IN {sql_list(TERMINAL)}", (name,)
        ).fetchone()[0]
        if live:
            raise ComputeTargetException(
                f"Compute '{name}' still has {live} active run(s). Cancel them (run.cancel()) or wait for them "
                "to finish, then delete the compute."
            )
        db.execute("DELETE FROM computes WHERE name = ?", (name,))


def pool_usage(store: Store, name: str) -> PoolUsage:
    rows = store.query(
        f"""SELECT status, node FROM runs WHERE target = ? AND status NOT IN {sql_list(TERMINAL)}""", (name,)
    )
    holding = [r["status"] for r in rows if r["node"] is not None]
    running = sum(1 for status in holding if status in EXECUTING)
    preparing = len(holding) - running
    queued = sum(1 for r in rows if r["node"] is None)
    return PoolUsage(running=running, preparing=preparing, queued=queued)
