"""The physical floor for a container run: the ``docker`` command line, nothing of ours in between."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench.sandbox import BASE_IMAGE, BENCH_LABEL, SESSION


@dataclass(frozen=True)
class BareRun:
    started: float  # time.time() just before the docker command was started
    lines: list[tuple[float, str]]  # (time.time() when the line was read from docker's stdout, line)
    exit_code: int


def docker_run(job_dir: Path, argv: list[str], *, image: str = BASE_IMAGE) -> BareRun:
    """``docker run --rm`` of ``argv`` in ``job_dir`` (mounted read-only), reading stdout line by line."""
    command = ["docker", "run", "--rm", "--label", f"{BENCH_LABEL}={SESSION}", "-v", f"{job_dir}:/job:ro",
               "-w", "/job", image, *argv]
    lines: list[tuple[float, str]] = []
    started = time.time()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append((time.time(), raw.decode("utf-8", "replace").rstrip("\n")))
        stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"baseline `{' '.join(command)}` failed with exit code {code}: {stderr.strip()}")
    return BareRun(started, lines, code)


def first_stamp(lines: list[str], marker: str) -> float:
    """The time.time() a job printed after ``marker`` on its first line that has it."""
    for line in lines:
        if line.startswith(marker):
            return float(line.split()[1])
    raise RuntimeError(f"no line starting with {marker!r} in the job's output: {lines[:5]!r}")
