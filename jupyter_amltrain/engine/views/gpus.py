"""The host's GPUs for a live monitor: one NVML reading each, with the run holding it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jupyter_amltrain.engine.compute.telemetry import GpuSample, sample_gpus
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.views.runs import gpu_holders


@dataclass(frozen=True)
class GpuReading:
    sample: GpuSample
    holder: str | None  # id of the live run that booked this GPU

    def to_json(self) -> dict[str, Any]:
        return {**self.sample.to_json(), "holder": self.holder}


def gpu_readings(store: Store | None) -> list[GpuReading]:
    """Every host GPU NVML sees, with the run holding it (when a workspace store is given); an empty list on
    a host without GPUs."""
    samples = sample_gpus()
    if not samples:
        return []
    holders = gpu_holders(store) if store is not None else {}
    return [GpuReading(sample, holders.get(sample.index)) for sample in samples]
