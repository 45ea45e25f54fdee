"""A full disk, told apart from other I/O failures and described so the user knows what to free.

A full disk shows up as ``OSError`` ENOSPC (EDQUOT under a quota) from file writes, and as SQLite's
SQLITE_FULL ("database or disk is full") or SQLITE_IOERR_SHMSIZE (no room to grow the WAL index) from the
store. Every layer that used to treat those like any other failure (a snapshot excluding the file as
"cannot access", a supervisor crashing) asks ``is_disk_full`` instead.

``DiskReserve`` keeps a few MiB in a file so that a run's last writes (its final status above all) still fit
after its job filled the disk: nothing else a supervisor can do frees space there, since the job's outputs
stay in the run folder and removing its container frees only Docker's own disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL_NAMES = frozenset({"SQLITE_FULL", "SQLITE_IOERR_SHMSIZE"})
_SQLITE_FULL_CODES = frozenset({13, 4874})  # SQLITE_FULL, SQLITE_IOERR_SHMSIZE (Python 3.10 lacks the names)
RESERVE_BYTES = 2 * 1024 * 1024  # a final status is a few 4 KiB WAL frames; this leaves room for a last ingest


def is_disk_full(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what it was raised from) says the disk is full."""
    seen = 0
    while exc is not None and seen < 5:  # a wrapped error (raise ... from exc) counts too
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.Error):
            name = getattr(exc, "sqlite_errorname", None)
            code = getattr(exc, "sqlite_errorcode", None)
            if name in _SQLITE_FULL_NAMES or code in _SQLITE_FULL_CODES or "database or disk is full" in str(exc):
                return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    current = _existing(path)
    while not os.path.ismount(current) and current.parent != current:
        current = current.parent
    return current


def free_bytes(path: Path) -> int | None:
    """Space an unprivileged writer can still use on ``path``'s file system; None if it can not be read."""
    try:
        return shutil.disk_usage(_existing(path)).free
    except OSError:
        return None


def fmt_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop returns at GiB


def describe_disk(path: Path) -> str:
    """``'/mnt/data' (12.0 KiB free of 32.0 MiB)``: the mount point and its space, for error messages."""
    mount = mount_point(path)
    try:
        usage = shutil.disk_usage(_existing(path))
    except OSError:
        return f"'{mount}'"
    return f"'{mount}' ({fmt_bytes(usage.free)} free of {fmt_bytes(usage.total)})"


class DiskReserve:
    """Space held in one file, handed back when the disk is full so that the most important writes fit."""

    def __init__(self, path: Path, size: int = RESERVE_BYTES) -> None:
        self.path = Path(path)
        self.size = size

    @property
    def held(self) -> bool:
        try:
            return self.path.stat().st_size >= self.size
        except OSError:
            return False

    def hold(self) -> bool:
        """Take the space (real bytes: a sparse or compressible file would reserve nothing; blocks are counted
        as taken when written, so no fsync is needed); False when the disk has not even that much left, and
        then nothing is kept."""
        try:
            with open(self.path, "wb") as out:
                out.write(os.urandom(self.size))
            return True
        except OSError:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False

    def release(self) -> bool:
        """Give the space back; True when there was some to give."""
        try:
            self.path.unlink()
            return True
        except FileNotFoundError:
            return False
