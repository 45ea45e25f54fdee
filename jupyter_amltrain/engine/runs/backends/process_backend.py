"""Runs as local processes, the embedded default that needs no Docker.

The job is started through the runtime launcher in its own session: the launcher writes the log and, at
the end, ``system_logs/exit.json``. Neither depends on the supervisor being alive, so a supervisor that is
killed and restarted learns the outcome from that file.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from jupyter_amltrain.engine.compute.gpus import GpuInventory
from jupyter_amltrain.engine.runs.backends.base import Outcome, gpu_environment, job_environment, runtime_lib_dir
from jupyter_amltrain.engine.runs.plan import PYTHON_TOKEN, RunPlan
from jupyter_amltrain.engine.store.layout import RunLayout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class ProcessExecution:
    def __init__(self, plan: RunPlan, layout: RunLayout, home: Path, control: Callable[[str], None]):
        self.plan = plan
        self.layout = layout
        self.home = home
        self.control = control
        # Set when the launcher this driver started exits (a re-attached one is not our child: polled instead).
        self.ended = threading.Event()

    def start(self, python: str, gpus: list[int], inventory: GpuInventory | None = None) -> int:
        env = dict(os.environ)
        env.pop("PYTHONHOME", None)
        lib = str(runtime_lib_dir(self.home))
        env.update(job_environment(self.plan, tracking_dir=str(self.layout.tracking), workdir=str(self.layout.wd),
                                   pythonpath=lib))
        # Without this a local process would see every GPU of the host, including ones booked by others.
        env.update(gpu_environment(gpus, inventory or GpuInventory(), container=False))
        if gpus and inventory is not None and inventory.declared:
            self.control(f"{inventory.describe()}: GPUs {gpus} booked; the job gets "
                         f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}")
        command = [token.replace(PYTHON_TOKEN, python) for token in self.plan.command]
        self.layout.exit_file.unlink(missing_ok=True)
        launcher = [sys.executable, "-m", "jupyter_amltrain.engine.runtime.launch",
                    "--log", str(self.layout.std_log), "--stderr-tail", str(self.layout.stderr_tail),
                    "--exit-file", str(self.layout.exit_file)]
        if self.plan.max_run_duration_seconds:
            launcher += ["--timeout", str(self.plan.max_run_duration_seconds)]
        self.control(f"Starting Linux command : {shlex.join(command)}")
        with open(self.layout.control_log, "ab") as control_log:
            process = subprocess.Popen(
                [*launcher, "--", *command], cwd=self.layout.wd, env=env, stdin=subprocess.DEVNULL,
                stdout=control_log, stderr=control_log, start_new_session=True,
            )

        def reap() -> None:  # the launcher is the agent's child: reaped here, and its end seen at once
            process.wait()
            self.ended.set()

        threading.Thread(target=reap, name=f"reap-{self.plan.run_id}", daemon=True).start()
        return process.pid

    def find_launcher(self) -> int | None:
        """The launcher of this run if one was started (alive: its pid; already ended: 0, and ``poll`` reads its
        exit file), else None. Its command line names the run's own exit file, so it is found among all
        processes, whatever was recorded."""
        if self.layout.exit_file.exists():
            return 0
        needle = str(self.layout.exit_file).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in argv and b"jupyter_amltrain.engine.runtime.launch" in argv and _alive(int(entry.name)):
                return int(entry.name)
        return None

    def poll(self, pid: int) -> Outcome | None:
        if self.layout.exit_file.exists():
            data = json.loads(self.layout.exit_file.read_text())
            tail = self.layout.stderr_tail.read_text("utf-8", "replace") if self.layout.stderr_tail.exists() else ""
            return Outcome(exit_code=data.get("exit_code"), timed_out=bool(data.get("timed_out")),
                           signal=data.get("signal"), stderr_tail=tail)
        if _alive(pid):
            return None
        if self.layout.exit_file.exists():  # it finished between the two checks
            return self.poll(pid)
        return Outcome(exit_code=None, lost=f"the job's launcher (pid {pid}) vanished without recording an exit")

    def stop(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)  # the launcher forwards it to the job's process group
        except ProcessLookupError:
            pass
