"""Scheduling: 40 one-second jobs over 2 GPUs, submitted at once: makespan against the ideal (40 x 1 s / 2).
Target: at most 1.15x.

With a declared GPU inventory (``AMLTRAIN_DECLARED_GPUS``, issue #3) the compute is ``STANDARD_NC6`` (one GPU
per node) with more nodes than GPUs, so the two GPUs are what limits the jobs; on a tree without it, a CPU
compute with ``max_nodes=2`` stands in (two node slots for two GPUs), and the result says so. Makespan runs
from the first ``submit`` to the last run's end as the store records it. The floor for containers is also
measured: the same 40 jobs as bare ``docker run``, two at a time.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.bare_docker import docker_run
from bench.measure import Options, Result, Target, main_for, median
from bench.sandbox import Sandbox, container_environment, isolated_workspace, remove_labelled

JOB_SECONDS = 1.0
SLOTS = 2
SCRIPT = f"import time\ntime.sleep({JOB_SECONDS})\n"
DECLARED_ENV = "AMLTRAIN_DECLARED_GPUS"


def declared_inventory_supported() -> bool:
    try:
        from jupyter_amltrain.engine.compute import gpus
    except ImportError:
        return False
    return getattr(gpus, "DECLARED_ENV", None) == DECLARED_ENV


@contextmanager
def declared_gpus(ids: str | None) -> Iterator[None]:
    """``AMLTRAIN_DECLARED_GPUS`` for this process and the supervisors it starts, restored afterwards."""
    previous = os.environ.get(DECLARED_ENV)
    if ids is not None:
        os.environ[DECLARED_ENV] = ids
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DECLARED_ENV, None)
        else:
            os.environ[DECLARED_ENV] = previous


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end and a start at the same instant do not overlap)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    open_now = peak = 0
    for _, step in events:
        open_now += step
        peak = max(peak, open_now)
    return peak


def _ours(sandbox: Sandbox, jobs: int, declared: bool) -> dict[str, Any]:
    from jupyter_amltrain.core import Experiment, ScriptRunConfig
    from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.runs import records

    if declared:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_NC6", max_nodes=SLOTS * 2)
    else:
        config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", max_nodes=SLOTS)
    compute = ComputeTarget.create(sandbox.ws, "bench-pool", config)
    folder = sandbox.job("job", {"job.py": SCRIPT})
    src = ScriptRunConfig(source_directory=str(folder), script="job.py", compute_target=compute,
                          environment=container_environment())
    experiment = Experiment(sandbox.ws, "scheduling")
    started = time.time()
    runs = [experiment.submit(src) for _ in range(jobs)]
    for run in runs:
        run.wait_for_completion()
    store = engine_workspace(sandbox.ws).store
    recorded = [records.get_run(store, run.id) for run in runs]
    if any(r is None or r.status != "Completed" for r in recorded):
        raise RuntimeError("not every scheduling job completed: " + ", ".join(
            f"{r.run_id} {r.status}" for r in recorded if r is not None and r.status != "Completed"))
    done = [r for r in recorded if r is not None]
    intervals = [(r.started or r.created, r.ended or time.time()) for r in done]
    return {"makespan_s": max(end for _, end in intervals) - started, "max_concurrent": max_overlap(intervals),
            "gpus_booked": sorted({gpu for r in done for gpu in r.gpus}),
            "submit_all_s": max(r.created for r in done) - started,
            "running_to_end_median_s": median([end - start for start, end in intervals]),
            "handover_median_s": median(handover_gaps(intervals, SLOTS))}


def handover_gaps(intervals: list[tuple[float, float]], slots: int) -> list[float]:
    """Seconds from a run's end to the next run's start, runs taken in start order over ``slots`` slots."""
    ordered = sorted(intervals)
    ends = sorted(end for _, end in ordered[:slots])
    gaps = []
    for start, end in ordered[slots:]:
        gaps.append(start - ends.pop(0))  # the earliest end frees the slot this run took
        ends = sorted([*ends, end])
    return gaps or [0.0]


def _bare(folder: Any, jobs: int) -> float:
    """``jobs`` bare ``docker run`` of the script, ``SLOTS`` at a time."""
    remaining = list(range(jobs))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not remaining:
                    return
                remaining.pop()
            try:
                docker_run(folder, ["python", "job.py"])
            except BaseException as exc:  # reported after the other worker stops
                errors.append(exc)
                return

    started = time.time()
    threads = [threading.Thread(target=worker) for _ in range(SLOTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.time() - started


def run(options: Options) -> list[Result]:
    jobs = 8 if options.quick else 40
    declared = declared_inventory_supported()
    ideal = jobs * JOB_SECONDS / SLOTS
    with declared_gpus("0,1" if declared else None), isolated_workspace("scheduling") as sandbox:
        try:
            ours = _ours(sandbox, jobs, declared)
            bare = _bare(sandbox.project / "job", jobs)
        finally:
            remove_labelled()
    if ours["max_concurrent"] > SLOTS:
        raise RuntimeError(f"{ours['max_concurrent']} jobs ran at once on {SLOTS} slots: the booking is broken")
    mode = ("declared GPU inventory 0,1 (STANDARD_NC6 nodes, GPUs the limit)" if declared
            else "no declared inventory in this tree: max_nodes=2 node slots stand in for 2 GPUs")
    makespan = ours["makespan_s"]
    return [Result(
        "scheduling_makespan", makespan, "s", f"ideal {jobs} x {JOB_SECONDS:g} s / {SLOTS}", ideal, target=Target(1.15),
        details={**ours, "jobs": jobs, "mode": mode, "ideal_s": ideal, "bare_docker_run_2_at_a_time_s": bare,
                 "vs_bare_docker": makespan / bare},
        notes=[f"Mode: {mode}.",
               f"Bare docker run, 2 at a time: {bare:.1f} s ({bare / ideal:.2f}x the ideal); ours is "
               f"{makespan / bare:.2f}x that floor. Per job beyond its {JOB_SECONDS:g} s of work: ours "
               f"{(makespan - ideal) * SLOTS / jobs:.2f} s, bare docker run {(bare - ideal) * SLOTS / jobs:.2f} s.",
               f"Median Running to end {ours['running_to_end_median_s']:.2f} s (the job, its exit seen, outputs "
               f"collected); median hand-over from one run's end to the next one's Running "
               f"{ours['handover_median_s']:.2f} s (booking, environment, snapshot, container start); all "
               f"{jobs} submits took {ours['submit_all_s']:.1f} s."],
    )]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))
