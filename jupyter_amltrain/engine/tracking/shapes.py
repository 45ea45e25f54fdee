"""v1 ``get_metrics()`` shapes from stored metric rows (reference section 1.10), and chart series.

Rows come in logging order per name, values already decoded (``values.decode_value``).

| Logged                                  | Shape                                                |
|-----------------------------------------|------------------------------------------------------|
| ``log`` once / k>1 times                | scalar / list in logging order                       |
| ``log_list`` (several calls append)     | list of all elements; exactly one element -> scalar |
| ``log_row`` once                        | dict of scalars                                      |
| ``log_row`` k>1 times, ``log_table``    | dict of lists                                        |
| ``log_image`` once / several            | data-location string / list of them                  |

``log_row`` and ``log_table`` are one v1 type (``azureml.v1.table``), so they combine under one name: rows
are appended to the columns; a column missing from some row holds None there. A table holding exactly one
row in total collapses to a dict of scalars, like a one-element list does. Every other mix of kinds under
one name is a v1 "Conflicting metric types": the first kind logged wins, the rest is dropped with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

# Kinds that v1 stores under one metric type.
_FAMILY = {"scalar": "scalar", "list": "list", "row": "table", "table": "table", "image": "image"}


def _first_kind_only(rows: Iterable[tuple[Any, ...]], warn: bool) -> Iterator[tuple[Any, ...]]:
    """Yield rows whose kind matches the first kind seen for their name; drop (and warn about) the rest."""
    first: dict[str, str] = {}
    warned: set[tuple[str, str]] = set()
    for row in rows:
        name, kind = row[0], row[1]
        family = _FAMILY.get(kind)
        if family is None:
            if warn:
                warnings.warn(f"Metric {name!r} has unknown kind {kind!r}; the value is dropped.", stacklevel=3)
            continue
        expected = first.setdefault(name, family)
        if family != expected:
            if warn and (name, family) not in warned:
                warned.add((name, family))
                warnings.warn(
                    f"Conflicting metric types for {name!r}: it was first logged as {expected} and later as "
                    f"{family}; the {family} values are dropped. Log different kinds under different names.",
                    stacklevel=3,
                )
            continue
        yield row


def _table(parts: list[tuple[str, Any]]) -> dict[str, Any]:
    columns: dict[str, list[Any]] = {}
    n_rows = 0
    for kind, value in parts:
        block = {k: [v] for k, v in value.items()} if kind == "row" else value
        height = max((len(cells) for cells in block.values()), default=0)
        for column in block:
            columns.setdefault(column, [None] * n_rows)
        for column, cells in columns.items():
            new = list(block.get(column, []))
            cells.extend(new + [None] * (height - len(new)))
        n_rows += height
    if n_rows == 1:
        return {column: cells[0] for column, cells in columns.items()}
    return columns


def _shape(family: str, parts: list[tuple[str, Any]]) -> Any:
    if family == "table":
        return _table(parts)
    # A list call contributes its elements; scalar and image calls one value each.
    values = [v for _, value in parts for v in value] if family == "list" else [value for _, value in parts]
    return values[0] if len(values) == 1 else values


def shape_metrics(rows: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """``{name: value}`` as v1's ``Run.get_metrics()`` returns it, from (name, kind, value) in logging order."""
    grouped: dict[str, tuple[str, list[tuple[str, Any]]]] = {}
    for name, kind, value in _first_kind_only(rows, warn=True):
        grouped.setdefault(name, (_FAMILY[kind], []))[1].append((kind, value))
    return {name: _shape(family, parts) for name, (family, parts) in grouped.items()}


def _number(value: Any) -> float | None:
    """A chartable number, or None for a gap (non-numbers, NaN and infinities have no place on an axis)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def series_for_chart(rows: Iterable[tuple[str, str, Any, int | None]]) -> dict[str, dict[str, list[Any]]]:
    """Per-metric numeric series for charts: ``{name: {"steps": [...], "values": [float | None, ...]}}``.

    Input is (name, kind, value, step) in logging order. Scalar metrics give one point per call at its
    ``step`` (or, without one, at the point's index); list metrics give one point per element. Other kinds
    are not charted as lines and are left out, as are names whose values are never numeric. Values that
    are not finite numbers become None, which JSON can carry and charts draw as a gap.
    """
    series: dict[str, dict[str, list[Any]]] = {}
    for name, kind, value, step in _first_kind_only(rows, warn=False):
        if kind == "scalar":
            points = [(step, value)]
        elif kind == "list":
            points = [(None, v) for v in value]
        else:
            continue
        entry = series.setdefault(name, {"steps": [], "values": []})
        for point_step, point_value in points:
            entry["steps"].append(point_step if point_step is not None else len(entry["steps"]))
            entry["values"].append(_number(point_value))
    return {name: entry for name, entry in series.items() if any(v is not None for v in entry["values"])}
