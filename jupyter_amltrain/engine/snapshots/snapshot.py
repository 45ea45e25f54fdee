"""Taking snapshots of a source directory and turning them back into working copies.

An unchanged folder costs a pass over file metadata: files whose stat matches the cache are not read,
content already stored is not written, and an unchanged tree maps to the manifest it had before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_amltrain.engine.snapshots.ignore import CANNOT_ACCESS, IncludedFile, load_ignore_rules, walk
from jupyter_amltrain.engine.snapshots.limits import SNAPSHOT_MAX_FILES, SNAPSHOT_MAX_SIZE_BYTES, check_limits
from jupyter_amltrain.engine.snapshots.manifest import ManifestEntry, read_manifest, write_manifest
from jupyter_amltrain.engine.snapshots.materialize import materialize
from jupyter_amltrain.engine.snapshots.secret_files import secret_warnings
from jupyter_amltrain.engine.snapshots.stat_cache import CachedFile, StatCache
from jupyter_amltrain.engine.snapshots.store import ObjectStore
from jupyter_amltrain.engine.store.disk import describe_disk, fmt_bytes, is_disk_full, mount_point
from jupyter_amltrain.exceptions import SnapshotException

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SnapshotResult:
    snapshot_id: str
    source_dir: Path
    file_count: int
    total_bytes: int
    ignore_file: Path | None  # the ignore file in effect
    reused: bool  # True when the manifest already existed (nothing new stored)
    hashed_files: int  # how many files had to be read this time
    warnings: list[str] = field(default_factory=list)


class SnapshotStore:
    """Snapshots under one folder (a workspace's ``snapshots/``): objects/, manifests/, cache/."""

    def __init__(self, snapshots_dir: Path):
        self.root = Path(snapshots_dir)
        self.objects = ObjectStore(self.root / "objects")
        self._manifests = self.root / "manifests"
        self._cache = StatCache(self.root / "cache")

    def take(self, source_dir: Path, *, max_bytes: int = SNAPSHOT_MAX_SIZE_BYTES,
             max_files: int = SNAPSHOT_MAX_FILES, progress: Progress | None = None) -> SnapshotResult:
        """Snapshot ``source_dir`` and return its id. ``progress(done, total)`` is called per file.

        Raises SnapshotException, before anything is stored, when the folder is missing or over a limit.
        """
        root = _source_root(source_dir)
        scan_started_ns = time.time_ns()
        warnings: list[str] = []
        rules = load_ignore_rules(root)
        # The store inside the source folder would snapshot itself and never be stable.
        files = list(walk(root, rules, on_warning=warnings.append, skip_dirs=[self.root]))
        check_limits(root, files, rules.file, max_bytes=max_bytes, max_files=max_files)
        warnings += secret_warnings((f.relpath for f in files), root, rules.file)

        cached = self._cache.load(root)
        entries: list[ManifestEntry] = []
        remember: dict[str, CachedFile] = {}
        hashed = 0
        done = 0
        stored = False  # every file is in the object store: what is left to write is the manifest and cache
        try:
            for done, f in enumerate(files, start=1):
                hit = cached.get(f.relpath)
                if hit and hit.matches(f) and self.objects.is_intact(hit.sha256, f.size, f.executable):
                    digest, size = hit.sha256, f.size
                    remember[f.relpath] = hit
                else:
                    try:
                        digest, size = self.objects.add_file(f.path, f.executable)
                    except OSError as exc:
                        if is_disk_full(exc):
                            raise  # the store's disk, not the file: the snapshot can not be whole
                        warnings.append(CANNOT_ACCESS.format(root / f.relpath))
                        continue
                    hashed += 1
                    if _unchanged_since_stat(f):
                        remember[f.relpath] = CachedFile.of(f, digest)
                entries.append(ManifestEntry(f.relpath, digest, size, f.executable))
                if progress is not None:
                    progress(done, len(files))
            stored = True
            self._cache.save(root, remember, scan_started_ns)
            snapshot_id, existed = write_manifest(self._manifests, entries)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # No manifest was written, so no run can use a part of this snapshot; the temp file of the object
            # being stored is removed by add_file. Whole objects stored before stay: they are correct content
            # (a concurrent snapshot may already use them) and the next attempt reuses them.
            rest = [] if stored else files[max(done - 1, 0):]
            raise self._disk_full(root, rest, cached, manifest_bytes=256 * len(files)) from exc
        return SnapshotResult(snapshot_id, root, len(entries), sum(e.size for e in entries), rules.file,
                              existed, hashed, warnings)

    def _disk_full(self, root: Path, rest: list[IncludedFile], cached: dict[str, CachedFile], *,
                   manifest_bytes: int) -> SnapshotException:
        """The error for a snapshot that hit a full disk, naming the disk and about how much more it needs."""
        missing = [f for f in rest if not ((hit := cached.get(f.relpath)) and hit.matches(f)
                                           and self.objects.is_intact(hit.sha256, f.size, f.executable))]
        needed = sum(f.size for f in missing) + manifest_bytes  # the manifest and stat cache: ~100 B a file
        return SnapshotException(
            f"The snapshot of {root} could not be stored: disk full. The disk holding the workspace's snapshots "
            f"({self.root}), {describe_disk(self.root)}, has no room for about {fmt_bytes(needed)} more "
            f"({len(missing)} file(s) still to store). Nothing was submitted. Free space on "
            f"{mount_point(self.root)} (or point AMLTRAIN_HOME at a bigger disk), or leave large files out of "
            "the snapshot with a .amlignore file, then submit again."
        )

    def manifest(self, snapshot_id: str) -> list[ManifestEntry]:
        return read_manifest(self._manifests, snapshot_id)

    def materialize(self, snapshot_id: str, dest: Path) -> None:
        """Create the job's working copy at ``dest`` (new or empty), with empty outputs/ and logs/."""
        materialize(self.objects, snapshot_id, self.manifest(snapshot_id), Path(dest))


def _source_root(source_dir: Path) -> Path:
    path = Path(source_dir).expanduser()
    if not path.exists():
        raise SnapshotException(
            f"Source directory {path} does not exist. Pass the folder holding your training script as "
            "source_directory=... (relative paths start from the notebook's or process's working directory, "
            f"{Path.cwd()})."
        )
    if not path.is_dir():
        raise SnapshotException(
            f"Source directory {path} is a file, not a folder. Pass the folder holding your training script "
            "as source_directory=... and the script's name, relative to it, as script=...."
        )
    return Path(os.path.realpath(path))


def _unchanged_since_stat(f: IncludedFile) -> bool:
    # A file rewritten while we read it has a hash that matches neither stat; hash it again next time.
    try:
        st = os.stat(f.path)
    except OSError:
        return False
    now = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return now == (f.size, f.mtime_ns, f.ctime_ns, f.inode)
