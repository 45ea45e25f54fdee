"""``Run``: v1's handle on a run, in the notebook and inside the job.

Inside a job this module must import with the standard library alone (the job's image may have nothing
else), so everything host-side is imported inside the methods that need it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from jupyter_amltrain.engine.runs import statuses
from jupyter_amltrain.engine.runtime.context import JobContext
from jupyter_amltrain.engine.runtime.job_run import Run as JobSideRun

if TYPE_CHECKING:
    from jupyter_amltrain.core.experiment import Experiment
    from jupyter_amltrain.core.model import Model
    from jupyter_amltrain.engine.runs.artifacts import RunFile
    from jupyter_amltrain.engine.runs.records import RunRecord

# v1 names (azureml.core.run) for the engine's groupings
RUNNING_STATES = statuses.RUNNING
POST_PROCESSING_STATES = statuses.POST_PROCESSING
LOG_ALIASES = {"azureml-logs/70_driver_log.txt": "user_logs/std_log.txt"}
# get_file_names() returns a list (v1): a run holding more files than this lists this many, with a warning.
MAX_FILE_NAMES = 10_000


class Run:
    """A run of an experiment: ``Run(experiment, run_id)`` reattaches to an existing one."""

    RUN_TYPE = "azureml.scriptrun"

    def __init__(self, experiment: Experiment, run_id: str, outputs: Any = None, **kwargs: Any):
        self._experiment = experiment
        self._run_id = run_id
        if self._record() is None:
            from jupyter_amltrain.exceptions import UserErrorException

            raise UserErrorException(
                f"Run {run_id!r} not found in experiment {experiment.name!r} of workspace "
                f"{experiment.workspace.name!r}. List runs with experiment.get_runs()."
            )

    # -- inside the job ---------------------------------------------------------------------------------------
    @classmethod
    def get_context(cls, allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any) -> Any:
        """The run this process belongs to: the job's inside a job, v1's offline run elsewhere. The same object
        as inside a container (``engine/runtime/job_run.py``), so a script behaves alike everywhere."""
        if not allow_offline and JobContext.from_env() is None:
            from jupyter_amltrain.exceptions import RunEnvironmentException

            raise RunEnvironmentException(
                "Run.get_context(allow_offline=False) was called outside a submitted run. Submit the script "
                "with Experiment.submit(), or allow an offline run."
            )
        return JobSideRun.get_context(allow_offline, used_for_context_manager, **kwargs)

    # -- identity ---------------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._run_id

    @property
    def experiment(self) -> Experiment:
        return self._experiment

    @property
    def number(self) -> int:
        return self._require().number

    @property
    def status(self) -> str:
        return self.get_status()

    @property
    def type(self) -> str:
        return self.RUN_TYPE

    @property
    def tags(self) -> dict[str, Any]:
        return self.get_tags()

    @property
    def properties(self) -> dict[str, Any]:
        return self.get_properties()

    @property
    def display_name(self) -> str:
        return self._run_id

    # -- host-side plumbing -----------------------------------------------------------------------------------
    @property
    def _ws(self) -> Any:
        return self._experiment.workspace._local

    def _record(self) -> RunRecord | None:
        from jupyter_amltrain.engine.runs.records import get_run

        return get_run(self._ws.store, self._run_id)

    def _require(self) -> RunRecord:
        record = self._record()
        if record is None or record.experiment != self._experiment.name:
            from jupyter_amltrain.exceptions import UserErrorException

            raise UserErrorException(f"Run {self._run_id!r} not found in experiment {self._experiment.name!r}.")
        return record

    def _layout(self) -> Any:
        from jupyter_amltrain.engine.store.layout import RunLayout

        return RunLayout(self._ws.layout.run_dir(self._run_id))

    def _ingest(self) -> None:
        import sqlite3
        import warnings

        from jupyter_amltrain.engine.store.disk import is_disk_full
        from jupyter_amltrain.engine.tracking.ingest import ingest_events

        try:
            ingest_events(self._ws.store, self._run_id, self._layout().events)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            # Reading must work on a full disk: what is in the store is shown; the rest waits in its file.
            if not self._events_pending():
                return
            warnings.warn(f"The disk holding workspace {self._ws.name} is full, so the newest metrics, tags and "
                          f"properties of run {self._run_id} are not in the store yet ({exc}).", RuntimeWarning,
                          stacklevel=3)

    def _events_pending(self) -> bool:
        row = self._ws.store.query_one("SELECT offset FROM ingest_offsets WHERE run_id = ?", (self._run_id,))
        try:
            return self._layout().events.stat().st_size > (int(row[0]) if row else 0)
        except OSError:
            return False

    def _still_active(self) -> bool:
        """Whether the run is still going, for loops that wait on it. A waiter also keeps the run supervised:
        a supervisor killed meanwhile is replaced within seconds, else the wait would never end."""
        from jupyter_amltrain.engine.runs.recovery import ensure_supervised

        active = self.get_status() in RUNNING_STATES + POST_PROCESSING_STATES
        if active:
            ensure_supervised(self._ws, self._run_id)
        return active

    # -- status and details -----------------------------------------------------------------------------------
    def get_status(self) -> str:
        return self._require().status

    def get_detailed_status(self) -> dict[str, Any]:
        from jupyter_amltrain.engine.runs.records import status_history

        record = self._require()
        return {
            "status": record.status,
            "details": record.sub_status,
            "history": [{**h, "time": _iso(h["time"])} for h in status_history(self._ws.store, self._run_id)],
        }

    def get_details(self) -> dict[str, Any]:
        record = self._require()
        details: dict[str, Any] = {
            "runId": record.run_id,
            "target": record.target,
            "status": record.status,
        }
        if record.sub_status:
            details["subStatus"] = record.sub_status
        if record.started is not None:
            details["startTimeUtc"] = _iso(record.started)
        if record.ended is not None:
            details["endTimeUtc"] = _iso(record.ended)
        details["properties"] = dict(record.properties)
        details["inputDatasets"] = []
        details["outputDatasets"] = []
        details["runDefinition"] = record.definition
        details["logFiles"] = {name: str(log.path) for name, log in self._log_files().items()}
        details["submittedBy"] = _user()
        if record.error:
            details["error"] = record.error
        if record.warnings:
            details["warnings"] = record.warnings
        return details

    def get_details_with_logs(self) -> dict[str, Any]:
        from jupyter_amltrain.engine.runs.artifacts import RunFileError, open_run_file

        details = self.get_details()
        logs: dict[str, str] = {}
        for name, log in self._log_files().items():
            try:  # never a link or FIFO the job left in ./logs (those are not even listed)
                with open_run_file(log) as handle:
                    logs[name] = handle.read().decode("utf-8", "replace")
            except RunFileError:  # gone, or swapped for a link, since it was listed
                continue
        details["logFiles"] = logs
        return details

    # -- files ------------------------------------------------------------------------------------------------
    # Every read of the run's folder goes through engine.runs.artifacts: what a job leaves there (links to host
    # files, FIFOs, devices, a million files) is never followed, opened, or listed whole.
    def _log_files(self) -> dict[str, RunFile]:
        from jupyter_amltrain.engine.runs.artifacts import run_log_files

        # v1 notebooks read the job's output under the runtime-v1 name (70_driver_log.txt) too
        return run_log_files(self._layout(), driver_alias=True)

    def get_file_names(self) -> list[str]:
        """The run's files in name order: its logs, outputs/ and uploaded files; at most ``MAX_FILE_NAMES``
        (with a warning): a job can leave millions, and v1 returns them as one list."""
        import warnings

        from jupyter_amltrain.engine.runs.artifacts import list_run_files

        page = list_run_files(self._layout(), limit=MAX_FILE_NAMES, driver_alias=True)
        if page.next_after is not None:
            warnings.warn(
                f"Run {self._run_id} has more than {MAX_FILE_NAMES} files: get_file_names() lists the first "
                f"{MAX_FILE_NAMES} in name order. run.download_files(prefix='outputs/...') copies every file under "
                "a prefix, however many.", UserWarning, stacklevel=2)
        return page.names

    def _run_file(self, name: str) -> RunFile:
        """Run file ``name``, a regular file of the run now; refusals name the fix."""
        from jupyter_amltrain.engine.runs.artifacts import (
            RunFileMissing,
            RunFileRefused,
            clean_name,
            find_run_file,
            list_run_files,
        )
        from jupyter_amltrain.exceptions import UserErrorException

        clean = clean_name(name)
        try:
            return find_run_file(self._layout(), clean)
        except RunFileRefused as refusal:
            raise RunFileRefused(f"{refusal} (run {self._run_id}; see run.get_file_names() for its files)") from None
        except RunFileMissing:
            known = list_run_files(self._layout(), limit=20, driver_alias=True)
            raise UserErrorException(
                f"File {name!r} is not among the files of run {self._run_id}. Known files: "
                f"{', '.join(known.names) or 'none'}{', ...' if known.next_after else ''} "
                "(see run.get_file_names())."
            ) from None

    def download_file(self, name: str, output_file_path: str | None = None, _validate_checksum: bool = False) -> None:
        from jupyter_amltrain.engine.runs.artifacts import copy_run_file

        source = self._run_file(name)
        target = Path(output_file_path) if output_file_path else Path(Path(name).name)
        if target.is_dir():
            target = target / Path(name).name
        copy_run_file(source, target)

    def download_files(
        self,
        prefix: str | None = None,
        output_directory: str | None = None,
        output_paths: list[str] | None = None,
        batch_size: int = 100,
        append_prefix: bool = True,
        timeout_seconds: int | None = None,
    ) -> None:
        from jupyter_amltrain.engine.runs.artifacts import copy_run_file, iter_run_files
        from jupyter_amltrain.exceptions import UserErrorException

        root = Path(output_directory or ".").resolve()
        # Every matching file, not get_file_names()'s first page; listed lazily unless output_paths needs a count.
        files: Iterable[RunFile] = iter_run_files(self._layout(), prefix=prefix or "", driver_alias=True)
        if output_paths is not None:
            matching = list(files)
            if len(output_paths) != len(matching):
                raise UserErrorException(
                    f"output_paths has {len(output_paths)} entries but {len(matching)} files match; pass one per "
                    "file."
                )
            files = matching
        for index, file in enumerate(files):
            name = file.name
            relative = name if append_prefix or not prefix else name[len(prefix) :].lstrip("/")
            target = (root / (output_paths[index] if output_paths else relative)).resolve()
            if root not in target.parents and target != root:
                raise UserErrorException(f"Refusing to write {name!r} outside {root}: path escapes the folder.")
            copy_run_file(file, target)

    def get_all_logs(self, destination: str | None = None) -> list[str]:
        from jupyter_amltrain.engine.runs.artifacts import copy_run_file

        root = Path(destination or Path("assets") / self._run_id)
        written = []
        for name, log in self._log_files().items():
            target = root / name
            copy_run_file(log, target)
            written.append(str(target))
        return written

    def upload_file(self, name: str, path_or_stream: str | IO[bytes], datastore_name: str | None = None) -> Any:
        return self._tracker().upload_file(name, path_or_stream)

    def upload_folder(self, name: str, path: str, datastore_name: str | None = None) -> Any:
        return self._tracker().upload_folder(name, path)

    # -- metrics, tags, properties --------------------------------------------------------------------------
    def _tracker(self) -> Any:
        return _HostTracker(self)

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        self._tracker().log(name, value, description, step)

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        self._tracker().log_list(name, value, description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._tracker().log_row(name, description, **kwargs)

    def log_table(self, name: str, value: Any, description: str = "") -> None:
        self._tracker().log_table(name, value, description)

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> Any:
        return self._tracker().log_image(name, path=path, plot=plot, description=description)

    def tag(self, key: str, value: Any = None) -> None:
        self._tracker().tag(key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._tracker().set_tags(tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        self._tracker().add_properties(properties)

    def get_tags(self) -> dict[str, Any]:
        self._ingest()
        return dict(self._require().tags)

    def get_properties(self) -> dict[str, Any]:
        self._ingest()
        return dict(self._require().properties)

    def get_metrics(
        self, name: str | None = None, recursive: bool = False, run_type: str | None = None, populate: bool = False
    ) -> dict[str, Any]:
        from jupyter_amltrain.engine.tracking.query import get_metrics

        self._ingest()
        metrics = get_metrics(self._ws.store, self._run_id, name)
        return {self._run_id: metrics} if recursive else metrics

    def get_system_metrics(self, name: str | None = None) -> dict[str, Any]:
        """Extension: the job's GPU, CPU and memory readings, ``{name: {"time": [...], "value": [...]}}``
        (names such as ``cpu_utilization_percentage``, ``memory_usage_bytes``, ``gpu_0_utilization_percentage``).
        Kept apart from ``get_metrics()``, which keeps v1's shape."""
        from jupyter_amltrain.engine.tracking.system_metrics import get_system_metrics

        self._require()
        return get_system_metrics(self._ws.store, self._run_id, name)

    def flush(self, timeout_seconds: int = 300) -> None:
        self._tracker().flush()

    # -- control ----------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        from jupyter_amltrain.engine.runs.records import request_cancel

        request_cancel(self._ws.store, self._run_id)

    def wait_for_completion(
        self, show_output: bool = False, wait_post_processing: bool = False, raise_on_error: bool = True
    ) -> dict[str, Any]:
        from jupyter_amltrain.exceptions import ActivityFailedException, ExperimentExecutionException

        try:
            if show_output:
                self._stream_until_done(sys.stdout, wait_post_processing)
            else:
                while self._still_active():
                    time.sleep(0.25)
        except KeyboardInterrupt:
            raise ExperimentExecutionException(
                "The output streaming for the run interrupted.\nBut the run is still executing on the compute "
                "target. \nDetails for canceling the run can be found here: https://aka.ms/aml-docs-cancel-run "
                f"(locally: run.cancel(), or `amltrain cancel {self._run_id}`)."
            ) from None
        self._ingest()
        details = self.get_details()
        if show_output:
            self._print_summary(details, sys.stdout)
        error = details.get("error")
        if error and raise_on_error:
            raise ActivityFailedException(error_details=json.dumps(error, indent=4))
        return details

    def _stream_until_done(self, out: IO[str], wait_post_processing: bool) -> None:
        """v1's stream: the image build log, then the job's output, each under its header, until the run ends.
        Through the engine's one follower (the agent publishes each line as it lands): a line reaches the
        notebook in milliseconds, and a driver killed meanwhile is replaced (the follower starts the agent)."""
        from jupyter_amltrain.engine.runs.follow import STREAMED_LOGS, follow_run

        out.write(f"RunId: {self._run_id}\nWeb View: {self.get_portal_url()}\n\n")
        out.flush()
        current = -1
        pending = ""
        local = self._ws
        for event in follow_run(Path(local.settings.home), local.layout, self._run_id):
            if event.kind != "log":
                continue
            index = STREAMED_LOGS.index(event.name)
            if index < current:
                continue  # v1 streams each log until the next one begins
            if index > current:
                if pending:
                    out.write(pending + "\n")
                pending = ""
                current = index
                out.write(f"Streaming {event.name}\n{'=' * (len(event.name) + 10)}\n\n")
            pending += event.text
            if "\n" in pending:
                complete, pending = pending.rsplit("\n", 1)
                out.write(complete + "\n")
            out.flush()
        if pending:
            out.write(pending + "\n")
        out.write("\n")
        out.flush()

    def _print_summary(self, details: dict[str, Any], out: IO[str]) -> None:
        out.write(f"Execution Summary\n=================\nRunId: {self._run_id}\nWeb View: {self.get_portal_url()}\n\n")
        warnings = [w.get("message") for w in details.get("warnings", []) if w.get("message")]
        if warnings:
            out.write("Warnings:\n" + "\n".join(warnings) + "\n\n")
        if details.get("error"):
            out.write("Error:\n" + json.dumps(details["error"], indent=4) + "\n\n")
        out.flush()

    def get_portal_url(self) -> str:
        return self._layout().root.as_uri()

    # -- models -----------------------------------------------------------------------------------------------
    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        description: str | None = None,
        datasets: Any = None,
        sample_input_dataset: Any = None,
        sample_output_dataset: Any = None,
        resource_configuration: Any = None,
        **kwargs: Any,
    ) -> Model:
        from jupyter_amltrain.core.model import Model

        return Model._register_from_run(
            self,
            model_name,
            model_path or "outputs",
            tags=tags,
            properties=properties,
            description=description,
            model_framework=model_framework,
            model_framework_version=model_framework_version,
        )

    # -- display ----------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return (
            f"Run(Experiment: {self._experiment.name},\nId: {self._run_id},\nType: {self.RUN_TYPE},\n"
            f"Status: {self.get_status()})"
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        cells = [
            self._experiment.name,
            self._run_id,
            self.RUN_TYPE,
            self.get_status(),
            f'<a href="{self.get_portal_url()}">Link to run folder</a>',
        ]
        head = "".join(f"<th>{h}</th>" for h in ("Experiment", "Id", "Type", "Status", "Details Page"))
        row = "".join(f"<td>{c if c.startswith('<a') else html.escape(c)}</td>" for c in cells)
        return f"<table><tr>{head}</tr><tr>{row}</tr></table>"


