"""Submit overhead: ``Experiment.submit()`` to the first line the user's script prints, environment cached,
against a bare ``docker run`` of the same image and script. Target: at most 1.2x.

Both sides time the same thing: from just before the call (``submit`` / ``docker run``) to the
``time.time()`` the script itself prints as its first statement (same host, same clock). Rounds alternate
between the two so drift in the machine's load hits both alike; the figure is the median over rounds.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from bench.bare_docker import docker_run, first_stamp
from bench.measure import Options, Result, Target, main_for, median
from bench.sandbox import Sandbox, container_environment, isolated_workspace, remove_labelled

MARKER = "FIRST-LINE"
SCRIPT = f"import time\nprint('{MARKER}', repr(time.time()), flush=True)\n"
V1_CACHED_START_S = 15.0  # azureml-v1.md section 5: a cached v1 run starts in about 15 s
RAY_START_S = 2.0  # peers.md section 2a: Ray Jobs reaches RUNNING after about 2 s


def _ours(sandbox: Sandbox, job: Path, env: Any) -> dict[str, float]:
    from jupyter_amltrain.core import Experiment, ScriptRunConfig
    from jupyter_amltrain.core.runconfig import DockerConfiguration
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.runs.records import status_history

    src = ScriptRunConfig(source_directory=str(job), script="job.py", environment=env,
                          docker_runtime_config=DockerConfiguration(use_docker=True))
    experiment = Experiment(sandbox.ws, "submit-overhead")
    started = time.time()
    run = experiment.submit(src)
    returned = time.time()
    details = run.wait_for_completion()
    log = Path(details["logFiles"]["user_logs/std_log.txt"]).read_text().splitlines()
    printed = first_stamp(log, MARKER)
    # When each phase was reached, from the run's own status history.
    reached: dict[str, float] = {}
    for entry in status_history(engine_workspace(sandbox.ws).store, run.id):
        reached.setdefault(entry["status"], entry["time"])
    # v1's order: Preparing (the agent has the run), Queued (environment and working copy ready), Starting
    # (a node booked), Running (the container started).
    return {
        "submit_call": returned - started,
        "agent_has_it": reached.get("Preparing", printed) - started,
        "environment_ready": reached.get("Queued", printed) - started,
        "node_booked": reached.get("Starting", printed) - started,
        "container_started": reached.get("Running", printed) - started,
        "first_line": printed - started,
    }


def _bare(job: Path) -> float:
    bare = docker_run(job, ["python", "job.py"])
    return first_stamp([line for _, line in bare.lines], MARKER) - bare.started


def run(options: Options) -> list[Result]:
    rounds = 2 if options.quick else 9
    with isolated_workspace("submit") as sandbox:
        job = sandbox.job("job", {"job.py": SCRIPT})
        env = container_environment()
        try:
            _ours(sandbox, job, env)  # warm-up: first container start, page cache, imports
            _bare(job)
            ours: list[dict[str, float]] = []
            bare: list[float] = []
            for _ in range(rounds):
                ours.append(_ours(sandbox, job, env))
                bare.append(_bare(job))
        finally:
            remove_labelled()
    phases = {key: median([o[key] for o in ours]) for key in ours[0]}
    value, baseline = phases["first_line"], median(bare)
    result = Result(
        "submit_overhead", value, "s", "bare docker run", baseline, target=Target(1.2),
        details={"rounds": rounds, "ours_s": [o["first_line"] for o in ours], "bare_docker_run_s": bare,
                 "phases_median_s": phases, "vs_v1_cached_15s": value / V1_CACHED_START_S,
                 "vs_ray_jobs_2s": value / RAY_START_S},
        notes=[f"v1 starts a cached run in about {V1_CACHED_START_S:g} s: {value / V1_CACHED_START_S:.3f}x of that; "
               f"Ray Jobs about {RAY_START_S:g} s: {value / RAY_START_S:.2f}x.",
               "Phases (median, seconds after submit): " + ", ".join(f"{k} {v:.3f}" for k, v in phases.items())],
    )
    return [result]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))
