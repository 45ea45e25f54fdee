"""jupyter-amltrain: Azure ML SDK v1-style training from Jupyter, on local GPUs and Docker.

Only the standard library is imported here: this package is also mounted read-only into job containers,
where ``from jupyter_amltrain.core import Run`` must work in any image.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
VERSION = __version__


def load_ipython_extension(ipython: Any) -> None:
    from jupyter_amltrain.notebook.extension import load_ipython_extension as load

    load(ipython)


def doctor() -> list[Any]:
    """Check Docker, the NVIDIA runtime, GPUs, disk space and the default image; print each finding with its
    fix and return the results (``jupyter_amltrain.engine.doctor.CheckResult``)."""
    from jupyter_amltrain.engine.doctor import format_report, run_checks

    results = run_checks()
    print(format_report(results))
    return results


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jupyter_amltrain.server"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    # The prebuilt JupyterLab panel (built from labextension/ into this package's labextension/ folder).
    return [{"src": "labextension", "dest": "jupyter-amltrain"}]
