"""The front-end code of the widgets, shipped in the package (``static/``) and sent by the kernel.

anywidget loads each view as one ES module from a string, so a view cannot import a sibling file: the shared
chart code is prepended to each view's module here, after the run statuses' families, which come from the
engine's one list (engine/runs/statuses.py). Nothing is fetched from a CDN, so the views work offline.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from jupyter_amltrain.engine.runs.statuses import STATUS_FAMILIES

STATIC = Path(__file__).parent / "static"


@cache
def view_module(name: str) -> str:
    """The ES module of view ``name`` (``static/<name>.js``), with the status families and the shared chart
    helpers first."""
    families = f"const AML_STATUS_FAMILIES = {json.dumps(STATUS_FAMILIES)};\n"
    return families + (STATIC / "charts.js").read_text("utf-8") + "\n" + (STATIC / f"{name}.js").read_text("utf-8")


@cache
def stylesheet() -> str:
    return (STATIC / "widgets.css").read_text("utf-8")
