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


class GpuReader:
    """Readings of a few GPUs, NVML initialised once: ``nvmlInit`` can take tens of milliseconds, far too
    much to pay every second. No NVML, no such GPU, or a reading NVML refuses: nothing for it."""

    def __init__(self, uuids: dict[int, str]):
        self._handles: dict[int, Any] = {}
        self._nvml: Any = None
        if not uuids:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:
            return
        self._nvml = pynvml
        for index, uuid in uuids.items():
            with contextlib.suppress(Exception):
                self._handles[index] = pynvml.nvmlDeviceGetHandleByUUID(uuid)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def read(self) -> list[tuple[int, str, float]]:
        """(host GPU index, reading name, value) for each reading NVML gives now."""
        nvml = self._nvml
        readings: list[tuple[int, str, float]] = []
        for index, handle in self._handles.items():
            with contextlib.suppress(Exception):
                readings.append((index, "utilization_percentage",
                                 float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)))
            with contextlib.suppress(Exception):
                readings.append((index, "memory_usage_bytes", float(nvml.nvmlDeviceGetMemoryInfo(handle).used)))
            with contextlib.suppress(Exception):
                readings.append((index, "temperature_celsius",
                                 float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))))
            with contextlib.suppress(Exception):
                readings.append((index, "power_watts", nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0))
        return readings

    def close(self) -> None:
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.nvmlShutdown()
            self._nvml = None
            self._handles = {}
