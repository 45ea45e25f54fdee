"""Live progress of an environment build: a status line and the tail of the build log.

The builder calls ``log`` and ``progress`` from the thread running the cell, so updates go out from there;
they are throttled to a few per second (a pip install can print thousands of lines) and only the last
``tail_lines`` are sent. ``finish`` pushes the final state; the displayed output's text/HTML is then
rewritten through its display id, so nbconvert and terminals show the outcome too.
"""

from __future__ import annotations

import html
import time
from collections import deque
from typing import Any

import ipywidgets

from jupyter_amltrain.widgets.fallback import widget_view


class BuildProgress:
    def __init__(self, title: str, *, tail_lines: int = 15, min_interval: float = 0.25) -> None:
        self.title = title
        self.state = "running"  # running | done | failed
        self.status = "starting"
        self._lines: deque[str] = deque(maxlen=tail_lines)
        self._min_interval = min_interval
        self._last_push = 0.0
        self._dirty = False
        self._status_html = ipywidgets.HTML()
        self._tail_html = ipywidgets.HTML()
        self.widget = ipywidgets.VBox([self._status_html, self._tail_html])
        self.widget.add_class("amltrain-build")
        self._display: Any = None
        self._push(force=True)

    def show(self) -> None:
        from IPython.display import display

        self._display = display(self, display_id=True)

    def log(self, line: str) -> None:
        self._lines.append(line.rstrip("\n").rsplit("\r", 1)[-1][:500])
        self._push()

    def progress(self, text: str) -> None:
        self.status = text
        self._push()

    def finish(self, summary: str, *, ok: bool = True) -> None:
        self.state = "done" if ok else "failed"
        self.status = summary
        self._push(force=True)
        if self._display is not None:
            self._display.update(self)

    def _push(self, force: bool = False) -> None:
        self._dirty = True
        now = time.monotonic()
        if not force and now - self._last_push < self._min_interval:
            return
        self._last_push = now
        self._dirty = False
        colour = {"running": "var(--jp-brand-color1, #1976d2)", "done": "var(--jp-success-color1, #388e3c)",
                  "failed": "var(--jp-error-color1, #d32f2f)"}[self.state]
        self._status_html.value = (f'<b>{html.escape(self.title)}</b>: <span style="color:{colour}">'
                                   f"{html.escape(self.status)}</span>")
        tail = html.escape("\n".join(self._lines))
        self._tail_html.value = (
            '<pre style="max-height:14em;overflow:auto;font-size:11px;margin:2px 0;'
            f'background:var(--jp-layout-color2,#f5f5f5);padding:4px">{tail}</pre>' if tail else ""
        )

    def to_text(self) -> str:
        lines = [f"{self.title}: {self.status}"]
        if self.state != "done":
            lines += [f"  {line}" for line in list(self._lines)[-5:]]
        return "\n".join(lines)

    def to_html(self) -> str:
        return f"<div>{self._status_html.value}{self._tail_html.value if self.state != 'done' else ''}</div>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        return {**widget_view(self.widget), "text/plain": self.to_text(), "text/html": self.to_html()}, {}
