"""The build hook's build function (``[tool.hatch.build.hooks.jupyter-builder]`` in pyproject.toml).

``pip install .`` or ``python -m build`` from a clone builds this JupyterLab extension into
``jupyter_amltrain/labextension`` (``jlpm install``, ``jlpm build:prod``) when Node.js is available and the
bundle is not built yet, and the wheel carries it: installing that wheel needs no Node. Without Node.js the
build warns and goes on, so the Python package (API, server extension, kernels) still installs; the panel
then comes from a wheel built where Node.js is. Editable installs never build: developers run
``jlpm build`` in labextension/ (scripts/setup.sh does).
"""

from __future__ import annotations

import shutil
import warnings
from typing import Any


def build_labextension(target_name: str, version: str, **kwargs: Any) -> None:
    if version == "editable":
        return
    if shutil.which("node") is None:
        warnings.warn(
            "Node.js not found: the JupyterLab panel of jupyter-amltrain is not built into this package (the "
            "server extension and the Python API are). Install Node.js 18+ and build again, or install a wheel "
            "built where Node.js is available.",
            stacklevel=2,
        )
        return
    from hatch_jupyter_builder import npm_builder  # present in the build environment (the hook's dependency)

    npm_builder(target_name, version, **kwargs)
