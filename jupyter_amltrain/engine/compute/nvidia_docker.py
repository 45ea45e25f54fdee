"""How (and whether) the Docker engine hands NVIDIA GPUs to containers."""

from __future__ import annotations

import shutil
from typing import Any

# Docker's --gpus / device requests run this hook (nvidia-container-toolkit) even when no "nvidia"
# runtime is registered with the daemon.
HOOKS = ("nvidia-container-runtime-hook", "nvidia-container-toolkit")


def nvidia_support(client: Any) -> str | None:
    """``"nvidia runtime"``, ``"<hook> hook"``, or None when containers can not reach GPUs."""
    try:
        info = client.info()
    except Exception:
        return None
    runtimes = info.get("Runtimes") or {}
    if "nvidia" in runtimes or any("nvidia" in str(value) for value in runtimes.values()):
        return "nvidia runtime"
    for hook in HOOKS:
        if shutil.which(hook):  # the daemon is local (unix socket): its PATH is, in practice, ours
            return f"{hook} hook"
    return None
