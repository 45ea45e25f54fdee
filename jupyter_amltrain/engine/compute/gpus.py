"""The host's GPUs as NVML reports them. No NVML library or no GPU gives an empty list, never an error."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory_total_bytes: int


def _visible_filter() -> set[str] | None:
    """Host-level NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES restrict what we may hand out."""
    for var in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is None or value.strip() in ("", "all"):
            continue
        if value.strip() in ("none", "void"):
            return set()
        return {part.strip() for part in value.split(",") if part.strip()}
    return None


def detect_gpus() -> list[GpuInfo]:
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: a host without GPUs
        return []
    try:
        found: list[GpuInfo] = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            name = pynvml.nvmlDeviceGetName(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append(
                GpuInfo(
                    index=index,
                    uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    name=name.decode() if isinstance(name, bytes) else str(name),
                    memory_total_bytes=int(memory.total),
                )
            )
    except Exception:
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    allowed = _visible_filter()
    if allowed is None:
        return found
    return [gpu for gpu in found if str(gpu.index) in allowed or gpu.uuid in allowed]
