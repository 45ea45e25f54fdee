"""The folders of a workspace on disk. Every path the core writes is derived here, nowhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jupyter_amltrain.exceptions import UserErrorException

# Run ids and names become folder names; refuse anything that could climb out of the workspace.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}$")


def check_safe_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _SAFE_ID.match(value) or ".." in value:
        raise UserErrorException(
            f"{kind} {value!r} is not a valid identifier: use letters, digits, '-', '_' and '.', starting with "
            "a letter or digit, at most 256 characters, and no '..'."
        )
    return value


@dataclass(frozen=True)
class WorkspaceLayout:
    root: Path

    @property
    def database(self) -> Path:
        return self.root / "workspace.db"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / check_safe_id("Run id", run_id)

    def model_dir(self, name: str, version: int) -> Path:
        return self.models / check_safe_id("Model name", name) / str(int(version))

    def ensure(self) -> WorkspaceLayout:
        for folder in (self.root, self.runs, self.snapshots, self.models):
            folder.mkdir(parents=True, exist_ok=True)
        return self


@dataclass(frozen=True)
class RunLayout:
    """Files of one run. ``wd`` is the job's working copy; its ``outputs/`` and ``logs/`` are the run's."""

    root: Path

    @property
    def wd(self) -> Path:
        return self.root / "wd"

    @property
    def outputs(self) -> Path:
        return self.wd / "outputs"

    @property
    def logs(self) -> Path:
        return self.wd / "logs"

    @property
    def std_log(self) -> Path:
        return self.root / "user_logs" / "std_log.txt"

    @property
    def build_log(self) -> Path:
        return self.root / "azureml-logs" / "20_image_build_log.txt"

    @property
    def control_log(self) -> Path:
        return self.root / "azureml-logs" / "60_control_log.txt"

    @property
    def tracking(self) -> Path:
        """Folder mounted into the job; the job runtime appends its events here."""
        return self.root / "tracking"

    @property
    def events(self) -> Path:
        return self.tracking / "events.jsonl"

    @property
    def uploads(self) -> Path:
        """Files added with ``run.upload_file`` that do not live under outputs/ or logs/."""
        return self.root / "uploads"

    @property
    def exit_file(self) -> Path:
        return self.root / "system_logs" / "exit.json"

    @property
    def stderr_tail(self) -> Path:
        return self.root / "system_logs" / "stderr.txt"

    def ensure(self) -> RunLayout:
        for folder in (self.root, self.std_log.parent, self.build_log.parent, self.tracking,
                       self.exit_file.parent, self.uploads):
            folder.mkdir(parents=True, exist_ok=True)
        return self
