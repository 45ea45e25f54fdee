"""``amltrain doctor``: is this machine ready to train? Each check says what it found and, when something is
missing, the fix. Python: ``jupyter_amltrain.doctor()`` (prints the report) or ``run_checks()`` here.

Checks: the Docker engine, the GPUs (NVML, or a declared inventory), the NVIDIA container runtime (needed
only when there are real GPUs), free disk space for the store and Docker's images, and the default base
image that runs fall back to when Azure ML's images can not be pulled.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jupyter_amltrain.exceptions import AzureMLException

OK, WARNING, ERROR, SKIPPED = "ok", "warning", "error", "skipped"
GIB = 1024**3
DISK_ERROR_GIB = 2.0     # below this an image build or a run's outputs will likely fail
DISK_WARNING_GIB = 10.0  # a CUDA base image alone is 5 to 10 GiB
DOCKER_FIX = ("Start the Docker engine (`sudo systemctl start docker`, or `sudo dockerd &`), make sure your user "
              "may use /var/run/docker.sock (`sudo usermod -aG docker $USER`, then log in again) or set DOCKER_HOST; "
              "`sudo bash scripts/setup.sh` installs and starts it.")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str        # ok | warning | error | skipped
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def _docker(factory: Callable[[], Any] | None) -> tuple[Any, CheckResult]:
    try:
        if factory is not None:
            client = factory()
        else:
            import docker

            client = docker.from_env(timeout=15)
        client.ping()
        version = client.version()
    except Exception as exc:
        return None, CheckResult("Docker engine", ERROR, f"not reachable ({exc})", DOCKER_FIX)
    return client, CheckResult("Docker engine", OK, f"Docker {version.get('Version', '?')} answering "
                                                    f"(API {version.get('ApiVersion', '?')})")


def _gpus(settings: Any) -> tuple[Any, CheckResult]:
    from jupyter_amltrain.engine.compute.gpus import DECLARED_ENV, gpu_inventory, visible_filter

    try:
        inventory = gpu_inventory(settings)
    except AzureMLException as exc:
        return None, CheckResult("GPUs", ERROR, str(exc), f"unset {DECLARED_ENV} (or the declared_gpus setting)")
    restricted = visible_filter()
    note = f"; restricted by NVIDIA_VISIBLE_DEVICES/CUDA_VISIBLE_DEVICES to {sorted(restricted)}" if restricted else ""
    if inventory.declared:
        return inventory, CheckResult(
            "GPUs", WARNING, f"{inventory.describe()}{note}: runs book them on paper and get no device",
            f"fine for CI on machines without GPUs; unset {DECLARED_ENV} on a machine with GPUs")
    if not inventory:
        return inventory, CheckResult(
            "GPUs", WARNING, f"no GPU visible to NVML{note}: runs use the CPU",
            "on a GPU machine install the NVIDIA driver (`nvidia-smi` must list the GPUs) and nvidia-ml-py; "
            f"check NVIDIA_VISIBLE_DEVICES/CUDA_VISIBLE_DEVICES of this process; CI without GPUs: set {DECLARED_ENV}")
    described = []
    for gpu in inventory.gpus:
        mig = f", MIG: {len(gpu.mig_devices)} instance(s)" if gpu.mig_devices else ""
        described.append(f"{gpu.index}: {gpu.name} ({gpu.memory_total_bytes / GIB:.0f} GiB, {gpu.uuid}{mig})")
    return inventory, CheckResult("GPUs", OK, f"{len(described)} GPU(s){note}: " + "; ".join(described))


def _nvidia_runtime(client: Any, inventory: Any) -> CheckResult:
    from jupyter_amltrain.engine.compute.admission import NVIDIA_FIX
    from jupyter_amltrain.engine.compute.nvidia_docker import nvidia_support

    if client is None:
        return CheckResult("NVIDIA container runtime", SKIPPED, "the Docker engine is not reachable")
    how = nvidia_support(client)
    if inventory is None or not inventory or inventory.declared:
        found = f"present ({how})" if how else "absent"
        return CheckResult("NVIDIA container runtime", OK, f"not needed without real GPUs ({found})")
    if how is None:
        return CheckResult("NVIDIA container runtime", ERROR,
                           "the Docker engine can not hand GPUs to containers: runs on GPUs would be refused",
                           NVIDIA_FIX)
    return CheckResult("NVIDIA container runtime", OK, f"GPUs reach containers through the {how}")


def _free(path: Path) -> tuple[Path, float] | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate, shutil.disk_usage(candidate).free / GIB
    return None


def _disk(settings: Any, client: Any) -> CheckResult:
    places = {"store home": Path(settings.home).expanduser()}
    if client is not None:
        try:
            places["Docker's data"] = Path(client.info().get("DockerRootDir") or "/var/lib/docker")
        except Exception:
            pass
    seen: dict[str, str] = {}
    worst = OK
    for label, path in places.items():
        measured = _free(path)
        if measured is None:
            continue
        where, free = measured
        seen[label] = f"{label} {where}: {free:.1f} GiB free"
        level = ERROR if free < DISK_ERROR_GIB else WARNING if free < DISK_WARNING_GIB else OK
        worst = max(worst, level, key=(OK, WARNING, ERROR).index)
    detail = "; ".join(seen.values()) or "no place to measure"
    fix = "" if worst == OK else (
        f"free space (at least {DISK_WARNING_GIB:g} GiB): `docker image prune`, `docker builder prune`, and old "
        f"runs under {places['store home']}/workspaces/*/runs")
    return CheckResult("Disk space", worst, detail, fix)


def _default_image(client: Any) -> CheckResult:
    from jupyter_amltrain.engine.images.base_image import local_base_image
    from jupyter_amltrain.engine.images.registry import image_present

    image = local_base_image()
    if client is None:
        return CheckResult("Default image", SKIPPED, f"{image}: the Docker engine is not reachable")
    try:
        present = image_present(client, image)
    except Exception as exc:
        return CheckResult("Default image", ERROR, f"{image}: could not ask Docker ({exc})", DOCKER_FIX)
    if present:
        return CheckResult("Default image", OK, f"{image} present")
    return CheckResult("Default image", ERROR, f"{image} missing: runs on Azure ML base images have no fallback",
                       "`amltrain prepare` builds it offline (about a minute, once)")


def run_checks(settings: Any = None, *, docker_client_factory: Callable[[], Any] | None = None) -> list[CheckResult]:
    if settings is None:
        from jupyter_amltrain.engine.settings import load_settings

        settings = load_settings()
    client, docker_result = _docker(docker_client_factory)
    inventory, gpu_result = _gpus(settings)
    return [docker_result, gpu_result, _nvidia_runtime(client, inventory), _disk(settings, client),
            _default_image(client)]


def format_report(results: list[CheckResult]) -> str:
    marks = {OK: "ok", WARNING: "WARNING", ERROR: "ERROR", SKIPPED: "skipped"}
    lines = []
    for result in results:
        lines.append(f"[{marks.get(result.status, result.status):>7}] {result.name}: {result.detail}")
        if result.fix:
            lines.append(f"          fix: {result.fix}")
    errors = sum(1 for r in results if r.status == ERROR)
    lines.append("Ready." if not errors else f"{errors} problem(s) to fix before training here.")
    return "\n".join(lines)


def report_json(results: list[CheckResult]) -> str:
    return json.dumps([r.to_json() for r in results], indent=1)


def healthy(results: list[CheckResult]) -> bool:
    return not any(r.status == ERROR for r in results)
