"""The preloaded kernel: a kernelspec whose kernel loads the extension and starts with ``ws`` defined, like
the Azure ML compute-instance kernels ("Python 3.10 - SDK v2") but for the local workspace.

``ipykernel install`` cannot add arguments, so the spec is written with ``ipykernel.kernelspec``'s writer
(``--ext=jupyter_amltrain`` on the command line, ``AMLTRAIN_PRELOAD_WORKSPACE`` in its environment) and
installed with jupyter_client's ``KernelSpecManager``. The kernel runs this interpreter (``sys.executable``).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from jupyter_amltrain.exceptions import UserErrorException
from jupyter_amltrain.notebook.extension import PRELOAD_ENV

KERNEL_NAME = "amltrain"
DISPLAY_NAME = "Python 3 (AMLTrain)"
_KERNEL_NAME = re.compile(r"^[a-z0-9._-]+$", re.IGNORECASE)


def install_kernel(name: str = KERNEL_NAME, display_name: str | None = None, *, user: bool = False,
                   prefix: str | None = None) -> str:
    """Install the preloaded kernelspec; returns the folder it was written to."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    if not _KERNEL_NAME.match(name):
        raise UserErrorException(
            f"Kernel name {name!r} is invalid: use letters, digits, '.', '_' and '-' only (e.g. amltrain)."
        )
    if user and prefix:
        raise UserErrorException("Choose one place for the kernel: --user, --sys-prefix or --prefix, not several.")
    with tempfile.TemporaryDirectory() as staging:
        folder = write_kernel_spec(
            Path(staging) / name,
            overrides={"display_name": display_name or DISPLAY_NAME, "env": {PRELOAD_ENV: "1"}},
            extra_arguments=["--ext=jupyter_amltrain"],
        )
        return str(KernelSpecManager().install_kernel_spec(folder, name, user=user, prefix=prefix))
