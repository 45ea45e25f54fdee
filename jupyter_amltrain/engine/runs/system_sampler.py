"""The thread in a run's supervisor that samples the job's GPUs, CPU and memory while it runs.

Every ``system_metrics_interval`` seconds: NVML readings of the GPUs the run holds, and the CPU and memory
of its container (cgroup files) or process tree (``/proc``). Readings are buffered and written every few
seconds in one transaction, so sampling costs microseconds of CPU and the store one write per flush. The
sampler measures its own CPU time (``time.thread_time``) and reports it in the control log at the end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from jupyter_amltrain.engine.compute.telemetry import GpuReader
from jupyter_amltrain.engine.compute.usage import Usage
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.tracking.system_metrics import Reading, record_system_metrics

FLUSH_SECONDS = 5.0


class UsageSource(Protocol):
    def read(self) -> Usage: ...


@dataclass(frozen=True)
class SamplerReport:
    samples: int
    cpu_seconds: float          # CPU the sampler thread itself used, flushes included
    interval: float

    @property
    def per_sample_ms(self) -> float:
        return 1000.0 * self.cpu_seconds / self.samples if self.samples else 0.0

    @property
    def core_share(self) -> float:
        """Fraction of one core the sampler takes at its interval."""
        return (self.per_sample_ms / 1000.0) / self.interval if self.interval else 0.0

    def describe(self) -> str:
        return (f"system metrics: {self.samples} samples every {self.interval:g} s; the sampler used "
                f"{self.per_sample_ms:.3f} ms of CPU per sample ({100 * self.core_share:.3f}% of a core)")


class DockerStatsUsage:
    """Fallback when the container's cgroup can not be read here (a remote daemon): ``docker stats``,
    one to two seconds per reading, so samples come that much slower."""

    def __init__(self, container: Any):
        self.container = container

    def read(self) -> Usage:
        stats = self.container.stats(stream=False)
        memory = stats.get("memory_stats") or {}
        inner = memory.get("stats") or {}
        used = int(memory.get("usage", 0)) - int(inner.get("total_inactive_file", inner.get("inactive_file", 0)))
        return Usage(cpu_seconds=int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9,
                     memory_bytes=max(used, 0), memory_limit_bytes=memory.get("limit"))


class SystemSampler:
    def __init__(self, store: Store, run_id: str, *, interval: float, gpu_uuids: dict[int, str],
                 usage: UsageSource | None, control: Callable[[str], None]):
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self.usage = usage
        self.control = control
        self.gpus = GpuReader(gpu_uuids)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._buffer: list[Reading] = []
        self._previous: tuple[float, float] | None = None  # (monotonic time, cpu seconds) of the last reading
        self._samples = 0
        self._cpu = 0.0

    def start(self) -> SystemSampler:
        if self.usage is not None:  # a first reading, so the first sample already has a CPU rate
            try:
                self._previous = (time.monotonic(), self.usage.read().cpu_seconds)
            except Exception:
                self.usage = None
        if self.interval > 0:
            self._thread = threading.Thread(target=self._loop, name="amltrain-sampler", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.wait(self.interval):
            began = time.thread_time()
            self.sample()
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                self.flush()
                last_flush = time.monotonic()
            self._cpu += time.thread_time() - began

    def sample(self) -> None:
        now, tick = time.time(), time.monotonic()
        if self.usage is not None:
            try:
                usage = self.usage.read()
            except Exception as exc:  # the container or process is gone: its end is the watcher's business
                self.control(f"system metrics: CPU and memory readings stopped ({exc})")
                self.usage = None
            else:
                if self._previous is not None and tick > self._previous[0]:
                    busy = (usage.cpu_seconds - self._previous[1]) / (tick - self._previous[0])
                    self._buffer.append((now, "cpu_utilization_percentage", None, round(100.0 * max(busy, 0.0), 2)))
                self._previous = (tick, usage.cpu_seconds)
                self._buffer.append((now, "memory_usage_bytes", None, float(usage.memory_bytes)))
        self._buffer.extend((now, name, gpu, value) for gpu, name, value in self.gpus.read())
        self._samples += 1

    def flush(self) -> None:
        buffer, self._buffer = self._buffer, []
        with contextlib.suppress(Exception):  # a busy or closing store must never take the run down
            record_system_metrics(self.store, self.run_id, buffer)

    def stop(self) -> SamplerReport:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        began = time.thread_time()
        self.flush()
        self._cpu += time.thread_time() - began
        self.gpus.close()
        return SamplerReport(samples=self._samples, cpu_seconds=self._cpu, interval=self.interval)
