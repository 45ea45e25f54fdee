"""Content-addressed object store: each distinct file content is kept once, under its sha256.

Layout: ``objects/<2 hex>/<62 hex>`` for plain files and ``...-x`` for executables. Working copies
hard-link these files, and a hard link shares the inode's mode, so the executable bit cannot be set per
link. Keeping an executable variant costs a second copy only of content that is stored both ways (rare:
scripts), and keeps materialization a pure link pass with no special cases.

Objects are read-only and carry a fixed mtime. A job running as root can still write through a hard link;
the changed mtime (or size or mode) betrays that, so a damaged object is never trusted (see ``is_intact``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

_CHUNK = 1024 * 1024
# 2000-01-01T00:00:00Z; after 1980 because zipfile refuses older timestamps in jobs that zip their sources.
OBJECT_MTIME_NS = 946_684_800 * 1_000_000_000
_MODE = {False: 0o444, True: 0o555}


class ObjectStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, digest: str, executable: bool) -> Path:
        return self.root / digest[:2] / (digest[2:] + ("-x" if executable else ""))

    def is_intact(self, digest: str, size: int, executable: bool) -> bool:
        """True when the object exists exactly as written: same size, mode and mtime."""
        try:
            st = os.lstat(self.path(digest, executable))
        except OSError:
            return False
        return (stat.S_ISREG(st.st_mode) and st.st_size == size and st.st_mtime_ns == OBJECT_MTIME_NS
                and stat.S_IMODE(st.st_mode) == _MODE[executable])

    def add_file(self, source: Path, executable: bool) -> tuple[str, int]:
        """Store ``source``'s content; return (sha256, size). Reads the file once.

        The content goes to a temp file while it is hashed, so the object always matches its name even if
        the file changes under us. Rename makes the object appear whole; two processes storing the same
        content write identical bytes, so whichever rename lands last is equally right.
        """
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir)
        tmp = Path(tmp_name)
        try:
            digest, size = _copy_hashing(source, fd)
            if self.is_intact(digest, size, executable):
                tmp.unlink()
            else:
                os.chmod(tmp, _MODE[executable])
                os.utime(tmp, ns=(OBJECT_MTIME_NS, OBJECT_MTIME_NS))
                final = self.path(digest, executable)
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        return digest, size


def _copy_hashing(source: Path, fd: int) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    # fdopen first so the descriptor is closed even when the source cannot be opened.
    with os.fdopen(fd, "wb") as dst, open(source, "rb") as src:
        while chunk := src.read(_CHUNK):
            h.update(chunk)
            dst.write(chunk)
            size += len(chunk)
    return h.hexdigest(), size
