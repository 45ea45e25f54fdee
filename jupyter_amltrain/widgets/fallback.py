"""Plain text and HTML renderings shared by the widgets, for front ends without a widget manager
(nbconvert, GitHub's viewer, terminals) and for ``repr``."""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from typing import Any

_BARS = "▁▂▃▄▅▆▇█"


def fmt_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def fmt_clock(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%H:%M:%S", time.localtime(epoch))


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return f"[{len(value)} values]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt_value(v)}" for k, v in list(value.items())[:4]) + "}"
    return str(value)


def fmt_bytes(count: float | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} TiB"


def sparkline(values: Sequence[float | None], width: int = 40) -> str:
    """A one-line curve of the values (gaps as spaces), thinned to ``width`` characters."""
    if not values:
        return ""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    numbers = [v for v in values if v is not None]
    if not numbers:
        return ""
    low, high = min(numbers), max(numbers)
    span = high - low
    return "".join(" " if v is None else _BARS[0 if span == 0 else round((v - low) / span * (len(_BARS) - 1))]
                   for v in values)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="amltrain-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def widget_view(widget: Any) -> dict[str, Any]:
    """The widget-view part of a MIME bundle; empty once the widget is closed (nothing left to show)."""
    if getattr(widget, "comm", None) is None:
        return {}
    return {WIDGET_VIEW_MIME: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}


class LiveDisplay:
    """How every live widget displays itself: the widget view where a front end exists, and the same state as
    text and HTML beside it (nbconvert, terminals, VS Code without the extension). Displaying starts the
    background refresh; subclasses provide the pieces named below."""

    _refresher: Any

    def _front_end(self) -> Any:
        raise NotImplementedError

    def refresh(self) -> Any:
        raise NotImplementedError

    def start(self) -> Any:
        raise NotImplementedError

    def to_text(self) -> str:
        raise NotImplementedError

    def to_html(self) -> str:
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        if not self._refresher.running:
            self.refresh()
        self.start()
        return {**widget_view(self._front_end()), "text/plain": self.to_text(), "text/html": self.to_html()}, {}

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.to_text())

    def __repr__(self) -> str:
        return self.to_text()
