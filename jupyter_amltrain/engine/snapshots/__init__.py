"""Snapshots of a run's source directory: Azure ML v1's ignore rules and limits, stored locally by content."""

from jupyter_amltrain.engine.snapshots.ignore import IncludedFile, iter_included_files, resolve_ignore_file
from jupyter_amltrain.engine.snapshots.limits import (
    NO_FILE_LIMIT_ENV,
    SNAPSHOT_MAX_FILES,
    SNAPSHOT_MAX_SIZE_BYTES,
)
from jupyter_amltrain.engine.snapshots.manifest import ManifestEntry
from jupyter_amltrain.engine.snapshots.snapshot import SnapshotResult, SnapshotStore

__all__ = [
    "NO_FILE_LIMIT_ENV",
    "SNAPSHOT_MAX_FILES",
    "SNAPSHOT_MAX_SIZE_BYTES",
    "IncludedFile",
    "ManifestEntry",
    "SnapshotResult",
    "SnapshotStore",
    "iter_included_files",
    "resolve_ignore_file",
]
