"""The benchmarks stay runnable: every script imports, and the pure helpers they report with compute right.

The benchmarks themselves are not run here (they time things; tests never assert timings): ``python -m bench``.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, summary_table
from bench.log_latency import StampingWriter, stamps
from bench.measure import (
    Result,
    Target,
    format_ratio,
    format_value,
    growth_exponent,
    median,
    percentile,
    write_json,
)
from bench.report import markdown_table
from bench.scheduling import handover_gaps, max_overlap
from bench.snapshot import make_tree


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_imports_and_has_a_run_function(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(module.run)
    assert (module.__doc__ or "").strip(), "the docstring is the script's --help and what BENCHMARKS.md cites"


def test_percentiles_interpolate_between_ranks() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([4.0, 1.0, 3.0, 2.0], 0) == 1.0 and percentile([4.0, 1.0, 3.0, 2.0], 100) == 4.0
    assert percentile([7.0], 95) == 7.0
    assert median([3.0, 1.0, 2.0]) == 2.0
    with pytest.raises(ValueError, match="nothing to measure"):
        percentile([], 50)


def test_growth_exponent_is_one_for_linear_and_two_for_quadratic() -> None:
    assert growth_exponent([100, 1_000, 10_000], [1.0, 10.0, 100.0]) == pytest.approx(1.0)
    assert growth_exponent([10, 100], [1.0, 100.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        growth_exponent([10], [1.0])


def test_result_line_shows_value_ratio_baseline_and_verdict() -> None:
    slow = Result("submit_overhead", 0.912, "s", "bare docker run", 0.4, target=Target(1.2))
    assert slow.ratio == pytest.approx(2.28)
    assert slow.line() == "submit_overhead: 0.912 s (2.28x vs bare docker run) [target <= 1.2x: MISSED]"
    fast = Result("metric_logging", 212_000.0, "calls/s", "mlflow", 900.0, target=Target(100, higher_is_better=True))
    assert fast.met is True and fast.line().startswith("metric_logging: 212,000 calls/s (236x vs mlflow)")
    on_value = Result("history", 61.6, "ms", "SQL floor", 12.0, target=Target(100.0, on="value"))
    assert on_value.met is True and "[target <= 100 ms: met]" in on_value.line()
    assert Result("x", 1.0, "s", "no baseline").line() == "x: 1.00 s (no baseline)"


def test_number_formatting() -> None:
    assert format_value(0.0265, "s") == "0.0265" and format_value(47.37, "ms") == "47.4"
    assert format_value(6728.3, "ms") == "6,728"
    assert format_ratio(2.4444) == "2.44x" and format_ratio(0.065) == "0.065x" and format_ratio(126.4) == "126x"
    assert format_ratio(0.000079) == "7.9e-05x"


def test_json_output_and_summary_table(tmp_path: Path) -> None:
    results = [Result("a", 1.5, "s", "base", 3.0, target=Target(0.4)), Result("b", 2.0, "ms", "none")]
    write_json(tmp_path / "out" / "r.json", results, {"machine": {"cpus": 2}})
    data = json.loads((tmp_path / "out" / "r.json").read_text())
    assert data["machine"] == {"cpus": 2}
    assert [r["name"] for r in data["results"]] == ["a", "b"]
    assert data["results"][0]["ratio"] == 0.5 and data["results"][0]["met"] is False
    table = summary_table(results).splitlines()
    assert table[0].split() == ["figure", "value", "ratio", "baseline", "target", "met"]
    assert table[2].split()[-1] == "NO" and table[3].split()[-1] == "-"
    markdown = markdown_table(data).splitlines()
    assert markdown[2] == "| `a` | 1.50 s | base = 3.00 s | 0.50x | <= 0.4x | **no** |"
    assert markdown[3] == "| `b` | 2.00 ms | none | - | - | - |"


def test_log_lines_are_stamped_on_arrival_and_matched_to_their_print() -> None:
    writer = StampingWriter()
    printed = time.time() - 0.25
    writer.write(f"Streaming user_logs/std_log.txt\nLAT 0 {printed!r}\nLAT 1 ")
    writer.write(f"{printed!r}\n")
    latencies = stamps(writer.lines)
    assert sorted(latencies) == [0, 1]
    assert all(0.25 <= latency < 5 for latency in latencies.values())


def test_overlap_counts_jobs_running_at_once() -> None:
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_overlap([(0, 2), (1, 3), (1.5, 4)]) == 3
    assert max_overlap([]) == 0


def test_handover_is_the_wait_from_a_slot_freeing_to_the_next_start() -> None:
    runs = [(0.0, 1.0), (0.0, 1.2), (1.5, 2.5), (1.4, 2.4), (2.6, 3.6)]
    assert handover_gaps(runs, 2) == pytest.approx([0.4, 0.3, 0.2])
    assert handover_gaps([(0.0, 1.0)], 2) == [0.0]


def test_snapshot_trees_have_the_asked_size_and_are_dated_back(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", 250, 250 * 1000)
    files = [p for p in (tmp_path / "tree").rglob("*") if p.is_file()]
    assert len(files) == 251  # and the script
    assert sum(p.stat().st_size for p in files if p.suffix == ".bin") == 250 * 1000
    assert len({p.parent for p in files if p.suffix == ".bin"}) == 3  # 100 per folder
    assert max(os.stat(p).st_mtime for p in files) < time.time() - 60
