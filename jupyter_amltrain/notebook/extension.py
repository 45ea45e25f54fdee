"""``%load_ext jupyter_amltrain``: registers the magics (once, however often it is loaded), and in the
preloaded kernel puts the workspace in the namespace as ``ws``."""

from __future__ import annotations

import os
import sys
from typing import Any

PRELOAD_ENV = "AMLTRAIN_PRELOAD_WORKSPACE"  # set by the kernelspec that `jupyter amltrain install-kernel` writes


def load_ipython_extension(ipython: Any) -> None:
    from jupyter_amltrain.notebook.magics import AmlTrainMagics
    from jupyter_amltrain.widgets.refresh import live_displays

    if "AmlTrainMagics" not in ipython.magics_manager.registry:
        ipython.register_magics(AmlTrainMagics(ipython))
    callbacks = ipython.events.callbacks.get("post_run_cell", [])
    if live_displays.flush not in callbacks:
        ipython.events.register("post_run_cell", live_displays.flush)
    if os.environ.get(PRELOAD_ENV) and "ws" not in ipython.user_ns:
        preload_workspace(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from jupyter_amltrain.widgets.refresh import live_displays

    if live_displays.flush in ipython.events.callbacks.get("post_run_cell", []):
        ipython.events.unregister("post_run_cell", live_displays.flush)


def preload_workspace(ipython: Any) -> None:
    """``ws`` from the config.json found from the notebook's folder up, else the default workspace. Kept out of
    ``%who`` like the kernel's own names. A broken config must not stop the kernel: it is reported instead."""
    from jupyter_amltrain.exceptions import AzureMLException
    from jupyter_amltrain.notebook.session import session_workspace

    try:
        workspace = session_workspace(ipython.user_ns)
    except AzureMLException as error:
        print(f"jupyter-amltrain: no workspace preloaded as ws: {error}", file=sys.stderr)
        return
    ipython.push({"ws": workspace}, interactive=False)
