"""The figures table of BENCHMARKS.md from a ``--json`` file: ``python -m bench.report .bench-out/latest.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.measure import format_ratio, format_value


def markdown_table(data: dict[str, Any]) -> str:
    lines = ["| Figure | Value | Baseline (measured in the same run) | Ratio | Target | Met |",
             "|---|---|---|---|---|---|"]
    for r in data["results"]:
        baseline = r["baseline"]
        if r.get("baseline_value") is not None:
            baseline += f" = {format_value(r['baseline_value'], r['unit'])} {r['unit']}"
        ratio = format_ratio(r["ratio"]) if r.get("ratio") is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.get("met")]
        lines.append(f"| `{r['name']}` | {format_value(r['value'], r['unit'])} {r['unit']} | {baseline} | {ratio} "
                     f"| {r.get('target') or '-'} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.report RESULTS.json", file=sys.stderr)
        return 2
    data = json.loads(Path(args[0]).read_text())
    print(f"Machine: {describe(data.get('machine', {}))}.")
    if data.get("total_seconds") is not None:
        print(f"All benchmarks took {data['total_seconds']:.0f} s.")
    print()
    print(markdown_table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
