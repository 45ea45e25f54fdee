"""``amltrain``: set up, demo, and look after runs from a terminal.

    amltrain prepare                 build the offline default base image (once)
    amltrain demo                    run the v1 train-on-local sample end to end in Docker
    amltrain runs [-e EXP] [-n N]    list runs, newest first
    amltrain logs RUN_ID [--follow]  print a run's log
    amltrain cancel RUN_ID           cancel a run
    amltrain doctor [--json]         check Docker, the NVIDIA runtime, GPUs, disk space and the default image
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _workspace(name: str | None) -> Any:
    from jupyter_amltrain.core.workspace import Workspace, _find_config

    if name:
        return Workspace.get(name)
    return Workspace.from_config() if _find_config(None, None) else Workspace.get("default")


def cmd_prepare(args: argparse.Namespace) -> int:
    from jupyter_amltrain.engine.images.base_image import prepare_base_image

    prepare_base_image(force=args.force, log=lambda line: print(line, flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig
    from jupyter_amltrain.core.conda_dependencies import CondaDependencies
    from jupyter_amltrain.core.runconfig import DEFAULT_CPU_IMAGE, DockerConfiguration
    from jupyter_amltrain.samples import TRAIN_ON_LOCAL

    ws = _workspace(args.workspace)
    print(f"Workspace {ws.name} at {ws._local.root}")
    folder = Path(tempfile.mkdtemp(prefix="amltrain-demo-"))
    shutil.copytree(TRAIN_ON_LOCAL, folder, dirs_exist_ok=True)
    env = Environment("demo-sklearn")
    env.docker.base_image = DEFAULT_CPU_IMAGE
    env.python.conda_dependencies = CondaDependencies.create(conda_packages=["scikit-learn"],
                                                             pip_packages=["joblib"])
    src = ScriptRunConfig(source_directory=str(folder), script="train.py", environment=env,
                          docker_runtime_config=DockerConfiguration(use_docker=True))
    started = time.monotonic()
    run = Experiment(ws, "amltrain-demo").submit(src)
    run.wait_for_completion(show_output=True)
    metrics = run.get_metrics()
    best = min(range(len(metrics["mse"])), key=metrics["mse"].__getitem__)
    alpha = metrics["alpha"][best]
    print(f"When alpha is {alpha:0.2f}, we have min MSE {metrics['mse'][best]:0.2f}.")
    model = run.register_model(model_name="best_ridge_model", model_path=f"./outputs/ridge_{alpha:0.2f}.pkl")
    print(model.name, model.version, model.url)
    print(f"Demo finished in {time.monotonic() - started:0.1f} s. Run it again: the image is cached.")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from jupyter_amltrain.engine.runs.records import list_runs

    ws = _workspace(args.workspace)
    print(f"{'RUN ID':48} {'STATUS':12} {'TARGET':14} STARTED")
    for record in list_runs(ws._local.store, args.experiment, limit=args.limit):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        print(f"{record.run_id:48} {record.status:12} {record.target:14} {started}")
    return 0


def _run(ws: Any, run_id: str) -> Any:
    from jupyter_amltrain.core import Experiment, Run
    from jupyter_amltrain.engine.runs.records import get_run

    record = get_run(ws._local.store, run_id)
    if record is None:
        print(f"No run {run_id} in workspace {ws.name}. List them with `amltrain runs`.", file=sys.stderr)
        return None
    return Run(Experiment(ws, record.experiment), run_id)


def cmd_logs(args: argparse.Namespace) -> int:
    from jupyter_amltrain.engine.runs.artifacts import STD_LOG, RunFileMissing, open_run_file, run_file
    from jupyter_amltrain.engine.store.layout import RunLayout

    ws = _workspace(args.workspace)
    run = _run(ws, args.run_id)
    if run is None:
        return 2
    if args.follow:
        run.wait_for_completion(show_output=True, raise_on_error=False)
        return 0
    try:  # read as every run file is (engine.runs.artifacts): never through a link or special file
        with open_run_file(run_file(RunLayout(ws._local.layout.run_dir(run.id)), STD_LOG)) as log:
            print(log.read().decode("utf-8", "replace"), end="")
    except RunFileMissing:
        print("(no log yet)", end="")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    run = _run(_workspace(args.workspace), args.run_id)
    if run is None:
        return 2
    run.cancel()
    print(f"{args.run_id}: {run.get_status()}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from jupyter_amltrain.engine.doctor import format_report, healthy, report_json, run_checks

    results = run_checks()
    print(report_json(results) if args.json else format_report(results))
    return 0 if healthy(results) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amltrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-w", "--workspace", help="workspace name (default: config.json's, else 'default')")
    sub = parser.add_subparsers(dest="command", required=True)
    prepare = sub.add_parser("prepare", help="build the offline default base image")
    prepare.add_argument("--force", action="store_true", help="rebuild it even if present")
    prepare.set_defaults(func=cmd_prepare)
    sub.add_parser("demo", help="run the train-on-local sample in Docker").set_defaults(func=cmd_demo)
    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("-e", "--experiment")
    runs.add_argument("-n", "--limit", type=int, default=20)
    runs.set_defaults(func=cmd_runs)
    logs = sub.add_parser("logs", help="print a run's log")
    logs.add_argument("run_id")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(func=cmd_logs)
    cancel = sub.add_parser("cancel", help="cancel a run")
    cancel.add_argument("run_id")
    cancel.set_defaults(func=cmd_cancel)
    doctor = sub.add_parser("doctor", help="check that this machine is ready to train")
    doctor.add_argument("--json", action="store_true", help="print the results as JSON")
    doctor.set_defaults(func=cmd_doctor)
    args = parser.parse_args(argv)
    from jupyter_amltrain.exceptions import AzureMLException

    try:
        return int(args.func(args))
    except AzureMLException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
