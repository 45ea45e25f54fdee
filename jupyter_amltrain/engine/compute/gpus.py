"""The host's GPUs: what NVML reports, or a declared inventory on machines without GPUs.

``gpu_inventory()`` is the one place pools, booking and backends learn which GPUs exist. It reads NVML
(``nvidia-ml-py``); no NVML library, no driver or no GPU gives an empty inventory, never an error. The
host's ``NVIDIA_VISIBLE_DEVICES`` / ``CUDA_VISIBLE_DEVICES`` restrict what may be handed out.

A *declared* inventory (setting ``declared_gpus`` or ``AMLTRAIN_DECLARED_GPUS="0,1,2,3"``) stands in for
GPUs on CPU-only machines, so the allocator and the queue run for real in CI: runs book declared GPUs and
containers get the ``CUDA_VISIBLE_DEVICES`` they would have had, without device requests. It is refused
when NVML finds real GPUs, so it can never hide or double-book a real device.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jupyter_amltrain.exceptions import ComputeTargetException

DECLARED_ENV = "AMLTRAIN_DECLARED_GPUS"
DECLARED_UUID_PREFIX = "DECLARED-GPU-"


@dataclass(frozen=True)
class MigDevice:
    index: int
    uuid: str
    name: str
    memory_total_bytes: int


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    name: str
    memory_total_bytes: int
    mig_devices: tuple[MigDevice, ...] = ()
    declared: bool = False


@dataclass(frozen=True)
class GpuInventory:
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)
    declared: bool = False

    @property
    def ids(self) -> list[int]:
        return [gpu.index for gpu in self.gpus]

    def __bool__(self) -> bool:
        return bool(self.gpus)

    def uuids(self, indices: Iterable[int]) -> list[str]:
        by_index = {gpu.index: gpu.uuid for gpu in self.gpus}
        return [by_index.get(index, str(index)) for index in indices]

    def describe(self) -> str:
        """The line every user of a declared inventory writes to its log."""
        ids = ",".join(str(i) for i in self.ids) or "none"
        if self.declared:
            return f"declared GPU inventory in use: {ids} (no real GPUs)"
        return f"GPUs found by NVML: {ids}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_filter() -> set[str] | None:
    """Host-level NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES: the GPUs we may hand out (None: all)."""
    for var in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is None or value.strip() in ("", "all"):
            continue
        if value.strip() in ("none", "void", "-1"):
            return set()
        return {part.strip() for part in value.split(",") if part.strip()}
    return None


def _allowed(gpu: GpuInfo, allowed: set[str] | None) -> bool:
    if allowed is None:
        return True
    # An entry is an index or a UUID; CUDA also accepts a unique UUID prefix ("GPU-8f6b").
    return str(gpu.index) in allowed or any(entry and gpu.uuid.startswith(entry) for entry in allowed
                                            if not entry.isdigit())


def _mig_devices(pynvml: Any, handle: Any) -> tuple[MigDevice, ...]:
    with contextlib.suppress(Exception):
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
        if current != pynvml.NVML_DEVICE_MIG_ENABLE:
            return ()
        found = []
        for slot in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
            try:
                mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
            except Exception:  # empty slot
                continue
            found.append(MigDevice(index=slot, uuid=_text(pynvml.nvmlDeviceGetUUID(mig)),
                                   name=_text(pynvml.nvmlDeviceGetName(mig)),
                                   memory_total_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(mig).total)))
        return tuple(found)
    return ()


def detect_gpus() -> list[GpuInfo]:
    """Real GPUs only, through NVML, filtered by the host's visible-devices variables."""
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
            found.append(GpuInfo(
                index=index, uuid=_text(pynvml.nvmlDeviceGetUUID(handle)), name=_text(pynvml.nvmlDeviceGetName(handle)),
                memory_total_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                mig_devices=_mig_devices(pynvml, handle),
            ))
    except Exception:
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    allowed = visible_filter()
    return [gpu for gpu in found if _allowed(gpu, allowed)]


def parse_declared(value: object) -> tuple[int, ...]:
    """Text is a list of ids, as in CUDA_VISIBLE_DEVICES (``"0,1,2,3"``, ``"2"``); so is a list
    (``[0, 1]``); a number (``4``, from JSON configuration) is a count: ids 0 to 3. Empty: none."""
    if value is None or value == "" or value == []:
        return ()
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            if value < 0:
                raise ValueError
            ids = list(range(value))
        elif isinstance(value, str):
            ids = [int(part) for part in value.split(",") if part.strip()]
        else:
            ids = [int(v) for v in value]  # type: ignore[attr-defined]
        if any(i < 0 for i in ids) or len(set(ids)) != len(ids):
            raise ValueError
    except (TypeError, ValueError):
        raise ComputeTargetException(
            f"declared_gpus={value!r} is not a GPU list: use ids separated by commas, as in CUDA_VISIBLE_DEVICES "
            f"({DECLARED_ENV}=\"0,1,2,3\"), or a count in JSON configuration (4 means GPUs 0 to 3), with no "
            "negative or repeated id."
        ) from None
    return tuple(sorted(ids))


def declared_inventory(ids: Iterable[int]) -> GpuInventory:
    gpus = tuple(GpuInfo(index=i, uuid=f"{DECLARED_UUID_PREFIX}{i}", name="declared GPU (no device)",
                         memory_total_bytes=0, declared=True) for i in ids)
    allowed = visible_filter()
    return GpuInventory(tuple(gpu for gpu in gpus if _allowed(gpu, allowed)), declared=True)


def resolve_inventory(declared: tuple[int, ...], real: list[GpuInfo]) -> GpuInventory:
    """The declared inventory when there is one and no real GPU; the real one otherwise."""
    if declared and real:
        raise ComputeTargetException(
            f"A declared GPU inventory ({','.join(map(str, declared))}) is set, but NVML found real GPUs "
            f"({', '.join(f'{g.index}: {g.name}' for g in real)}). Declared GPUs are for machines without GPUs "
            f"only: unset {DECLARED_ENV} (or the declared_gpus setting) to use the real ones."
        )
    if declared:
        return declared_inventory(declared)
    return GpuInventory(tuple(real), declared=False)


def gpu_inventory(settings: Any = None) -> GpuInventory:
    """The GPUs runs may book on this host. Raises only for a declared inventory on a host with real GPUs."""
    if settings is None:
        from jupyter_amltrain.engine.settings import load_settings

        settings = load_settings()
    # The variable is read now, not when the settings were loaded: it is what supervisors inherit.
    value = os.environ[DECLARED_ENV] if DECLARED_ENV in os.environ else getattr(settings, "declared_gpus", None)
    declared = parse_declared(value)
    return resolve_inventory(declared, detect_gpus())
