"""``amltrain``: set up, demo, and look after runs from a terminal.

    amltrain prepare                 build the offline default base image (once)
    amltrain demo                    run the v1 train-on-local sample end to end in Docker
    amltrain runs [-e EXP] [-n N]    list runs, newest first
    amltrain logs RUN_ID [--follow]  print a run's log
    amltrain cancel RUN_ID           cancel a run
    amltrain doctor [--json]         check Docker, the NVIDIA runtime, GPUs, disk space and the default image
    amltrain agent start|status|stop the agent that drives every run of this store home
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
    from jupyter_amltrain.core.workspace import Workspace, find_workspace

    return Workspace.get(name) if name else find_workspace()


def cmd_prepare(args: argparse.Namespace) -> int:
    from jupyter_amltrain.engine.images.base_image import prepare_base_image

    prepare_base_image(force=args.force, log=lambda line: print(line, flush=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jupyter_amltrain.core import Environment, Experiment, ScriptRunConfig
    from jupyter_amltrain.core.conda_dependencies import CondaDependencies
    from jupyter_amltrain.core.runconfig import DEFAULT_CPU_IMAGE, DockerConfiguration
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.samples import TRAIN_ON_LOCAL

    ws = _workspace(args.workspace)
    print(f"Workspace {ws.name} at {engine_workspace(ws).root}")
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
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.runs.records import list_runs

    ws = _workspace(args.workspace)
    print(f"{'RUN ID':48} {'STATUS':12} {'TARGET':14} STARTED")
    for record in list_runs(engine_workspace(ws).store, args.experiment, limit=args.limit):
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        print(f"{record.run_id:48} {record.status:12} {record.target:14} {started}")
    return 0


def _run(ws: Any, run_id: str) -> Any:
    from jupyter_amltrain.core import Experiment, Run
    from jupyter_amltrain.core.workspace import engine_workspace
    from jupyter_amltrain.engine.runs.records import get_run

    record = get_run(engine_workspace(ws).store, run_id)
    if record is None:
        print(f"No run {run_id} in workspace {ws.name}. List them with `amltrain runs`.", file=sys.stderr)
        return None
    return Run(Experiment(ws, record.experiment), run_id)


def cmd_logs(args: argparse.Namespace) -> int:
    from jupyter_amltrain.core.workspace import engine_workspace
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
        with open_run_file(run_file(RunLayout(engine_workspace(ws).layout.run_dir(run.id)), STD_LOG)) as log:
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


def cmd_agent(args: argparse.Namespace) -> int:
    """The agent of the store home: start it, say how it is, or stop it (its runs go on)."""
    from jupyter_amltrain.engine.agent import agent_status, ensure_agent, stop_agent
    from jupyter_amltrain.engine.settings import load_settings

    home = Path(load_settings().home).expanduser().resolve()
    if args.action == "start":
        answer = ensure_agent(home)
        print(f"agent {answer.get('pid')} serving {home}")
        return 0
    if args.action == "stop":
        print(f"agent of {home} stopped; its runs go on and the next agent re-attaches to them"
              if stop_agent(home) else f"no agent running for {home}")
        return 0
    status = agent_status(home)
    if status is None:
        print(f"no agent running for {home} (it starts at the next submit, or with: amltrain agent start)")
        return 3  # as `systemctl status` says "not running"
    runs = status.get("runs", [])
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.get("started", 0)))
    print(f"agent {status.get('pid')} serving {home} since {since}, driving {len(runs)} run(s)")
    for run in runs:
        print(f"  {run['run_id']}  {Path(run['workspace']).name}  {run['phase']}")
    return 0


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
    agent = sub.add_parser("agent", help="the agent that drives every run of this store home")
    agent.add_argument("action", choices=["start", "status", "stop"])
    agent.set_defaults(func=cmd_agent)
    args = parser.parse_args(argv)
    from jupyter_amltrain.exceptions import AzureMLException

    try:
        return int(args.func(args))
    except AzureMLException as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
