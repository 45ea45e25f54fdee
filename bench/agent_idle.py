"""The idle agent: what the process that drives runs costs while it waits for work. Targets: at most 0.5% of a
core and 150 MB resident, for the agent and its watchdog together.

The agent of a fresh store home is started as a submit would start it, left a moment to settle, then its CPU
time (user + system, from /proc) is read over a window, and its resident memory at the end.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Options, Result, Target, main_for

CLOCK_TICKS = 100  # USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _watchdog_of(pid: int) -> int | None:
    parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return parent if b"jupyter_amltrain.engine.agent" in Path(f"/proc/{parent}/cmdline").read_bytes() else None


def run(options: Options) -> list[Result]:
    from jupyter_amltrain.engine.agent import ensure_agent, stop_agent

    window = 3.0 if options.quick else 20.0
    with tempfile.TemporaryDirectory(prefix="amltrain-bench-agent-") as folder:
        home = Path(folder) / "home"
        started = time.perf_counter()
        pid = int(ensure_agent(home)["pid"])
        start_seconds = time.perf_counter() - started
        try:
            pids = [pid, *filter(None, [_watchdog_of(pid)])]
            time.sleep(1.0)
            before = sum(_cpu_seconds(p) for p in pids)
            wall = time.perf_counter()
            time.sleep(window)
            used = sum(_cpu_seconds(p) for p in pids) - before
            elapsed = time.perf_counter() - wall
            rss = sum(_rss_bytes(p) for p in pids)
        finally:
            stop_agent(home)
    percent = 100.0 * used / elapsed
    return [
        Result("agent_idle_cpu", percent, "% of a core", "absolute", target=Target(0.5, on="value"),
               details={"window_s": elapsed, "cpu_s": used, "processes": len(pids)},
               notes=[f"Agent and watchdog over {elapsed:.0f} s: {used:.2f} s of CPU (clock ticks of 10 ms).",
                      f"Starting the agent (a cold interpreter with its imports, until it answers): "
                      f"{start_seconds:.2f} s, once per store home; a submit that finds it running pays a "
                      "socket round trip."]),
        Result("agent_idle_rss", rss / 1e6, "MB", "absolute", target=Target(150, on="value"),
               details={"rss_bytes": rss}),
    ]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))
