"""Build a job's working copy from a snapshot: hard links into the object store, copies where links fail."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from jupyter_amltrain.engine.snapshots.manifest import ManifestEntry
from jupyter_amltrain.engine.snapshots.store import ObjectStore
from jupyter_amltrain.exceptions import SnapshotException, UserErrorException

# v1 gives every run these folders; outputs/ is collected and logs/ streamed.
RUN_FOLDERS = ("outputs", "logs")


def materialize(objects: ObjectStore, snapshot_id: str, entries: Sequence[ManifestEntry], dest: Path) -> None:
    """Reproduce the snapshot at ``dest`` (absent or an empty folder). All or nothing: the tree is built
    beside ``dest`` and renamed into place, so a failure leaves ``dest`` as it was.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserErrorException(
            f"Cannot put snapshot {snapshot_id} at {dest}: it already exists and is not an empty folder. "
            "Pass a new folder."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        # mkdtemp makes 0o700; a job running as a non-root user in its container must still read the copy.
        staging.chmod(0o755)
        for entry in entries:
            _place(objects, snapshot_id, entry, staging / entry.path)
        for folder in RUN_FOLDERS:
            if not (staging / folder).exists():
                (staging / folder).mkdir()
        # rename(2) replaces an empty directory, and fails if something filled ``dest`` meanwhile.
        os.rename(staging, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise


def _place(objects: ObjectStore, snapshot_id: str, entry: ManifestEntry, target: Path) -> None:
    if not objects.is_intact(entry.sha256, entry.size, entry.executable):
        raise SnapshotException(
            f"The stored content of {entry.path} in snapshot {snapshot_id} is missing or was changed "
            f"({objects.path(entry.sha256, entry.executable)}); a job running as root may have written to "
            "its hard-linked copy. Take the snapshot again from the source directory (submit the run again)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    source = objects.path(entry.sha256, entry.executable)
    try:
        os.link(source, target)
    except OSError:
        # Another file system (EXDEV), the per-inode link limit (EMLINK: e.g. an empty __init__.py shared by
        # thousands of runs), or a file system without hard links: copy, keeping the object's mode.
        shutil.copy2(source, target)
