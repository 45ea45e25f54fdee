"""Snapshot manifests: the sorted file list whose hash is the snapshot id.

v1's ``ContentSnapshotId`` is a GUID, so the id is the manifest's sha256 cut to 128 bits and written as
one; equal trees always get equal ids.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from jupyter_amltrain.exceptions import SnapshotException, UserErrorException

_VERSION = 1
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class ManifestEntry:
    path: str  # relative, '/'-separated
    sha256: str
    size: int
    executable: bool

    def row(self) -> list[object]:
        return [self.path, self.sha256, self.size, self.executable]


def snapshot_id_for(entries: Sequence[ManifestEntry]) -> str:
    rows = [e.row() for e in sorted(entries, key=lambda e: e.path)]
    canonical = json.dumps(rows, separators=(",", ":")).encode("ascii")
    return str(uuid.UUID(hex=hashlib.sha256(canonical).hexdigest()[:32]))


def manifest_path(manifests_dir: Path, snapshot_id: str) -> Path:
    if not isinstance(snapshot_id, str) or not _ID.match(snapshot_id):
        raise UserErrorException(
            f"{snapshot_id!r} is not a snapshot id. Snapshot ids look like "
            "'0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'; use the one a run reports as ContentSnapshotId."
        )
    return Path(manifests_dir) / f"{snapshot_id}.json"


def write_manifest(manifests_dir: Path, entries: Sequence[ManifestEntry]) -> tuple[str, bool]:
    """Save the manifest unless it exists; return (snapshot id, whether it already existed)."""
    snapshot_id = snapshot_id_for(entries)
    target = manifest_path(manifests_dir, snapshot_id)
    if target.is_file():
        return snapshot_id, True
    rows = [e.row() for e in sorted(entries, key=lambda e: e.path)]
    payload = json.dumps({"version": _VERSION, "snapshot_id": snapshot_id, "files": rows}, indent=0)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(payload)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return snapshot_id, False


def read_manifest(manifests_dir: Path, snapshot_id: str) -> list[ManifestEntry]:
    source = manifest_path(manifests_dir, snapshot_id)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
        entries = [ManifestEntry(str(p), str(h), int(s), bool(x)) for p, h, s, x in data["files"]]
    except FileNotFoundError:
        raise SnapshotException(
            f"Snapshot {snapshot_id} is not in {manifests_dir.parent}. Take a new snapshot of the source "
            "directory (submit the run again)."
        ) from None
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise SnapshotException(
            f"The manifest of snapshot {snapshot_id} ({source}) is unreadable or damaged: {err}. "
            "Delete it and take the snapshot again (submit the run again)."
        ) from err
    for e in entries:
        _check_relative(e.path, source)
    return entries


def _check_relative(path: str, source: Path) -> None:
    # A hand-edited manifest must not make materialization write outside the working copy.
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise SnapshotException(
            f"The manifest {source} lists the path {path!r}, which leaves the working copy. "
            "Delete the manifest and take the snapshot again."
        )
