"""The front-end code of the widgets, shipped in the package (``static/``) and sent by the kernel.

anywidget loads each view as one ES module from a string, so a view cannot import a sibling file: the shared
chart code is prepended to each view's module here. Nothing is fetched from a CDN, so the views work offline.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"


@cache
def view_module(name: str) -> str:
    """The ES module of view ``name`` (``static/<name>.js``), with the shared chart helpers first."""
    return (STATIC / "charts.js").read_text("utf-8") + "\n" + (STATIC / f"{name}.js").read_text("utf-8")


@cache
def stylesheet() -> str:
    return (STATIC / "widgets.css").read_text("utf-8")