class _HostTracker:
    """Logging to a run from the notebook: rows go straight into the store."""

    def __init__(self, run: Run):
        self.run = run

    def _log(self, kind: str, name: str, value: Any, step: int | None = None, description: str = "") -> None:
        from jupyter_amltrain.engine.tracking.record import log_to_store

        log_to_store(self.run._ws.store, self.run.id, kind, name, value, step=step, description=description or "")

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        self._log("scalar", name, value, step, description)

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        # list() of a non-iterable would raise TypeError before the name is checked; the engine refuses it.
        self._log("list", name, list(value) if isinstance(value, Iterable) else value, None, description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._log("row", name, kwargs, None, description or "")

    def log_table(self, name: str, value: Any, description: str = "") -> None:
        self._log("table", name, value, None, description)

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> Any:
        from jupyter_amltrain.engine.runtime.values import MetricValueError, check_name
        from jupyter_amltrain.exceptions import UserErrorException

        try:
            check_name(name)  # before _context(), which creates the run's event file
            return self._context().log_image(name, path=path, plot=plot, description=description)
        except MetricValueError as exc:  # the job's error class; the notebook gets v1's, as for log()
            raise UserErrorException(str(exc)) from exc

    def _context(self) -> JobContext:
        layout = self.run._layout().ensure()
        return JobContext(run_id=self.run.id, tracking_dir=str(layout.tracking), workdir=str(layout.wd))

    def tag(self, key: str, value: Any = None) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: dict[str, Any]) -> None:
        from jupyter_amltrain.engine.tracking.record import set_tags_in_store

        set_tags_in_store(self.run._ws.store, self.run.id, tags)

    def add_properties(self, properties: dict[str, Any]) -> None:
        from jupyter_amltrain.engine.tracking.record import add_properties_in_store

        add_properties_in_store(self.run._ws.store, self.run.id, properties)

    def upload_file(self, name: str, path_or_stream: Any) -> Any:
        result = self._context().upload_file(name, path_or_stream)
        self.run._ingest()
        return result

    def upload_folder(self, name: str, path: str) -> Any:
        result = self._context().upload_folder(name, path)
        self.run._ingest()
        return result

    def flush(self) -> None:
        return None


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int((epoch % 1) * 1e6):06d}Z"


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def iter_runs(records: list[RunRecord], experiment: Experiment) -> Iterator[Run]:
    from jupyter_amltrain.core.script_run import ScriptRun

    for record in records:
        yield ScriptRun(experiment, record.run_id)
