"""The notebook magics: define environments and computes, submit the notebook's folder, watch runs.

    %%aml_env NAME [--no-build] [--base-image IMAGE]       conda-style YAML or a Dockerfile in the cell
    %aml_compute create NAME [--gpus all|N|0,1] [--max-nodes N] [--vm-size SIZE]
    %aml_compute list | status NAME
    run = %aml_submit [--env E] [--compute C] [--experiment X] [--wait] [--no-widget] SCRIPT [ARGS ...]
    %aml_runs [--experiment X] [--limit N]                 run history
    %aml_logs RUN_ID [--follow]
    %aml_cancel RUN_ID
    %aml_gpu                                               live GPU monitor

The magics are thin: they parse, pick defaults from the session (workspace, notebook folder, the last
environment), and call the v1 API and the widgets. Errors of the package show as one readable message
(IPython's UsageError) naming the problem and the fix, without a traceback through this module.
"""

from __future__ import annotations

import argparse
import functools
import html
import keyword
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from jupyter_amltrain.core.environment import check_environment_name, image_spec
from jupyter_amltrain.core.workspace import engine_workspace
from jupyter_amltrain.exceptions import AzureMLException, EnvironmentException, UserErrorException
from jupyter_amltrain.notebook.env_cell import parse_env_cell
from jupyter_amltrain.notebook.session import experiment_name_for, notebook_dir, session_workspace
from jupyter_amltrain.widgets.fallback import fmt_duration, html_table, text_table

F = TypeVar("F", bound=Callable[..., Any])
_GPU_IDS = re.compile(r"^\s*\d+\s*(,\s*\d+\s*)*,?\s*$")


