"""The tracker behind ``Run.get_context()``: ``JobContext`` inside a job, ``OfflineContext`` outside one.

Runs inside job containers: standard library only, valid Python 3.6.

``JobContext`` validates each call with v1's rules (``values``) and appends an event to the run's
``tracking/events.jsonl``; the host turns events into store rows (``engine.tracking.ingest``). Files go
straight into the run folder: names under ``outputs/`` or ``logs/`` into the job's working directory
(where v1 collects them), any other name into ``<run>/uploads/``.
"""


import io
import os
import shutil
import time
from typing import Any, List, Mapping, Optional, Tuple, Union

from jupyter_amltrain.engine.runtime.events import EventWriter
from jupyter_amltrain.engine.runtime.values import (
    MetricValueError,
    Warn,
    check_description,
    check_name,
    check_step,
    check_tag_key,
    check_tag_value,
    list_value,
    row_value,
    scalar_value,
    table_value,
    tag_value,
    warn_to_stderr,
)

ENV_RUN_ID = "AZUREML_RUN_ID"
ENV_EXPERIMENT = "AZUREML_ARM_PROJECT_NAME"
ENV_TRACKING_DIR = "AMLTRAIN_TRACKING_DIR"
ENV_WORKDIR = "AMLTRAIN_RUN_WORKDIR"
EVENTS_FILE = "events.jsonl"
# Artifact names under these prefixes live in the job's working directory, as v1's outputs/ and logs/ do.
WORKDIR_PREFIXES = ("outputs/", "logs/")
# Where those files sit relative to the run folder on the host (RunLayout.wd and RunLayout.uploads).
WORKDIR_IN_RUN = "wd"
UPLOADS_IN_RUN = "uploads"

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def data_location(run_id: str, artifact_name: str) -> str:
    """v1's data location string stored as the value of an image metric."""
    return "aml://artifactId/ExperimentRun/dcid.%s/%s" % (run_id, artifact_name)


def check_artifact_name(name: Any) -> str:
    """A run-relative artifact name in POSIX form; refuses anything that could leave the run folder."""
    if not isinstance(name, str) or not name.strip():
        raise MetricValueError("Artifact name must be a non-empty string such as 'outputs/model.pkl', got %r."
                               % (name,))
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (len(name) > 1 and name[1] == ":"):
        raise MetricValueError(
            "Artifact name %r is absolute; give a path inside the run, such as 'outputs/%s'."
            % (name, os.path.basename(name.rstrip("/\\")) or "file")
        )
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise MetricValueError(
            "Artifact name %r contains '..'; give a path inside the run, such as 'outputs/%s'."
            % (name, parts[-1] if parts[-1] != ".." else "file")
        )
    if not parts:
        raise MetricValueError("Artifact name %r names no file; use a name such as 'outputs/model.pkl'." % name)
    return "/".join(parts)


def image_type(path: str) -> Optional[str]:
    """The image format of ``path`` from its first bytes (v1 refused files ``imghdr`` did not recognise)."""
    with open(path, "rb") as f:
        head = f.read(16)
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


