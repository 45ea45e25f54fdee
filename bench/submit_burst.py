"""200 runs submitted at once, as a notebook loop does: how long each ``submit()`` call takes. Target: each at
most 50 ms.

The runs are user-managed local processes queued FIFO on one declared GPU, so the agent prepares them and
holds them in its queue while the loop goes on (what a sweep of 200 looks like). Every call is timed; the
figure is the slowest, next to the median and p95. All runs are canceled afterwards.
"""

from __future__ import annotations

import sys
import time

from bench.measure import Options, Result, Target, main_for, median, percentile
from bench.sandbox import isolated_workspace
from bench.scheduling import declared_gpus


def run(options: Options) -> list[Result]:
    from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig

    count = 20 if options.quick else 200
    with declared_gpus("0"), isolated_workspace("submit-burst") as sandbox:
        job = sandbox.project / "job"
        job.mkdir()
        (job / "job.py").write_text("import time\ntime.sleep(60)\n")
        env = Environment("burst")
        env.python.user_managed_dependencies = True
        src = ScriptRunConfig(source_directory=str(job), script="job.py", environment=env)
        experiment = Experiment(sandbox.ws, "burst")
        experiment.submit(src, gpus=1).cancel()  # the agent and the environment warm, as in a live notebook
        calls, runs = [], []
        for _ in range(count):
            started = time.perf_counter()
            runs.append(experiment.submit(src, gpus=1))
            calls.append(time.perf_counter() - started)
        for submitted in runs:
            submitted.cancel()
    slowest = max(calls)
    return [Result(
        "submit_burst_slowest", slowest * 1000, "ms", "absolute", target=Target(50.0, on="value"),
        details={"runs": count, "calls_s": calls},
        notes=[f"{count} submits in a row: median {median(calls) * 1000:.1f} ms, p95 "
               f"{percentile(calls, 95) * 1000:.1f} ms, slowest {slowest * 1000:.1f} ms, while the agent "
               "prepares and queues the earlier ones."],
    )]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))
