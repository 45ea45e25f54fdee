"""GPU inventory, booking and the FIFO queue, on a real store (no Docker): exact allocation, strict FIFO,
no GPU booked twice (across computes, workspaces and racing processes), and the submit-time refusals."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path

import pytest

from jupyter_amltrain.engine.compute.admission import check_gpu_request
from jupyter_amltrain.engine.compute.gpus import (
    GpuInfo,
    GpuInventory,
    declared_inventory,
    gpu_inventory,
    parse_declared,
    resolve_inventory,
)
from jupyter_amltrain.engine.compute.leases import HostLeases
from jupyter_amltrain.engine.compute.pools import create_pool
from jupyter_amltrain.engine.compute.scheduler import Booking, Waiting, booking_order, try_book
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.backends.base import gpu_environment
from jupyter_amltrain.engine.settings import load_settings
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.exceptions import ComputeTargetException, DockerEngineException, UserErrorException

FOUR = declared_inventory((0, 1, 2, 3))


@pytest.fixture(autouse=True)
def _no_host_visibility(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "AMLTRAIN_DECLARED_GPUS"):
        monkeypatch.delenv(var, raising=False)


def _pool(store: Store, name: str, *, per_node: int, max_nodes: int, gpu_ids: list[int] | None = None,
          inventory: GpuInventory = FOUR) -> None:
    create_pool(store, name, vm_size="STANDARD_NC6", gpus_per_node=per_node, max_nodes=max_nodes, gpu_ids=gpu_ids,
                inventory=inventory)


def _run(store: Store, target: str) -> str:
    record = records.create_run(store, experiment="exp", target=target, definition={}, snapshot_id=None,
                                properties={}, tags={}, warnings=[])
    records.set_status(store, record.run_id, "Queued", "waiting for a node")
    return record.run_id


def _done(store: Store, run_id: str) -> None:
    assert records.set_status(store, run_id, "Completed")


# -- inventory ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "ids"), [
    ("0,1,2,3", (0, 1, 2, 3)), ("2", (2,)), ("0", (0,)), (2, (0, 1)), ([3, 1], (1, 3)), ("3,", (3,)), ("", ()),
    (None, ()), (" 2 , 5 ", (2, 5)),
])
def test_declared_inventory_takes_ids_like_cuda_visible_devices_or_a_count(value: object, ids: tuple[int, ...]) -> None:
    assert parse_declared(value) == ids


@pytest.mark.parametrize("value", ["a,b", "-1", "1,1", True, "0,-2", [0, "x"], -2])
def test_a_bad_declared_inventory_says_how_to_write_one(value: object) -> None:
    with pytest.raises(ComputeTargetException, match='AMLTRAIN_DECLARED_GPUS="0,1,2,3"'):
        parse_declared(value)


def test_host_visible_devices_restrict_the_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    assert declared_inventory((0, 1, 2, 3)).ids == [1, 3]
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "void")  # NVIDIA's variable is read first
    assert declared_inventory((0, 1, 2, 3)).ids == []
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "DECLARED-GPU-2")  # a UUID works as well as an index
    assert declared_inventory((0, 1, 2, 3)).ids == [2]
    monkeypatch.setenv("NVIDIA_VISIBLE_DEVICES", "all")
    assert declared_inventory((0, 1, 2, 3)).ids == [1, 3]


def test_declared_inventory_is_refused_when_nvml_finds_real_gpus() -> None:
    real = [GpuInfo(index=0, uuid="GPU-5f1d", name="NVIDIA H200", memory_total_bytes=141 * 1024**3)]
    with pytest.raises(ComputeTargetException, match=r"NVML found real GPUs.*0: NVIDIA H200.*unset AMLTRAIN_DECLARED"):
        resolve_inventory((0, 1), real)
    assert resolve_inventory((), real).ids == [0] and not resolve_inventory((), real).declared


def test_inventory_comes_from_the_setting_or_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine has no NVML: without a declaration the inventory is empty, never an error.
    assert gpu_inventory(load_settings()).ids == []
    inventory = gpu_inventory(load_settings(declared_gpus=[0, 1]))
    assert inventory.declared and inventory.ids == [0, 1]
    assert inventory.describe() == "declared GPU inventory in use: 0,1 (no real GPUs)"
    monkeypatch.setenv("AMLTRAIN_DECLARED_GPUS", "0,1,2")
    assert gpu_inventory().ids == [0, 1, 2]


def test_jobs_get_exactly_their_gpus_in_their_environment() -> None:
    real = GpuInventory((GpuInfo(0, "GPU-aaa", "A", 0), GpuInfo(1, "GPU-bbb", "B", 0),
                         GpuInfo(2, "GPU-ccc", "C", 0)))
    container = gpu_environment([1, 2], real, container=True)
    assert container["CUDA_VISIBLE_DEVICES"] == "0,1"  # a container sees only its devices, from 0
    assert container["NVIDIA_VISIBLE_DEVICES"] == "GPU-bbb,GPU-ccc" and container["AMLTRAIN_GPU_IDS"] == "1,2"
    process = gpu_environment([2], real, container=False)
    assert process["CUDA_VISIBLE_DEVICES"] == "2" and process["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert gpu_environment([], real, container=False) == {"CUDA_VISIBLE_DEVICES": ""}  # none of the host's GPUs
    assert gpu_environment([], real, container=True)["NVIDIA_VISIBLE_DEVICES"] == "void"
    declared = gpu_environment([3], FOUR, container=True)
    assert declared["CUDA_VISIBLE_DEVICES"] == "0" and declared["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert gpu_environment([], GpuInventory(), container=False) == {}


# -- booking --------------------------------------------------------------------------------------------------
def test_each_node_books_its_own_gpus_and_the_rest_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "gpu4", per_node=2, max_nodes=2)
    first, second, third, fourth = (_run(store, "gpu4") for _ in range(4))
    assert try_book(store, first, inventory=FOUR) == Booking(0, (0, 1))
    assert try_book(store, second, inventory=FOUR) == Booking(1, (2, 3))
    assert try_book(store, third, inventory=FOUR) == Waiting(0, "waiting for a GPU: all 2 node(s) busy")
    assert try_book(store, fourth, inventory=FOUR) == Waiting(1, "waiting for a GPU, 1 ahead")
    assert try_book(store, first, inventory=FOUR) == Booking(0, (0, 1))  # asking again changes nothing
    _done(store, second)
    assert try_book(store, fourth, inventory=FOUR) == Waiting(1, "waiting for a GPU, 1 ahead")
    assert try_book(store, third, inventory=FOUR) == Booking(1, (2, 3))
    assert booking_order(store, "gpu4") == [first, second, third]
    history = [h["subStatus"] for h in records.status_history(store, third)]
    assert "booked node 1 with GPUs [2, 3]" in history


def test_the_queue_is_strict_fifo_even_when_a_later_run_would_fit(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "gpu4", per_node=1, max_nodes=4)
    big, bigger, small = (_run(store, "gpu4") for _ in range(3))
    assert try_book(store, big, 3, inventory=FOUR) == Booking(0, (0, 1, 2))
    assert try_book(store, bigger, 2, inventory=FOUR) == Waiting(0, "waiting for a GPU: 1 free, 2 needed")
    # GPU 3 is free and would do for `small`, but it came later: it waits, so `bigger` is never starved.
    assert try_book(store, small, 1, inventory=FOUR) == Waiting(1, "waiting for a GPU, 1 ahead")
    _done(store, big)
    assert try_book(store, bigger, 2, inventory=FOUR) == Booking(0, (0, 1))
    assert try_book(store, small, 1, inventory=FOUR) == Booking(1, (2,))


def test_cancelling_a_queued_run_takes_it_out_of_the_queue(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "one", per_node=1, max_nodes=1, gpu_ids=[2])
    holder, canceled, next_one = (_run(store, "one") for _ in range(3))
    assert try_book(store, holder, inventory=FOUR) == Booking(0, (2,))
    assert try_book(store, next_one, inventory=FOUR) == Waiting(1, "waiting for a GPU, 1 ahead")
    assert records.request_cancel(store, canceled) == "Canceled"
    assert try_book(store, canceled, inventory=FOUR) == Waiting(0, "canceled")
    assert try_book(store, next_one, inventory=FOUR) == Waiting(0, "waiting for a GPU: all 1 node(s) busy")
    _done(store, holder)
    assert try_book(store, next_one, inventory=FOUR) == Booking(0, (2,))


def test_a_gpu_is_never_booked_twice_across_computes(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "pool-a", per_node=1, max_nodes=2, gpu_ids=[0, 1])
    _pool(store, "pool-b", per_node=2, max_nodes=1, gpu_ids=[0, 1])
    a = _run(store, "pool-a")
    b = _run(store, "pool-b")
    assert try_book(store, a, inventory=FOUR) == Booking(0, (0,))
    assert try_book(store, b, inventory=FOUR) == Waiting(0, "waiting for a GPU: 1 free, 2 needed")
    _done(store, a)
    assert try_book(store, b, inventory=FOUR) == Booking(0, (0, 1))


def test_runs_may_ask_for_other_gpu_counts_and_the_local_target_queues_only_gpu_runs(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "gpu4", per_node=2, max_nodes=3)
    cpu_only, one = _run(store, "gpu4"), _run(store, "gpu4")
    assert try_book(store, cpu_only, 0, inventory=FOUR) == Booking(0, ())
    assert try_book(store, one, 1, inventory=FOUR) == Booking(1, (0,))
    local_gpu, local_gpu_2, local_cpu = _run(store, "local"), _run(store, "local"), _run(store, "local")
    assert try_book(store, local_gpu, 3, inventory=FOUR) == Booking(0, (1, 2, 3))
    assert try_book(store, local_gpu_2, 1, inventory=FOUR) == Waiting(0, "waiting for a GPU: 0 free, 1 needed")
    assert try_book(store, local_cpu, inventory=FOUR) == Booking(0, ())  # CPU runs on local never wait


def test_a_gpu_that_vanished_from_the_host_is_never_handed_out(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "gpu2", per_node=1, max_nodes=2, gpu_ids=[0, 1])
    run = _run(store, "gpu2")
    assert try_book(store, run, inventory=declared_inventory((1,))) == Booking(0, (1,))


def test_workspaces_under_one_home_never_share_a_gpu(tmp_path: Path) -> None:
    leases = tmp_path / "gpu-leases.db"
    store_a, store_b = Store(tmp_path / "a" / "workspace.db"), Store(tmp_path / "b" / "workspace.db")
    for store in (store_a, store_b):
        _pool(store, "gpu2", per_node=1, max_nodes=2, gpu_ids=[0, 1])
    a = _run(store_a, "gpu2")
    b, b2 = _run(store_b, "gpu2"), _run(store_b, "gpu2")
    lease_a, lease_b = HostLeases(leases, store_a.path), HostLeases(leases, store_b.path)
    assert try_book(store_a, a, inventory=FOUR, leases=lease_a) == Booking(0, (0,))
    assert try_book(store_b, b, inventory=FOUR, leases=lease_b) == Booking(0, (1,))
    waiting = try_book(store_b, b2, inventory=FOUR, leases=lease_b)
    assert isinstance(waiting, Waiting) and "another workspace" in waiting.reason
    _done(store_a, a)  # a lease dies with its run: no release step to forget
    assert try_book(store_b, b2, inventory=FOUR, leases=lease_b) == Booking(1, (0,))
    assert lease_a.holders() == {0: (str(store_b.path.resolve()), b2), 1: (str(store_b.path.resolve()), b)}


def _race(db_path: str, run_ids: list[str], seed: int) -> None:
    store = Store(Path(db_path))
    order = list(run_ids)
    random.Random(seed).shuffle(order)
    for _ in range(3):  # every process asks for every run, in its own order, a few times
        for run_id in order:
            try_book(store, run_id, inventory=FOUR)


def test_racing_processes_book_each_gpu_once_and_in_queue_order(tmp_path: Path) -> None:
    # Four computes share GPUs 0-3: the heads of four queues race for the same devices, from six processes.
    store = Store(tmp_path / "ws.db")
    pools = ["pool-a", "pool-b", "pool-c", "pool-d"]
    for name in pools:
        _pool(store, name, per_node=1, max_nodes=4)
    queues = {name: [_run(store, name) for _ in range(5)] for name in pools}
    run_ids = [run_id for queue in queues.values() for run_id in queue]
    context = multiprocessing.get_context("fork")
    finished: list[str] = []
    for _wave in range(5):
        workers = [context.Process(target=_race, args=(str(store.path), run_ids, seed)) for seed in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
            assert worker.exitcode == 0
        live = [r for r in (records.get_run(store, i) for i in run_ids) if r and r.node is not None and not r.terminal]
        assert sorted(g for r in live for g in r.gpus) == [0, 1, 2, 3]  # all four booked, none twice
        for queue in queues.values():  # each compute's booked runs are the head of its queue
            booked = [run_id for run_id in queue if run_id in {r.run_id for r in live} | set(finished)]
            assert booked == queue[: len(booked)]
        for record in live:
            _done(store, record.run_id)
            finished.append(record.run_id)
    assert sorted(finished) == sorted(run_ids)


# -- refused at submit ----------------------------------------------------------------------------------------
def test_requests_the_host_can_never_satisfy_are_refused_with_the_fix(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    _pool(store, "gpu2", per_node=1, max_nodes=2, gpu_ids=[2, 3])
    with pytest.raises(ComputeTargetException, match=r"asks for 3 GPU\(s\) but compute 'gpu2' has 2 \(\[2, 3\]\)"):
        check_gpu_request(store, "gpu2", 3, inventory=FOUR, use_docker=True)
    with pytest.raises(ComputeTargetException, match=r"GPU\(s\) \[3\] do not exist.*Create the compute again"):
        check_gpu_request(store, "gpu2", None, inventory=declared_inventory((0, 1, 2)), use_docker=True)
    with pytest.raises(ComputeTargetException, match="AMLTRAIN_DECLARED_GPUS"):
        check_gpu_request(store, "local", 1, inventory=GpuInventory(), use_docker=False)
    for bad in (True, -1, "2", 1.5):
        with pytest.raises(UserErrorException, match="gpus=1"):
            check_gpu_request(store, "gpu2", bad, inventory=FOUR, use_docker=True)  # type: ignore[arg-type]
    assert check_gpu_request(store, "gpu2", None, inventory=FOUR, use_docker=True) == 1
    assert check_gpu_request(store, "gpu2", 0, inventory=FOUR, use_docker=True) == 0


def test_real_gpus_without_the_nvidia_container_runtime_are_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    real = GpuInventory((GpuInfo(0, "GPU-aaa", "A", 0),))
    _pool(store, "gpu1", per_node=1, max_nodes=1, inventory=real)
    with pytest.raises(DockerEngineException, match=r"no NVIDIA container runtime.*nvidia-ctk runtime configure"):
        check_gpu_request(store, "gpu1", None, inventory=real, use_docker=True, nvidia_support=lambda: None)
    assert check_gpu_request(store, "gpu1", None, inventory=real, use_docker=True,
                             nvidia_support=lambda: "nvidia runtime") == 1
    assert check_gpu_request(store, "gpu1", 0, inventory=real, use_docker=True, nvidia_support=lambda: None) == 0
