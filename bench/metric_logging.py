"""Metric logging: ``run.log()`` calls per second inside a job, with every value checked in ``get_metrics()``
after the job exits, against MLflow's ``mlflow.log_metric`` to its local file store in the same job.
Target: at least 100x.

The job runs as a local process (the process backend: ``user_managed_dependencies=True`` without Docker,
this interpreter), so MLflow, installed for the benchmark only (``pip install mlflow-skinny``), is importable
in it. Both loops log one scalar per call, one after the other in the same process. Without MLflow the
benchmark reports our rate alone and says why. MLflow 3 refuses its file store unless
``MLFLOW_ALLOW_FILE_STORE=true``, which the job sets.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from bench.measure import Options, Result, Target, main_for, median
from bench.sandbox import isolated_workspace

ROUNDS = 5  # the job's loop shares the machine with the supervisor's ingest: single jobs vary by 1.5x
SCRIPT = """import json, os, sys, tempfile, time
from jupyter_amltrain.core import Run

calls, mlflow_calls = int(sys.argv[1]), int(sys.argv[2])
run = Run.get_context()
start = time.perf_counter()
for i in range(calls):
    run.log("loss", i / calls)
result = {"ours_calls_per_s": calls / (time.perf_counter() - start), "calls": calls}
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
# The job's MLFLOW_RUN_ID names the Azure ML run (v1 sets it too); MLflow's own store has no such run.
for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI"):
    os.environ.pop(name, None)
try:
    import mlflow
except ImportError as exc:
    result["mlflow_missing"] = str(exc)
else:
    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri("file://" + os.path.join(store, "mlruns"))  # new: MLflow makes experiment 0
        with mlflow.start_run():
            start = time.perf_counter()
            for i in range(mlflow_calls):
                mlflow.log_metric("loss", i / mlflow_calls, step=i)
            result["mlflow_calls_per_s"] = mlflow_calls / (time.perf_counter() - start)
    result["mlflow_calls"] = mlflow_calls
    result["mlflow_version"] = mlflow.__version__
os.makedirs("outputs", exist_ok=True)
with open("outputs/rates.json", "w") as out:
    json.dump(result, out)
"""


def run(options: Options) -> list[Result]:
    calls, mlflow_calls = (5_000, 200) if options.quick else (100_000, 2_000)
    rounds = 1 if options.quick else ROUNDS
    from jupyter_amltrain.core import Experiment, ScriptRunConfig
    from jupyter_amltrain.core.runconfig import RunConfiguration

    per_round: list[dict[str, Any]] = []
    with isolated_workspace("metrics") as sandbox:
        folder = sandbox.job("job", {"job.py": SCRIPT})
        run_config = RunConfiguration()
        run_config.environment.python.user_managed_dependencies = True
        src = ScriptRunConfig(source_directory=str(folder), script="job.py", arguments=[calls, mlflow_calls],
                              run_config=run_config)
        expected = [i / calls for i in range(calls)]
        for index in range(rounds):
            job = Experiment(sandbox.ws, "metric-logging").submit(src)
            job.wait_for_completion(raise_on_error=True)
            job.download_file("outputs/rates.json", str(sandbox.root / f"rates-{index}.json"))
            rates = json.loads((sandbox.root / f"rates-{index}.json").read_text())
            read_started = time.perf_counter()
            values = job.get_metrics()["loss"]
            rates["get_metrics_s"] = time.perf_counter() - read_started
            if values != expected:
                raise RuntimeError(f"{len(values)} of {calls} logged values came back, or not in order: logging "
                                   "lost data")
            per_round.append(rates)
    ours = median([r["ours_calls_per_s"] for r in per_round])
    read_seconds = median([r["get_metrics_s"] for r in per_round])
    rates = dict(per_round[-1])
    if "mlflow_calls_per_s" in rates:
        rates["mlflow_calls_per_s"] = median([r["mlflow_calls_per_s"] for r in per_round])
    details = {"calls": calls, "persisted": calls, "get_metrics_s": read_seconds, "backend": "process",
               "rounds": per_round, **{k: v for k, v in rates.items() if k not in ("calls", "get_metrics_s")}}
    notes = [f"Median of {rounds} jobs; in each, all {calls:,} values were in get_metrics() after the job "
             f"exited, in order (reading them back took {read_seconds:.2f} s). The supervisor ingests the events "
             "into the store while the job logs, on the other core of this 2-core machine."]
    if "mlflow_calls_per_s" not in rates:
        notes.append(f"MLflow is not installed ({rates.get('mlflow_missing')}): pip install mlflow-skinny to "
                     "measure the baseline.")
        return [Result("metric_logging", ours, "calls/s", "no baseline: MLflow not installed", details=details,
                       notes=notes)]
    mlflow_rate = rates["mlflow_calls_per_s"]
    notes.append(f"MLflow {rates['mlflow_version']} file store: {mlflow_rate:,.0f} calls/s over "
                 f"{mlflow_calls:,} calls (median of the same jobs).")
    return [Result("metric_logging", ours, "calls/s", "mlflow.log_metric (file store)", mlflow_rate,
                   target=Target(100.0, higher_is_better=True), details=details, notes=notes)]


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))

