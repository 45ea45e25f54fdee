"""System metrics: kernel readings of a process tree, the sampler that stores them, the query that reads them
back, and the upgrade that gives an older store their table."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyter_amltrain.engine.compute.usage import ProcessTreeUsage
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.system_sampler import SamplerReport, SystemSampler
from jupyter_amltrain.engine.store.db import SCHEMA_VERSION, Store
from jupyter_amltrain.engine.tracking.query import get_metrics
from jupyter_amltrain.engine.tracking.system_metrics import get_system_metrics, record_system_metrics

# A launcher-like parent whose child burns CPU and holds 64 MB: what a local-process run looks like.
TREE = """
import subprocess, sys, time
code = ("b = bytearray(64 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\n"
        "print('ready', flush=True)\\nwhile True: sum(range(1000))")
child = subprocess.Popen([sys.executable, "-c", code], stdout=sys.stdout)
child.wait()
"""


@pytest.fixture
def busy_tree() -> Iterator[subprocess.Popen[str]]:
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
    yield parent
    import os
    import signal

    os.killpg(parent.pid, signal.SIGKILL)
    parent.wait(timeout=30)


def _run(store: Store) -> str:
    return records.create_run(store, experiment="exp", target="local", definition={}, snapshot_id=None,
                              properties={}, tags={}, warnings=[]).run_id


def test_a_process_tree_is_read_whole_from_proc(busy_tree: subprocess.Popen[str]) -> None:
    usage = ProcessTreeUsage(busy_tree.pid)
    first = usage.read()
    assert first.memory_bytes > 64 * 2**20  # the child's 64 MB count: the whole tree is read, not the parent
    deadline = time.monotonic() + 60
    while usage.read().cpu_seconds <= first.cpu_seconds:  # the busy child's CPU time accrues to the tree
        assert time.monotonic() < deadline, "the busy child's CPU time never showed"
        time.sleep(0.05)


def test_samples_are_stored_apart_from_user_metrics(tmp_path: Path, busy_tree: subprocess.Popen[str]) -> None:
    store = Store(tmp_path / "ws.db")
    run_id = _run(store)
    messages: list[str] = []
    sampler = SystemSampler(store, run_id, interval=0, gpu_uuids={}, usage=ProcessTreeUsage(busy_tree.pid),
                            control=messages.append).start()  # interval 0: no thread, we sample by hand
    for _ in range(3):
        time.sleep(0.05)
        sampler.sample()
    report = sampler.stop()
    metrics = get_system_metrics(store, run_id)
    assert set(metrics) == {"cpu_utilization_percentage", "memory_usage_bytes"}
    assert len(metrics["memory_usage_bytes"]["value"]) == 3 and min(metrics["memory_usage_bytes"]["value"]) > 64e6
    assert len(metrics["cpu_utilization_percentage"]["time"]) == 3
    assert get_metrics(store, run_id) == {}  # user metrics untouched
    assert report.samples == 3 and "ms of CPU per sample" in report.describe()
    assert get_system_metrics(store, run_id, "memory_usage_bytes").keys() == {"memory_usage_bytes"}


def test_the_sampler_thread_samples_until_stopped_and_survives_a_vanished_job(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    run_id = _run(store)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    messages: list[str] = []
    sampler = SystemSampler(store, run_id, interval=0.02, gpu_uuids={}, usage=ProcessTreeUsage(job.pid),
                            control=messages.append).start()
    deadline = time.monotonic() + 60
    while sampler._samples < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    job.kill()
    job.wait()
    report = sampler.stop()
    assert report.samples >= 3 and get_system_metrics(store, run_id)["memory_usage_bytes"]["value"]


def test_gpu_readings_are_keyed_by_host_gpu(tmp_path: Path) -> None:
    store = Store(tmp_path / "ws.db")
    run_id = _run(store)
    record_system_metrics(store, run_id, [(1.0, "utilization_percentage", 2, 87.0), (1.0, "power_watts", 2, 312.5),
                                          (2.0, "utilization_percentage", 2, 91.0), (1.0, "cpu_utilization_percentage",
                                                                                     None, 99.0)])
    assert get_system_metrics(store, run_id) == {
        "gpu_2_utilization_percentage": {"time": [1.0, 2.0], "value": [87.0, 91.0]},
        "gpu_2_power_watts": {"time": [1.0], "value": [312.5]},
        "cpu_utilization_percentage": {"time": [1.0], "value": [99.0]},
    }


def test_a_store_from_before_system_metrics_gets_their_table_on_open(tmp_path: Path) -> None:
    path = tmp_path / "ws.db"
    old = Store(path)
    run_id = _run(old)
    old.db.execute("DROP TABLE system_metrics")
    old.db.execute("PRAGMA user_version = 1")
    old.close()
    reopened = Store(path)
    assert reopened.query_one("PRAGMA user_version")[0] == SCHEMA_VERSION  # type: ignore[index]
    assert records.get_run(reopened, run_id) is not None  # the old rows are kept
    record_system_metrics(reopened, run_id, [(1.0, "memory_usage_bytes", None, 5.0)])
    assert get_system_metrics(reopened, run_id)["memory_usage_bytes"]["value"] == [5.0]
    with pytest.raises(sqlite3.IntegrityError):  # rows belong to a run
        record_system_metrics(reopened, "no-such-run", [(1.0, "memory_usage_bytes", None, 5.0)])


def test_the_report_states_the_share_of_a_core() -> None:
    report = SamplerReport(samples=10, cpu_seconds=0.005, interval=1.0)
    assert report.per_sample_ms == pytest.approx(0.5) and report.core_share == pytest.approx(0.0005)
    assert "0.050% of a core" in report.describe()