class JobContext:
    """Logging for a run from inside its job; every call is durable in events.jsonl when it returns."""

    def __init__(
        self,
        run_id: str,
        tracking_dir: str,
        workdir: str,
        experiment_name: str = "",
        warn: Warn = warn_to_stderr,
    ):
        self.run_id = run_id
        self.experiment_name = experiment_name
        self.tracking_dir = os.path.abspath(tracking_dir)
        self.workdir = os.path.abspath(workdir)
        self.uploads_dir = os.path.join(os.path.dirname(self.tracking_dir), UPLOADS_IN_RUN)
        self._warn = warn
        self._events = EventWriter(os.path.join(self.tracking_dir, EVENTS_FILE))

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> Optional["JobContext"]:
        """The context of the job this process belongs to, or None when not started as a job."""
        env = os.environ if environ is None else environ
        run_id = env.get(ENV_RUN_ID)
        tracking_dir = env.get(ENV_TRACKING_DIR)
        if not run_id or not tracking_dir:
            return None
        workdir = env.get(ENV_WORKDIR) or os.getcwd()
        return cls(run_id, tracking_dir, workdir, experiment_name=env.get(ENV_EXPERIMENT, ""))

    # -- metrics ---------------------------------------------------------------------------------------

    def log(self, name: str, value: Any, description: str = "", step: Optional[int] = None) -> None:
        name = check_name(name)
        self._events.metric("scalar", name, scalar_value(name, value, self._warn), check_step(name, step),
                            check_description(description))

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        name = check_name(name)
        self._events.metric("list", name, list_value(name, value, self._warn), None,
                            check_description(description))

    def log_row(self, name: str, description: Optional[str] = None, **kwargs: Any) -> None:
        name = check_name(name)
        self._events.metric("row", name, row_value(name, kwargs, self._warn), None,
                            check_description(description))

    def log_table(self, name: str, value: Any, description: str = "") -> None:
        name = check_name(name)
        self._events.metric("table", name, table_value(name, value, self._warn), None,
                            check_description(description))

    def log_image(self, name: str, path: Any = None, plot: Any = None, description: str = "") -> str:
        """Store an image file or a matplotlib figure as an artifact; returns its data location."""
        name = check_name(name)
        if (path is None) == (plot is None):
            raise MetricValueError(
                "TwoInvalidArgument: log_image(%r) takes exactly one of path= or plot=, got %s. "
                "Pass path='outputs/figure.png' for a saved image or plot=fig for a matplotlib figure."
                % (name, "both" if path is not None else "neither")
            )
        artifact = self._log_image_file(name, os.fspath(path)) if path is not None else self._log_plot(name, plot)
        location = data_location(self.run_id, artifact)
        self._events.metric("image", name, location, None, check_description(description))
        return location

    def _log_image_file(self, name: str, path: str) -> str:
        if not os.path.isfile(path):
            raise MetricValueError(
                "log_image(%r, path=%r): no such file (relative paths start at %s). Check the path."
                % (name, path, os.getcwd())
            )
        if image_type(path) is None:
            raise MetricValueError(
                "MalformedArgument: log_image(%r, path=%r) is not a PNG, JPEG, GIF, BMP, TIFF or WebP image. "
                "Save the image in one of those formats." % (name, path)
            )
        # v1 uses the given path as the artifact name; a path outside the working dir keeps its file name.
        relative = not os.path.isabs(path) and ".." not in path.replace("\\", "/").split("/")
        artifact = check_artifact_name(path if relative else os.path.basename(path))
        self.upload_file(artifact, path)
        return artifact

    def _log_plot(self, name: str, plot: Any) -> str:
        savefig = getattr(plot, "savefig", None)
        if not callable(savefig):
            raise MetricValueError(
                "ArgumentInvalid: log_image(%r, plot=...) needs a matplotlib figure or the matplotlib.pyplot "
                "module, got %s." % (name, type(plot).__name__)
            )
        stem = check_artifact_name("%s_%d" % (name, int(time.time())))  # v1's plot artifact name
        artifact, target = stem + ".png", self._target(stem + ".png")[0]
        n = 1
        while os.path.exists(target):  # two plots in one second would overwrite each other in v1
            artifact = "%s_%d.png" % (stem, n)
            target = self._target(artifact)[0]
            n += 1
        stream = io.BytesIO()
        savefig(stream, format="png")
        self._write_bytes(target, stream.getvalue())
        self._events.file(artifact, self._target(artifact)[1])
        return artifact

    # -- tags and properties ---------------------------------------------------------------------------

    def tag(self, key: str, value: Any = None) -> None:
        key = check_tag_key(key)
        self._events.tag(key, check_tag_value(key, value))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not isinstance(tags, Mapping):
            raise MetricValueError("set_tags needs a dict of tag key -> value, got %s." % type(tags).__name__)
        # Check every pair before writing any, so a refused call leaves no tag behind.
        checked = [(check_tag_key(k), check_tag_value(str(k), v)) for k, v in tags.items()]
        for key, value in checked:
            self._events.tag(key, value)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        """Properties are immutable in v1: the host ignores (with a run warning) a changed value for a key."""
        if not isinstance(properties, Mapping):
            raise MetricValueError(
                "add_properties needs a dict of property key -> value, got %s." % type(properties).__name__
            )
        checked = [(check_tag_key(k, "Property"), check_tag_value(str(k), v, "Property"))
                   for k, v in properties.items()]
        for key, value in checked:
            self._events.property(key, value)

    # -- files -----------------------------------------------------------------------------------------

    def _target(self, artifact: str) -> Tuple[str, str]:
        """(path in this process, path relative to the run folder) of an artifact name."""
        if artifact.startswith(WORKDIR_PREFIXES):
            return os.path.join(self.workdir, artifact), WORKDIR_IN_RUN + "/" + artifact
        return os.path.join(self.uploads_dir, artifact), UPLOADS_IN_RUN + "/" + artifact

    @staticmethod
    def _write_bytes(target: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = "%s.tmp.%d" % (target, os.getpid())
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)  # readers never see a half-written file

    def upload_file(self, name: str, path_or_stream: Any) -> str:
        """Copy a file (path or binary/text stream) into the run under artifact ``name``; returns the name."""
        artifact = check_artifact_name(name)
        target, source = self._target(artifact)
        if isinstance(path_or_stream, (str, bytes, os.PathLike)):
            path = os.fsdecode(path_or_stream)
            if not os.path.isfile(path):
                raise MetricValueError(
                    "upload_file(%r, %r): no such file (relative paths start at %s). Check the path."
                    % (name, path, os.getcwd())
                )
            if not (os.path.exists(target) and os.path.samefile(path, target)):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                tmp = "%s.tmp.%d" % (target, os.getpid())
                shutil.copyfile(path, tmp)
                os.replace(tmp, target)
        elif callable(getattr(path_or_stream, "read", None)):
            data = path_or_stream.read()
            self._write_bytes(target, data.encode("utf-8") if isinstance(data, str) else bytes(data))
        else:
            raise MetricValueError(
                "upload_file(%r, ...) needs a file path or an open stream, got %s."
                % (name, type(path_or_stream).__name__)
            )
        self._events.file(artifact, source)
        return artifact

    def upload_folder(self, name: str, path: Any) -> List[str]:
        """Upload every file under folder ``path`` as ``name/<relative path>``; returns the artifact names."""
        prefix = check_artifact_name(name)
        folder = os.fspath(path)
        if not os.path.isdir(folder):
            raise MetricValueError(
                "upload_folder(%r, %r): no such folder (relative paths start at %s). Check the path."
                % (name, folder, os.getcwd())
            )
        names = []
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            for file_name in sorted(files):
                full = os.path.join(root, file_name)
                relative = os.path.relpath(full, folder).replace(os.sep, "/")
                names.append(self.upload_file(prefix + "/" + relative, full))
        return names

    def flush(self, timeout_seconds: int = 300) -> None:
        """Nothing to wait for: every event is in events.jsonl when its call returns (v1 batched uploads)."""

    def close(self) -> None:
        self._events.close()


