"""A notebook waiting on a run while the process driving it (the agent of the store home) is killed: the shared
steps of the tests that check the waiter takes over (test_run_lifecycle.py for a local process, test_faults.py
for Docker)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from jupyter_amltrain.core import Run
from jupyter_amltrain.engine.runs import records
from jupyter_amltrain.engine.runs.recovery import run_is_driven

# Numbered lines until the test drops a file named "release" in the working directory, then a last line.
NUMBERED_JOB = """
import os, time
i = 0
while not os.path.exists("release"):
    print("line", i, flush=True)
    i += 1
    time.sleep(0.05)
print("last line", flush=True)
"""
LINE = re.compile(r"^line (\d+)$", re.M)


@dataclass
class Takeover:
    output: str              # what wait_for_completion(show_output=True) printed
    lines_at_kill: int       # numbered lines in the job's log when its supervisor was killed
    seconds: float | None    # from the SIGKILL to a new live supervisor; None: nobody took over


def numbered_lines(text: str) -> list[int]:
    return [int(n) for n in LINE.findall(text)]


def kill_supervisor_while_waiting(run: Run, *, give_up_after: float = 30.0) -> Takeover:
    """``run.wait_for_completion(show_output=True)`` here, while a thread SIGKILLs the run's supervisor once the
    job has printed a few lines, times how long until a new supervisor is alive, lets the job print more lines
    (after the kill) and then releases it. If nobody takes over, the thread ends the run by hand so that the
    test fails on its assertions instead of hanging."""
    found: dict[str, float | int | None] = {"seconds": None, "lines_at_kill": 0}
    log = run._layout().std_log

    def lines() -> int:
        return len(numbered_lines(log.read_text())) if log.exists() else 0

    def until(check: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def killer() -> None:
        try:
            assert until(lambda: lines() >= 5, 120), "the job never printed"
            record = run._record()
            assert record is not None and record.supervisor_pid and record.supervisor_pid > 0
            os.kill(record.supervisor_pid, signal.SIGKILL)
            killed_at, old = time.monotonic(), record.supervisor_pid
            found["lines_at_kill"] = lines()

            def replaced() -> bool:
                current = run._record()
                pid = current.supervisor_pid if current is not None else None
                return bool(pid and pid > 0 and pid != old
                            and run_is_driven(run.experiment.workspace._local, pid, run.id))

            if until(replaced, give_up_after):
                found["seconds"] = time.monotonic() - killed_at
                until(lambda: lines() >= int(found["lines_at_kill"] or 0) + 20, 60)  # lines after the kill
        finally:
            (run._layout().wd / "release").touch()
            if found["seconds"] is None:  # nobody took over: unblock the waiter
                records.set_status(run.experiment.workspace._local.store, run.id, "Failed", "",
                                   error={"error": {"code": "Test", "message": "no supervisor took over"}})

    thread = threading.Thread(target=killer, name="supervisor-killer", daemon=True)
    out = io.StringIO()
    thread.start()
    with contextlib.redirect_stdout(out):
        run.wait_for_completion(show_output=True, raise_on_error=False)
    thread.join(timeout=60)
    seconds = found["seconds"]
    return Takeover(out.getvalue(), int(found["lines_at_kill"] or 0),
                    float(seconds) if seconds is not None else None)
