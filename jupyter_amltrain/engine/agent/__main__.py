"""``python -m jupyter_amltrain.engine.agent --home HOME``: the agent of a store home (see ``server``).

Started this way it is two processes: a small watchdog, and the agent it starts as its child. When the agent
dies of anything but its own clean exit (SIGKILL, a crash), the watchdog starts a new one at once, which
re-attaches to every active run, so runs go on even when nobody touches the workspace. When the agent exits on
its own (idle, ``amltrain agent stop``, another agent holds the home), the watchdog ends too. ``--serve`` runs
the agent itself, without a watchdog.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

RESTART_PAUSE = 0.2
MAX_RESTARTS_PER_MINUTE = 10  # an agent that dies at once, again and again, is broken: stop and let callers say so


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jupyter_amltrain.engine.agent", description=__doc__)
    parser.add_argument("--home", type=Path, required=True, help="the store home whose runs the agent owns")
    parser.add_argument("--idle-seconds", type=float, default=None,
                        help="exit after this long with nothing to do (default 60, or $AMLTRAIN_AGENT_IDLE_SECONDS)")
    parser.add_argument("--serve", action="store_true", help="be the agent itself (no watchdog)")
    args = parser.parse_args(argv)
    if args.serve:
        from jupyter_amltrain.engine.agent.client import idle_seconds_from_env
        from jupyter_amltrain.engine.agent.server import IDLE_SECONDS, run_agent

        idle = args.idle_seconds if args.idle_seconds is not None else idle_seconds_from_env(IDLE_SECONDS)
        return run_agent(args.home, idle_seconds=idle)
    return watch(args.home, [sys.executable, "-m", "jupyter_amltrain.engine.agent", *(argv or sys.argv[1:]),
                             "--serve"])


def watch(home: Path, command: list[str]) -> int:
    """Keep an agent running for ``home`` while it has work; see the module's docstring."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    restarts: list[float] = []
    while True:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        code = child.wait()
        if code >= 0:
            return code  # its own exit: idle, stopped, or another agent owns the home
        now = time.monotonic()
        restarts = [t for t in restarts if now - t < 60] + [now]
        print(f"agent {child.pid} of {home} died (signal {-code}); starting a new one", file=sys.stderr,
              flush=True)
        if len(restarts) > MAX_RESTARTS_PER_MINUTE:
            print(f"the agent of {home} died {len(restarts)} times in a minute; giving up", file=sys.stderr)
            return 1
        time.sleep(RESTART_PAUSE)


if __name__ == "__main__":
    sys.exit(main())
