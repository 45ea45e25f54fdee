"""What a run may ask of the host's GPUs, checked at submit, so a bad request is an error with its fix
there and then, never a queued run that can not start or a container that fails later."""

from __future__ import annotations

from collections.abc import Callable

from jupyter_amltrain.engine.compute.gpus import DECLARED_ENV, GpuInventory
from jupyter_amltrain.engine.compute.pools import LOCAL_TARGET, get_pool
from jupyter_amltrain.engine.compute.scheduler import gpus_wanted_by
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.exceptions import ComputeTargetException, DockerEngineException, UserErrorException

NVIDIA_FIX = (
    "Install the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/), "
    "then `sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker`; or submit with "
    "gpus=0 to run on the CPU."
)


def check_gpus_wanted(gpus: object) -> int | None:
    if gpus is None:
        return None
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise UserErrorException(
            f"gpus={gpus!r} is not a GPU count: pass a whole number such as gpus=1 (0 runs on the CPU), or leave it "
            "out to get the compute's GPUs per node."
        )
    return gpus


def check_gpu_request(store: Store, target: str, gpus_wanted: int | None, *, inventory: GpuInventory,
                      use_docker: bool, nvidia_support: Callable[[], str | None] | None = None) -> int:
    """Refuse a request the host can never satisfy; returns how many GPUs the run will book.

    ``nvidia_support``: asked only when a container is to get real GPUs; returns how Docker reaches them
    (e.g. ``"nvidia runtime"``) or None when it can not."""
    gpus_wanted = check_gpus_wanted(gpus_wanted)
    host = inventory.ids
    where = "this host" + (" (declared inventory)" if inventory.declared else "")
    if target == LOCAL_TARGET:
        want = gpus_wanted or 0
        if want > len(host):
            raise ComputeTargetException(
                f"The run asks for {want} GPU(s) but {where} has {len(host)} ({host or 'none visible to NVML'}). "
                "Ask for at most that many, or drop gpus= to run on the CPU"
                + ("." if host else f" (CI without GPUs: set {DECLARED_ENV}).")
            )
        candidates = host
    else:
        pool = get_pool(store, target)
        if pool is None:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: Compute Target with name {target} not found in provided workspace"
            )
        missing = sorted(set(pool.gpu_ids) - set(host))
        if missing:
            raise ComputeTargetException(
                f"Compute '{target}' holds GPU ids {list(pool.gpu_ids)}, but GPU(s) {missing} do not exist on "
                f"{where}, which has {host or 'no GPU'}. Create the compute again (ComputeTarget.create with the "
                "same name updates it) with gpu_ids from that list, or restore the host's GPUs "
                "(NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES of this process)."
            )
        if gpus_wanted is not None and gpus_wanted > len(pool.gpu_ids):
            raise ComputeTargetException(
                f"The run asks for {gpus_wanted} GPU(s) but compute '{target}' has {len(pool.gpu_ids)} "
                f"({list(pool.gpu_ids) or 'none'}). Ask for at most that many, or create a compute with more "
                "(gpu_ids=[...] or a larger vm_size)."
            )
        want = gpus_wanted_by(pool, gpus_wanted)
        candidates = list(pool.gpu_ids)
    real_gpus_for_a_container = want and candidates and use_docker and not inventory.declared
    if real_gpus_for_a_container and nvidia_support is not None and nvidia_support() is None:
        raise DockerEngineException(
            f"The run would get {want} GPU(s), but the Docker engine has no NVIDIA container runtime, so a "
            f"container can not reach them. {NVIDIA_FIX}"
        )
    return want

