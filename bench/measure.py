"""What every benchmark reports, and how: one result per figure, as a ratio against a baseline of the same run.

Machines here are noisy, so an absolute number means little on its own; each figure is divided by a baseline
measured in the same process moments before or after (bare ``docker run``, ``cp -a``, ``docker build``...).
A result prints as one line, ``NAME: value unit (ratio x vs BASELINE)``, and serialises to JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """A goal from the issue: ``ratio <= 1.2``, ``ratio >= 100``, or on the value itself (``<= 0.1 s``)."""

    limit: float
    higher_is_better: bool = False
    on: str = "ratio"  # "ratio" or "value"

    def met(self, value: float, ratio: float | None) -> bool | None:
        measured = ratio if self.on == "ratio" else value
        if measured is None or math.isnan(measured):
            return None
        return measured >= self.limit if self.higher_is_better else measured <= self.limit

    def describe(self, unit: str) -> str:
        sign = ">=" if self.higher_is_better else "<="
        return f"{sign} {self.limit:g}x" if self.on == "ratio" else f"{sign} {format_value(self.limit, unit)} {unit}"


@dataclass
class Result:
    name: str
    value: float
    unit: str
    baseline: str  # what the value is divided by, in words
    baseline_value: float | None = None  # in the same unit as value, when the baseline is measured
    ratio: float | None = None
    target: Target | None = None
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline_value:
            self.ratio = self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def line(self) -> str:
        ratio = f"{format_ratio(self.ratio)} vs {self.baseline}" if self.ratio is not None else self.baseline
        text = f"{self.name}: {format_value(self.value, self.unit)} {self.unit} ({ratio})"
        if self.target is not None:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[self.met]
            text += f" [target {self.target.describe(self.unit)}: {verdict}]"
        return text

    def report(self) -> str:
        """The line, then each note indented under it."""
        return "\n".join([self.line(), *(f"    {note}" for note in self.notes)])

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else self.target.describe(self.unit)
        data["met"] = self.met
        data["line"] = self.line()
        return data


def format_value(value: float, unit: str) -> str:
    """Enough digits to compare, no more: 0.912 s, 48.1 ms, 212,000 calls/s."""
    if math.isnan(value):
        return "nan"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def format_ratio(ratio: float) -> str:
    if math.isnan(ratio):
        return "nan x"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.3f}x" if ratio >= 0.001 else f"{ratio:.1e}x"


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100), linear between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values: the benchmark collected nothing to measure")
    ordered = sorted(values)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values: the benchmark collected nothing to measure")
    return float(statistics.median(values))


def growth_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """k in time ~ size**k from the smallest to the largest point: 1 is linear, above 1 worse than linear."""
    if len(sizes) != len(times) or len(sizes) < 2:
        raise ValueError("growth needs at least two (size, time) points")
    if min(times) <= 0:
        return float("nan")
    return math.log(times[-1] / times[0]) / math.log(sizes[-1] / sizes[0])


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...``; ``elapsed()`` is the seconds so far, frozen at exit."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], times: int) -> list[float]:
    return [timed(fn) for _ in range(times)]


@dataclass(frozen=True)
class Options:
    quick: bool = False  # smaller workloads, for checking the scripts work; not for published figures


def write_json(path: Path, results: Sequence[Result], extra: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**(extra or {}), "results": [r.to_json() for r in results]}
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    tmp.replace(path)


def parse_args(argv: Sequence[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="small workloads: checks the script, not the speed")
    return parser.parse_args(argv)


def main_for(run: Callable[[Options], list[Result]], doc: str | None, argv: Sequence[str] | None = None) -> int:
    """Entry point of one benchmark module run alone (``python -m bench.snapshot``)."""
    from bench.machine import machine_info

    args = parse_args(argv, (doc or "").strip().splitlines()[0] if doc else "benchmark")
    results = run(Options(quick=args.quick))
    for result in results:
        print(result.report(), flush=True)
    if args.json:
        write_json(args.json, results, {"machine": machine_info(), "quick": args.quick})
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
