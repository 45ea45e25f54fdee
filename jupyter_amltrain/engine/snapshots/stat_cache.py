"""Per-source-directory memory of file stats and their hashes, so an unchanged file is never read again.

One JSON file per source directory: ``cache/<sha256 of its absolute path>.json``. It is only an
optimisation: a missing or corrupt cache costs a re-hash, never a wrong snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from jupyter_amltrain.engine.snapshots.ignore import IncludedFile

_VERSION = 1
# "Racily clean" files (git's term): a file written within the timestamp granularity of our scan could be
# rewritten with the same size and mtime right after we read it, and its stat would then lie. Such entries
# are not remembered, so they are hashed again next time. 2 s covers the coarsest common clocks (FAT, SMB).
RACY_WINDOW_NS = 2_000_000_000


class CachedFile(NamedTuple):
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    sha256: str

    def matches(self, f: IncludedFile) -> bool:
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode) == (
            f.size, f.mtime_ns, f.ctime_ns, f.inode)

    @classmethod
    def of(cls, f: IncludedFile, sha256: str) -> CachedFile:
        return cls(f.size, f.mtime_ns, f.ctime_ns, f.inode, sha256)


class StatCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _file(self, source_dir: Path) -> Path:
        return self.root / (hashlib.sha256(str(source_dir).encode("utf-8", "surrogateescape")).hexdigest()
                            + ".json")

    def load(self, source_dir: Path) -> dict[str, CachedFile]:
        try:
            data = json.loads(self._file(source_dir).read_text(encoding="utf-8"))
            if data.get("version") != _VERSION or data.get("source") != str(source_dir):
                return {}
            return {rel: CachedFile(*row) for rel, row in data["files"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def save(self, source_dir: Path, files: Mapping[str, CachedFile], scan_started_ns: int) -> None:
        """Write atomically; concurrent savers each write a complete file and the last rename wins."""
        fresh_after = scan_started_ns - RACY_WINDOW_NS
        rows = {rel: list(c) for rel, c in files.items() if c.mtime_ns < fresh_after}
        payload = json.dumps({"version": _VERSION, "source": str(source_dir), "files": rows})
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(payload)
            os.replace(tmp, self._file(source_dir))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
