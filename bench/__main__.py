"""Run every benchmark (or those named), print one line per figure and a summary table; ``--json PATH`` too.

    python -m bench                         # all, in the issue's order
    python -m bench snapshot history        # some
    python -m bench --json .bench-out/latest.json

A benchmark that fails is reported and the others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from bench.machine import describe, machine_info
from bench.measure import Options, Result, format_ratio, format_value, write_json
from bench.sandbox import remove_labelled

BENCHMARKS = ("submit_overhead", "submit_burst", "snapshot", "env_cache", "interpreter_resolution", "agent_idle",
              "log_latency",
              "metric_logging",
              "history", "scheduling",
              "gpu_sampler")


def summary_table(results: list[Result]) -> str:
    rows = [("figure", "value", "ratio", "baseline", "target", "met")]
    for r in results:
        rows.append((r.name, f"{format_value(r.value, r.unit)} {r.unit}",
                     format_ratio(r.ratio) if r.ratio is not None else "-", r.baseline,
                     r.target.describe(r.unit) if r.target else "-",
                     {True: "yes", False: "NO", None: "-"}[r.met]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every result as JSON to PATH")
    parser.add_argument("--quick", action="store_true", help="small workloads: checks the scripts, not the speed")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    options = Options(quick=args.quick)
    machine = machine_info()
    print(f"machine: {describe(machine)}", flush=True)
    results: list[Result] = []
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for name in args.names or BENCHMARKS:
        began = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            produced = module.run(options)
        except Exception:
            failed[name] = traceback.format_exc()
            print(f"{name}: FAILED\n{failed[name]}", file=sys.stderr, flush=True)
            produced = []
        finally:
            remove_labelled()
        seconds[name] = time.perf_counter() - began
        for result in produced:
            print(result.report(), flush=True)
        results.extend(produced)
    total = time.perf_counter() - started
    print(f"\n{summary_table(results)}\n\nall benchmarks: {total:.0f} s ("
          + ", ".join(f"{name} {s:.0f} s" for name, s in seconds.items()) + ")")
    if args.json:
        write_json(args.json, results, {"machine": machine, "quick": args.quick, "seconds": seconds,
                                        "total_seconds": total, "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                                        "failed": failed})
        print(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