def _readable_errors(method: F) -> F:
    """The package's errors as IPython usage errors: the message alone, no traceback into the magic."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AzureMLException as error:
            raise UsageError(str(error)) from error

    return wrapper  # type: ignore[return-value]


class TextTable:
    """A table that renders as HTML in notebooks and as aligned text elsewhere."""

    def __init__(self, title: str, headers: list[str], rows: list[list[str]]) -> None:
        self.title, self.headers, self.rows = title, headers, rows

    def __repr__(self) -> str:
        return f"{self.title}\n{text_table(self.headers, self.rows)}" if self.rows else f"{self.title}: none."

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.title)}: none.</p>"
        return f"<p><b>{html.escape(self.title)}</b></p>{html_table(self.headers, self.rows)}"


@magics_class
class AmlTrainMagics(Magics):
    """State of one notebook session: environments defined in it (with in-memory registry passwords)."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.environments: dict[str, Any] = {}
        self.last_environment: str | None = None
        self.last_run: Any = None
        self.last_details: Any = None
        self.last_history: Any = None
        self.last_monitor: Any = None

    # -- session --------------------------------------------------------------------------------------------
    @property
    def user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    def workspace(self) -> Any:
        return session_workspace(self.user_ns)

    @staticmethod
    def docker_available() -> bool:
        from jupyter_amltrain.engine.docker_engine import docker_client
        from jupyter_amltrain.exceptions import DockerEngineException

        try:
            docker_client()
            return True
        except DockerEngineException:
            return False

    # -- %%aml_env --------------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", help="environment name; the Environment is also left in the namespace under it")
    @argument("--no-build", action="store_true", help="register only; the image is built at the first submit")
    @argument("--base-image", default=None, help="base image (instead of a 'docker:' section in the cell)")
    @no_var_expand
    @cell_magic
    @_readable_errors
    def aml_env(self, line: str, cell: str) -> None:
        """Define, register and build an environment from the cell: conda-style YAML (dependencies, pip,
        optional docker/registry/user_managed/variables) or a Dockerfile. The cell is taken literally."""
        args = parse_argstring(AmlTrainMagics.aml_env, line)
        name: str = args.name
        ws = self.workspace()
        parsed = parse_env_cell(name, cell, base_image=args.base_image)
        environment = parsed.environment
        check_environment_name(name)  # refused by register(): say so before spending a build on it
        outcome = None if args.no_build else self._build(name, environment, ws)
        # Registered only once the image exists: a cell whose packages cannot install leaves nothing behind.
        registered = environment.register(ws)
        self.environments[name] = registered
        self.last_environment = name
        variable = _variable_name(name)
        shell: Any = self.shell
        shell.push({variable: registered})
        print(f"Environment '{name}' version {registered.version} registered in workspace '{ws.name}'; "
              f"the Environment is {variable!r} in the namespace.")
        from jupyter_amltrain.engine.images.spec import image_hash

        digest = image_hash(image_spec(environment))
        if outcome is None:
            print(f"Image hash {digest}: not built yet (--no-build); the first %aml_submit builds it.")
        else:
            print(f"{outcome}\nImage hash: {digest}")

    def _build(self, name: str, environment: Any, ws: Any) -> str:
        from jupyter_amltrain.widgets.build_progress import BuildProgress

        spec = image_spec(environment)
        password = environment.docker.base_image_registry.password
        settings = engine_workspace(ws).settings
        progress = BuildProgress(f"Environment {name}")
        progress.show()
        started = time.monotonic()
        try:
            if self.docker_available():
                from jupyter_amltrain.engine.docker_engine import docker_client
                from jupyter_amltrain.engine.images.builder import ImageBuilder

                built = ImageBuilder(docker_client(), settings).ensure(
                    spec, password=password, log=progress.log, progress=progress.progress)
                what, hit = f"Image {built.tag}", built.cache_hit
                if built.base_substituted:
                    progress.log(f"(base image substituted by the local {built.base_substituted})")
                runs_with = (f"jobs run {built.facts.interpreter} (Python {built.facts.python_version}) as "
                             f"{built.facts.runs_as}")
            else:
                if spec.dockerfile:
                    raise EnvironmentException(
                        f"Environment '{name}' is a Dockerfile, which needs the Docker engine, and it is not "
                        "answering. Start Docker (sudo systemctl start docker), or define the environment as "
                        "YAML to get a local virtual environment instead."
                    )
                from jupyter_amltrain.engine.images.localenv import ensure_local_env, local_env_path

                envs = Path(settings.home) / "envs"
                hit = spec.user_managed or (local_env_path(spec, envs) / "bin" / "python").exists()
                python = ensure_local_env(spec, envs, log=progress.log, settings=settings, progress=progress.progress)
                what = f"Local environment {python if spec.user_managed else python.parent.parent}"
                runs_with = f"jobs run {python}"
        except BaseException:
            progress.finish("build failed; nothing was registered", ok=False)
            raise
        took = time.monotonic() - started
        verdict = "cache hit, no build" if hit else f"cache miss, built in {took:.1f} s"
        summary = f"{what}: {verdict}; {runs_with}"
        progress.finish(summary)
        return summary

    # -- %aml_compute -----------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("action", choices=["create", "list", "status"])
    @argument("name", nargs="?", help="compute name (create, status)")
    @argument("--gpus", default=None,
              help="'all' (every host GPU per node), a count per node (2), or host GPU ids to use (0,1 or 0,)")
    @argument("--max-nodes", type=int, default=None, help="runs at once (default 4, as v1)")
    @argument("--vm-size", default=None, help="Azure VM size, sets GPUs per node (default STANDARD_NC6: 1)")
    @line_magic
    @_readable_errors
    def aml_compute(self, line: str) -> None:
        """Create a compute (a pool of local nodes), list them, or show one's status."""
        args = parse_argstring(AmlTrainMagics.aml_compute, line)
        ws = self.workspace()
        if args.action == "list":
            display(self._compute_table(ws))
            return
        if not args.name:
            raise UsageError(f"%aml_compute {args.action} needs a compute name, e.g. %aml_compute {args.action} "
                             "gpu-cluster")
        if args.action == "create":
            self._create_compute(ws, args)
        else:
            self._compute_status(ws, args.name)

    def _create_compute(self, ws: Any, args: argparse.Namespace) -> None:
        from jupyter_amltrain.core.compute import AmlCompute, ComputeTarget

        gpus_per_node, gpu_ids = parse_gpus(args.gpus, args.max_nodes, vm_size_given=args.vm_size is not None)
        config = AmlCompute.provisioning_configuration(
            vm_size=args.vm_size or "", max_nodes=args.max_nodes, gpus_per_node=gpus_per_node, gpu_ids=gpu_ids)
        target = ComputeTarget.create(ws, args.name, config)
        status = target.get_status()
        ids = f" (host GPUs {', '.join(map(str, status.gpu_ids))})" if status.gpu_ids else ""
        print(f"Compute '{args.name}' is ready: up to {config.max_nodes} run(s) at once, "
              f"{status.gpus_per_node} GPU(s) per node{ids}, vm_size {status.vm_size}.")
        print(f"Submit to it with %aml_submit --compute {args.name} SCRIPT (the default while it is the only "
              "compute).")

    def _compute_table(self, ws: Any) -> TextTable:
        from jupyter_amltrain.engine.compute import pools

        rows = []
        for pool in pools.list_pools(engine_workspace(ws).store):
            usage = pools.pool_usage(engine_workspace(ws).store, pool.name)
            rows.append([pool.name, pool.vm_size.upper(), f"{usage.running + usage.preparing}/{pool.max_nodes}",
                         str(usage.queued), str(pool.gpus_per_node), ",".join(map(str, pool.gpu_ids)) or "-",
                         pool.provisioning_state])
        headers = ["Name", "VM size", "Busy nodes", "Queued", "GPUs/node", "GPU ids", "State"]
        return TextTable(f"Computes of workspace {ws.name} (plus 'local')", headers, rows)

    def _compute_status(self, ws: Any, name: str) -> None:
        from jupyter_amltrain.core.compute import ComputeTarget

        target: Any = ComputeTarget(ws, name)
        status = target.get_status()
        counts = status.node_state_counts
        print(f"Compute '{name}' ({status.vm_size}, {status.provisioning_state}): allocation {status.allocation_state}")
        print(f"  nodes: {status.current_node_count} in use of {status.scale_settings['maxNodeCount']} "
              f"(running {counts['runningNodeCount']}, preparing {counts['preparingNodeCount']}); "
              f"{status.queued_run_count} run(s) queued")
        print(f"  GPUs per node: {status.gpus_per_node}; host GPUs: "
              f"{', '.join(map(str, status.gpu_ids)) or 'none (jobs use the CPU)'}")
        for node in target.list_nodes():
            print(f"  {node['nodeId']}: {node['runId']} (GPUs {node['gpus']})")
        for warning in status.errors or []:
            print(f"  warning: {warning}")

    # -- %aml_submit ------------------------------------------------------------------------------------------
    @magic_arguments()
    @argument("--env", default=None, help="environment (default: the last one defined with %%%%aml_env)")
    @argument("--compute", default=None, help="compute name or 'local' (default: the only compute, else local)")
    @argument("--experiment", default=None, help="experiment name (default: named after the notebook)")
    @argument("--wait", action="store_true", help="block until the run ends")
    @argument("--no-widget", action="store_true", help="no live widget (text output only)")
    @argument("script", help="script in the notebook's folder; options for the magic go before it")
    @argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    @line_magic
    @_readable_errors
    def aml_submit(self, line: str) -> Any:
        """Snapshot the notebook's folder and run SCRIPT in it; shows the live run and returns the Run."""
        from jupyter_amltrain.core.experiment import Experiment
        from jupyter_amltrain.core.runconfig import DockerConfiguration
        from jupyter_amltrain.core.script_run_config import ScriptRunConfig

        args = parse_argstring(AmlTrainMagics.aml_submit, line)
        ws = self.workspace()
        folder = notebook_dir(self.user_ns)
        environment = self._environment(ws, args.env)
        target = self._compute(ws, args.compute)
        experiment = args.experiment or experiment_name_for(self.user_ns)
        use_docker = self.docker_available()
        config = ScriptRunConfig(
            source_directory=str(folder), script=args.script, arguments=list(args.args),
            compute_target=target, environment=environment,
            docker_runtime_config=DockerConfiguration(use_docker=use_docker),
        )
        run = Experiment(ws, experiment).submit(config)
        self.last_run = run
        target_name = target if isinstance(target, str) else target.name
        env_name = environment.name if environment is not None else "v1's default environment"
        print(f"Submitted run {run.id} (#{run.number} of experiment {experiment}) to {target_name} "
              f"with {'environment ' + env_name if environment is not None else env_name}; "
              f"snapshot of {folder}.")
        details = None
        if not args.no_widget:
            from jupyter_amltrain.widgets.run_details import RunDetails

            details = RunDetails(run)
            details.show()
            self.last_details = details
        if args.wait:
            if details is None:
                run.wait_for_completion(show_output=True, raise_on_error=False)
            else:
                run.wait_for_completion(show_output=False, raise_on_error=False)
                details.wait(timeout=60)
                details._update_static_display()
                print(f"Run {run.id}: {run.get_status()}"
                      f" after {fmt_duration(_duration(run))}.")
        return run

    def _environment(self, ws: Any, name: str | None) -> Any:
        from jupyter_amltrain.core.environment import Environment

        name = name or self.last_environment
        if name is None:
            return None
        if name in self.environments:
            return self.environments[name]
        value = self.user_ns.get(name)
        if isinstance(value, Environment):
            return value
        try:
            return Environment.get(ws, name)
        except UserErrorException as error:
            raise UserErrorException(f"{error} Or define it in this notebook with %%aml_env {name}.") from None

    def _compute(self, ws: Any, name: str | None) -> Any:
        from jupyter_amltrain.core.compute import ComputeTarget
        from jupyter_amltrain.engine.compute import pools

        if name == pools.LOCAL_TARGET:
            return pools.LOCAL_TARGET
        if name:
            return ComputeTarget(ws, name)
        existing = pools.list_pools(engine_workspace(ws).store)
        if len(existing) == 1:
            return ComputeTarget(ws, existing[0].name)
        if existing:
            print(f"Several computes exist ({', '.join(p.name for p in existing)}): running on 'local'. "
                  "Pick one with --compute NAME.")
        return pools.LOCAL_TARGET

    # -- %aml_runs, %aml_logs, %aml_cancel, %aml_gpu --------------------------------------------------------
    @magic_arguments()
    @argument("--experiment", default=None, help="only this experiment's runs (default: all)")
    @argument("--limit", type=int, default=50, help="newest N runs (default 50)")
    @line_magic
    @_readable_errors
    def aml_runs(self, line: str) -> None:
        """Run history: sortable table, metric comparison of ticked runs, details of a clicked run."""
        from jupyter_amltrain.widgets.run_history import RunHistory

        args = parse_argstring(AmlTrainMagics.aml_runs, line)
        if args.limit < 1:
            raise UsageError("--limit must be 1 or more.")
        history = RunHistory(self.workspace(), args.experiment, limit=args.limit)
        self.last_history = history
        display(history)

    @magic_arguments()
    @argument("run_id")
    @argument("--follow", action="store_true", help="keep printing new lines until the run ends")
    @line_magic
    @_readable_errors
    def aml_logs(self, line: str) -> None:
        """Print a run's log (its output; the build log while the image builds); ``--follow`` until it ends."""
        from jupyter_amltrain.engine.views.logs import read_from
        from jupyter_amltrain.engine.views.run_details import current_log, load_run_details

        args = parse_argstring(AmlTrainMagics.aml_logs, line)
        ws = self.workspace()
        run = find_run(ws, args.run_id)
        local = engine_workspace(ws)
        if args.follow:
            self._follow_logs(local, run.id)
            return
        data = load_run_details(local.store, local.layout, run.id, with_metrics=False)
        assert data is not None
        name = current_log(data.log_files, data.record.status)
        if name is None:
            print(f"Run {run.id} ({data.record.status}) has no log yet.")
            return
        print(f"== {name} ==", flush=True)
        offset = 0
        while True:
            chunk = read_from(data.log_files[name], offset)
            if not chunk.text:
                break
            sys.stdout.write(chunk.text)
            offset = chunk.offset
        sys.stdout.flush()
        if data.record.terminal:
            print(f"== run {data.record.status} ==")

    @staticmethod
    def _follow_logs(local: Any, run_id: str) -> None:
        """The build log, then the job's output, as they are written, until the run ends: the engine's one
        follower, which also keeps the run driven (a killed agent is replaced)."""
        from jupyter_amltrain.engine.runs.follow import follow_run

        shown: str | None = None
        try:
            for event in follow_run(Path(local.settings.home), local.layout, run_id):
                if event.kind == "log":
                    if event.name != shown:
                        shown = event.name
                        print(f"== {event.name} ==", flush=True)
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif event.kind == "end":
                    if shown is None:
                        print(f"Run {run_id} ({event.status}) has no log.")
                    print(f"== run {event.status} ==")
        except KeyboardInterrupt:
            print(f"\nStopped following; run {run_id} goes on (cancel it with %aml_cancel {run_id}).")

    @magic_arguments()
    @argument("run_id")
    @line_magic
    @_readable_errors
    def aml_cancel(self, line: str) -> None:
        """Cancel a run (queued runs end at once; running ones get stopped)."""
        from jupyter_amltrain.engine.runs.statuses import is_terminal

        args = parse_argstring(AmlTrainMagics.aml_cancel, line)
        run = find_run(self.workspace(), args.run_id)
        before = run.get_status()
        if is_terminal(before):
            print(f"Run {run.id} already ended: {before}; nothing to cancel.")
            return
        run.cancel()
        print(f"Run {run.id}: {run.get_status()}")

    @magic_arguments()
    @argument("--window", type=int, default=300, help="seconds of history per chart (default 300)")
    @line_magic
    @_readable_errors
    def aml_gpu(self, line: str) -> None:
        """Live GPU monitor: utilization and memory per GPU, and the run holding it."""
        from jupyter_amltrain.widgets.gpu_monitor import GpuMonitor

        args = parse_argstring(AmlTrainMagics.aml_gpu, line)
        if self.last_monitor is not None:
            self.last_monitor.stop()  # one sampler per notebook is enough
        monitor = GpuMonitor(self.workspace(), window_seconds=max(args.window, 10))
        self.last_monitor = monitor
        display(monitor)