class OfflineContext:
    """``Run.get_context()`` outside a job: v1's ``_OfflineRun`` prints what it would log, stores nothing."""

    def log(self, name: str, value: Any, description: str = "", step: Optional[int] = None) -> None:
        print("Attempted to log scalar metric %s:\n%s" % (name, value))

    def log_list(self, name: str, value: Any, description: str = "") -> None:
        print("Attempted to log list metric %s:\n%s" % (name, value))

    def log_row(self, name: str, description: Optional[str] = None, **kwargs: Any) -> None:
        print("Attempted to log row metric %s:\n%s" % (name, kwargs))

    def log_table(self, name: str, value: Any, description: str = "") -> None:
        print("Attempted to log table metric %s:\n%s" % (name, value))

    def log_image(self, name: str, path: Any = None, plot: Any = None, description: str = "") -> None:
        print("Attempted to log image metric %s:\n%s" % (name, path if path is not None else plot))

    def tag(self, key: str, value: Any = None) -> None:
        print("Attempted to tag %s with %s" % (key, tag_value(value)))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        print("Attempted to add properties %s" % (dict(properties),))

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        print("Attempted to track file %s at %s" % (name, path_or_stream))

    def upload_folder(self, name: str, path: Any) -> None:
        print("Attempted to track folder %s at %s" % (name, path))

    def flush(self, timeout_seconds: int = 300) -> None:
        pass

    def close(self) -> None:
        pass


def get_context() -> Union[JobContext, OfflineContext]:
    """The tracker for this process: the job's when started as one, else the offline one."""
    context = JobContext.from_env()
    return context if context is not None else OfflineContext()


__all__ = [
    "JobContext",
    "MetricValueError",
    "OfflineContext",
    "check_artifact_name",
    "data_location",
    "get_context",
]
