"""Live GPU readings from NVML. No NVML or no GPU: an empty list, never an error."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GpuSample:
    index: int
    uuid: str
    name: str
    utilization_pct: float
    memory_used_bytes: int
    memory_total_bytes: int
    temperature_c: float | None
    power_w: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def sample_gpus() -> list[GpuSample]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return []
    samples: list[GpuSample] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            temperature = power = None
            with contextlib.suppress(Exception):
                temperature = float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
            with contextlib.suppress(Exception):
                power = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            samples.append(GpuSample(
                index=index, uuid=_text(pynvml.nvmlDeviceGetUUID(handle)), name=_text(pynvml.nvmlDeviceGetName(handle)),
                utilization_pct=float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                memory_used_bytes=int(memory.used), memory_total_bytes=int(memory.total),
                temperature_c=temperature, power_w=power,
            ))
    except Exception:
        return samples
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return samples