def parse_gpus(value: str | None, max_nodes: int | None, *, vm_size_given: bool) -> tuple[int | None, list[int] | None]:
    """``--gpus`` as (gpus_per_node, gpu_ids): ``all`` gives each node every host GPU; ``N`` N GPUs per node;
    ``0,1`` pins those host GPUs (``0,`` for one), shared out among the nodes unless ``--vm-size`` says how
    many each node holds."""
    if value is None:
        return None, None
    text = value.strip().lower()
    if text == "all":
        from jupyter_amltrain.engine.compute.gpus import detect_gpus

        host = [gpu.index for gpu in detect_gpus()]
        return len(host), (host or None)
    if text.isdigit():
        return int(text), None
    if _GPU_IDS.match(text):
        ids = sorted({int(part) for part in text.split(",") if part.strip()})
        if vm_size_given:
            return None, ids
        nodes = max_nodes if max_nodes else 4
        return max(len(ids) // nodes, 1), ids
    raise UserErrorException(
        f"--gpus {value!r} is not understood. Use 'all' (every GPU of this host on each node), a number of GPUs "
        "per node such as 2, or host GPU ids such as 0,1 (a single id as 0,)."
    )


def find_run(ws: Any, run_id: str) -> Any:
    """The ``Run`` with this id in the workspace, whatever its experiment."""
    from jupyter_amltrain.core.experiment import Experiment
    from jupyter_amltrain.core.run import Run
    from jupyter_amltrain.engine.runs.records import get_run

    record = get_run(engine_workspace(ws).store, run_id)
    if record is None:
        raise UserErrorException(f"No run {run_id!r} in workspace '{ws.name}'. List the runs with %aml_runs.")
    return Run(Experiment(ws, record.experiment, _skip_name_validation=True), run_id)


def _variable_name(name: str) -> str:
    """``name`` as a Python variable (``sklearn-env`` -> ``sklearn_env``)."""
    variable = re.sub(r"\W", "_", name)
    if not variable or variable[0].isdigit() or keyword.iskeyword(variable):
        variable = f"env_{variable}"
    return variable


def _duration(run: Any) -> float | None:
    from jupyter_amltrain.engine.runs.records import get_run

    record = get_run(engine_workspace(run.experiment.workspace).store, run.id)
    return None if record is None else record.duration
