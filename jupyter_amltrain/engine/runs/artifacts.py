"""The one door to a run's folder: every file the host lists, reads or copies out of ``<workspace>/runs/<id>/``.

Jobs run as root in their containers, and three of the run's folders are mounted into them (``wd/`` with
``outputs/`` and ``logs/``, ``tracking/``, ``uploads/``). Whatever a job leaves there is hostile input to the
host: a symbolic link to /etc/shadow, a ``logs/`` folder swapped for a link to /usr, a FIFO whose ``open()``
never returns, a device node, a million files. Hence:

* Names never become paths. A name (``outputs/model.pkl``) maps to a fixed place under the run folder, reached
  one component at a time from a descriptor of the run folder (``openat``): folders with
  ``O_DIRECTORY | O_NOFOLLOW``, the file with ``O_NOFOLLOW | O_NONBLOCK``. A link anywhere on the way is refused,
  and a folder replaced by a link while we walk cannot lead out: the descriptor we hold is the folder we
  checked. Checking names or ``realpath`` first and opening the path after would race with the job.
* Only regular files are read. ``lstat`` turns links, FIFOs, sockets and devices away before anything is
  opened; ``fstat`` after the open checks that what was opened is still the regular file ``lstat`` saw.
  ``O_NONBLOCK`` makes even a FIFO swapped in between the two steps open at once instead of waiting for a
  writer, and nothing is read from it.
* Listings use ``os.scandir`` on folder descriptors, never follow links, list regular files only, and come in
  pages in name order with a cursor (``after``): a folder of a million entries is never listed whole, and never
  held in memory whole either (each folder is read in sorted batches).
* Hard links are served as their content. The working copy is hard-linked from the snapshot store on purpose
  (``engine/snapshots/materialize.py``), so several links per file are normal. A job cannot hard-link a host
  file in: ``link(2)`` works only within one mount (even two bind mounts of one file system give ``EXDEV``),
  and a container sees only its own mounts (wd, tracking, uploads), whose files are the run's own.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import stat
from collections.abc import Collection, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.exceptions import UserErrorException

# The run's log files under their v1 names (the driver log is the std log under runtime v1's name).
BUILD_LOG = "azureml-logs/20_image_build_log.txt"
CONTROL_LOG = "azureml-logs/60_control_log.txt"
DRIVER_LOG = "azureml-logs/70_driver_log.txt"
STD_LOG = "user_logs/std_log.txt"

# Where a run's files come from: the host's own logs (azureml-logs/, user_logs/), and the job's wd/logs/,
# wd/outputs/ and uploads/ (files added with upload_file under any other name).
Source = Literal["named_logs", "logs", "outputs", "uploads"]
ALL_SOURCES: frozenset[Source] = frozenset(("named_logs", "logs", "outputs", "uploads"))
LOG_SOURCES: frozenset[Source] = frozenset(("named_logs", "logs"))
_JOB_LOGS: frozenset[Source] = frozenset(("logs",))
_WD_FOLDERS = ("outputs", "logs")  # names starting with these live in the job's working copy

DEFAULT_PAGE = 1000
MAX_LOG_FILES = 1000  # log files a details view lists (the named logs, then the first of ./logs by name)
# Deeper folders are not listed: the walk holds one descriptor per level while it is inside a folder.
MAX_DEPTH = 64
# A folder is read in sorted batches of this many entries (growing with the folder, so that a folder of a
# million entries is read about twenty times at most, and never held in memory whole).
_MIN_BATCH = 256
_MAX_BATCH = 65536
_COPY_CHUNK = 1024 * 1024

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO opens at once instead of waiting for a writer; O_NOCTTY: a terminal never becomes ours.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class RunFileError(UserErrorException):
    """A run file that cannot be served; the message says which and why."""


class RunFileMissing(RunFileError):
    """No regular file by that name (absent, or a folder)."""


class RunFileRefused(RunFileError):
    """The name is not a plain run-relative name, or the entry is a link or a special file: never read."""


@dataclass(frozen=True)
class RunFile:
    """A file of a run: its v1 name, and where it sits under the run folder (``root``), one plain name per level.

    ``root`` is a folder the host made (the run's folder); everything below it may be the job's."""

    root: Path
    name: str
    parts: tuple[str, ...]
    size: int = 0  # as listed; a live log grows

    @property
    def path(self) -> Path:
        """Where the file sits, for people to read. Never ``open()`` it: use ``open_run_file``."""
        return self.root.joinpath(*self.parts)

    @classmethod
    def in_folder(cls, folder: Path, name: str) -> RunFile:
        """A file straight in a folder the host made (such as a run's tracking folder): only ``name`` is the
        job's, and it is opened with the same care."""
        return cls(folder, name, _split(name))


@dataclass(frozen=True)
class RunFilePage:
    """One page of a run's files in name order. ``next_after``: pass it as ``after`` for the next page; None
    when this page reached the end."""

    files: list[RunFile]
    next_after: str | None

    @property
    def names(self) -> list[str]:
        return [file.name for file in self.files]


# -- names ----------------------------------------------------------------------------------------------------
def _split(name: str) -> tuple[str, ...]:
    parts = tuple(name.split("/"))
    if not name or any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise RunFileRefused(
            f"File name {name!r} is refused: names are relative to the run's folder, such as "
            "'outputs/model.pkl', with no '..', '.' or empty parts."
        )
    return parts


def clean_name(name: str) -> str:
    """A run file's name as v1 users write it (``./outputs/model.pkl``, ``outputs\\model.pkl``) in this module's
    spelling (``outputs/model.pkl``)."""
    clean = name.replace("\\", "/")
    while clean.startswith("./"):
        clean = clean[2:]
    return clean


def _relative(layout: RunLayout, path: Path) -> tuple[str, ...]:
    return path.relative_to(layout.root).parts


def _named_logs(layout: RunLayout, driver_alias: bool) -> dict[str, tuple[str, ...]]:
    """The host's own logs, in the order a details view lists them."""
    named = {
        BUILD_LOG: _relative(layout, layout.build_log),
        CONTROL_LOG: _relative(layout, layout.control_log),
        STD_LOG: _relative(layout, layout.std_log),
    }
    if driver_alias:
        named[DRIVER_LOG] = named[STD_LOG]
    return named


def run_file(layout: RunLayout, name: str, *, driver_alias: bool = True) -> RunFile:
    """Where file ``name`` of the run would be (nothing is opened). Names under ``outputs/`` and ``logs/`` are
    in the working copy, the named logs where the host writes them, any other name under ``uploads/``.
    Raises ``RunFileRefused`` for a name that is not a plain run-relative name."""
    named = _named_logs(layout, driver_alias)
    if name in named:
        return RunFile(layout.root, name, named[name])
    parts = _split(name)
    if parts[0] in _WD_FOLDERS:
        return RunFile(layout.root, name, _relative(layout, layout.wd) + parts)
    return RunFile(layout.root, name, _relative(layout, layout.uploads) + parts)


# -- opening --------------------------------------------------------------------------------------------------
def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def _refused(file: RunFile, what: str, kind: str) -> RunFileRefused:
    return RunFileRefused(
        f"Refused to read {file.name!r} of run folder {file.root}: {what} is {kind}. Links and special files in "
        "a run's folder are never read or copied (a link can lead to the host's files, a FIFO or device can "
        "block the reader). Write regular files instead."
    )


def _missing(file: RunFile, detail: str = "does not exist") -> RunFileMissing:
    return RunFileMissing(f"Run file {file.name!r} {detail} (looked in {file.root}).")


def _open_dir_at(name: str, folder: int) -> int:
    """Folder ``name`` inside the folder ``folder``; fails (ENOTDIR, ELOOP) if it is a link, however recent."""
    return os.open(name, _DIR_FLAGS, dir_fd=folder)


def _open_folders(file: RunFile, parts: tuple[str, ...]) -> int:
    """A descriptor of the folder ``root/parts``, reached without following any link below the root."""
    try:
        fd = os.open(file.root, _DIR_FLAGS)
    except FileNotFoundError:
        raise _missing(file) from None
    except OSError as error:  # the run folder itself is the host's: a link there is not the job's doing
        raise RunFileError(f"Cannot open the run folder {file.root}: {error.strerror}.") from None
    for depth, part in enumerate(parts):
        try:
            inner = _open_dir_at(part, fd)
        except OSError as error:
            where = "/".join(parts[: depth + 1])
            try:
                mode: int | None = os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode
            except OSError:
                mode = None
            os.close(fd)
            if mode is not None and stat.S_ISLNK(mode):
                raise _refused(file, f"its folder {where!r}", "a symbolic link") from None
            if isinstance(error, FileNotFoundError) or mode is None:
                raise _missing(file) from None
            if not stat.S_ISDIR(mode):
                raise _missing(file, f"does not exist ({where!r} is {_kind(mode)})") from None
            raise RunFileError(f"Cannot open {where!r} of run folder {file.root}: {error.strerror}.") from None
        os.close(fd)
        fd = inner
    return fd


def _open_fd(file: RunFile) -> tuple[int, os.stat_result]:
    folder = _open_folders(file, file.parts[:-1])
    last = file.parts[-1]
    try:
        try:
            seen = os.stat(last, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            raise _missing(file) from None
        if stat.S_ISDIR(seen.st_mode):
            raise _missing(file, "is a folder, not a file")
        if not stat.S_ISREG(seen.st_mode):
            raise _refused(file, "it", _kind(seen.st_mode))
        try:
            fd = os.open(last, _FILE_FLAGS, dir_fd=folder)
        except FileNotFoundError:
            raise _missing(file) from None
        except OSError as error:  # ELOOP: made a link since the lstat
            raise _refused(file, "it", f"no longer a regular file ({error.strerror})") from None
    finally:
        os.close(folder)
    opened = os.fstat(fd)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (seen.st_dev, seen.st_ino):
        os.close(fd)
        raise _refused(file, "it", f"{_kind(opened.st_mode)} swapped in while it was opened")
    return fd, opened


def open_run_file(file: RunFile) -> BinaryIO:
    """The run file, opened for reading. Raises ``RunFileMissing`` when there is no regular file by that name,
    ``RunFileRefused`` for a link (at any level) or a special file; never blocks."""
    fd, _ = _open_fd(file)
    return os.fdopen(fd, "rb")


def stat_run_file(file: RunFile) -> RunFile:
    """``file`` with its current size; raises as ``open_run_file`` does."""
    fd, opened = _open_fd(file)
    os.close(fd)
    return RunFile(file.root, file.name, file.parts, opened.st_size)


def find_run_file(layout: RunLayout, name: str, *, driver_alias: bool = True) -> RunFile:
    """Run file ``name``, checked to be a regular file there now (with its size)."""
    return stat_run_file(run_file(layout, name, driver_alias=driver_alias))


@dataclass(frozen=True)
class FileChunk:
    data: bytes
    size: int  # the file's size when it was read


def read_run_file(file: RunFile, offset: int = 0, limit: int = _COPY_CHUNK) -> FileChunk:
    """At most ``limit`` bytes of the file from ``offset``; an absent file reads as empty."""
    try:
        handle = open_run_file(file)
    except RunFileMissing:
        return FileChunk(b"", 0)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        start = min(max(offset, 0), size)
        handle.seek(start)
        return FileChunk(handle.read(max(min(limit, size - start), 0)), size)


def copy_run_file(file: RunFile, target: Path) -> None:
    """Copy the run file to ``target`` (a path of the caller's; written beside it, then renamed into place)."""
    with open_run_file(file) as source:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        try:
            with open(partial, "wb") as sink:
                while chunk := source.read(_COPY_CHUNK):
                    sink.write(chunk)
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise


# -- listing --------------------------------------------------------------------------------------------------
_FILE, _DIR = 0, 1


@dataclass(frozen=True)
class _Bounds:
    """Which names a listing wants: above ``after`` (exclusive) and from ``prefix`` on (inclusive)."""

    after: str
    prefix: str

    def wants(self, name: str) -> bool:
        return name > self.after and name >= self.prefix

    def may_hold(self, folder_key: str) -> bool:
        """Whether names under a folder (``folder_key`` ends with '/') can be wanted: all of them extend the
        key, so they all sort below a bound the key sorts below, unless the bound itself lies inside."""
        return not any(folder_key < bound and not bound.startswith(folder_key)
                       for bound in (self.after, self.prefix))


def _scan(fd: int, base: str, bounds: _Bounds, skip: frozenset[str], last: str | None,
          batch: int) -> tuple[list[tuple[str, str, int]], int]:
    """The ``batch`` smallest (key, name, kind) of the folder ``fd`` above ``last`` (folders keyed with a
    trailing '/'), and how many entries the folder has. Memory: ``batch`` entries, whatever its size."""
    entries = 0

    def candidates() -> Iterator[tuple[str, str, int]]:
        nonlocal entries
        with os.scandir(fd) as scan:
            for entry in scan:
                entries += 1
                if entry.is_file(follow_symlinks=False):
                    key, kind = base + entry.name, _FILE
                    wanted = bounds.wants(key)
                elif entry.is_dir(follow_symlinks=False):
                    key, kind = base + entry.name + "/", _DIR
                    wanted = bounds.may_hold(key)
                else:  # links, FIFOs, sockets, devices: never listed
                    continue
                if wanted and key not in skip and (last is None or key > last):
                    yield key, entry.name, kind

    picked = heapq.nsmallest(batch, candidates())
    return picked, entries


def _walk(root: Path, fd: int, base: str, parts: tuple[str, ...], bounds: _Bounds, depth: int,
          skip: frozenset[str]) -> Iterator[RunFile]:
    """Regular files under the folder ``fd`` in name order, named ``base + relative path``. Links and special
    files are left out, folders are entered only through ``O_NOFOLLOW`` descriptors, and the folder is read in
    sorted batches so that memory stays bounded however many entries it has."""
    batch = _MIN_BATCH
    last: str | None = None
    while True:
        picked, entries = _scan(fd, base, bounds, skip, last, batch)
        for key, name, kind in picked:
            if kind == _FILE:
                try:
                    info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):  # still a file, not a link or FIFO swapped in since the scan
                    yield RunFile(root, key, (*parts, name), info.st_size)
            elif depth < MAX_DEPTH:
                try:
                    # Fails (ENOTDIR/ELOOP) if the folder was replaced by a link since the scan: not followed.
                    inner = _open_dir_at(name, fd)
                except OSError:
                    continue
                try:
                    yield from _walk(root, inner, key, (*parts, name), bounds, depth + 1, skip)
                finally:
                    os.close(inner)
        if len(picked) < batch:
            return
        last = picked[-1][0]
        batch = min(max(batch * 2, entries // 16), _MAX_BATCH)


def _tree(layout: RunLayout, folder: Path, base: str, bounds: _Bounds,
          skip: frozenset[str]) -> Generator[RunFile, None, None]:
    """Files of one of the job's folders (wd/outputs, wd/logs, uploads), named ``base + relative path``."""
    if base and not bounds.may_hold(base):
        return
    parts = _relative(layout, folder)
    try:
        fd = _open_folders(RunFile(layout.root, base, parts), parts)
    except RunFileError:  # absent, or the job replaced it by a link: it has no files
        return
    try:
        yield from _walk(layout.root, fd, base, parts, bounds, 0, skip)
    finally:
        os.close(fd)


def _named(layout: RunLayout, bounds: _Bounds, driver_alias: bool) -> Generator[RunFile, None, None]:
    for name, parts in sorted(_named_logs(layout, driver_alias).items()):
        if bounds.wants(name):
            try:
                yield stat_run_file(RunFile(layout.root, name, parts))
            except RunFileError:
                continue


def iter_run_files(layout: RunLayout, *, sources: Collection[Source] = ALL_SOURCES, prefix: str = "",
                   after: str | None = None, driver_alias: bool = False) -> Generator[RunFile, None, None]:
    """The run's regular files in name order, lazily: names starting with ``prefix``, after ``after``.
    ``driver_alias`` also lists the std log as ``azureml-logs/70_driver_log.txt`` (v1's runtime name).
    Close the iterator (or exhaust it) to release the folder descriptors it holds."""
    bounds = _Bounds(after or "", prefix)
    named = _named_logs(layout, driver_alias)
    streams: list[Generator[RunFile, None, None]] = []
    if "named_logs" in sources:
        streams.append(_named(layout, bounds, driver_alias))
    if "logs" in sources:
        streams.append(_tree(layout, layout.logs, "logs/", bounds, frozenset()))
    if "outputs" in sources:
        streams.append(_tree(layout, layout.outputs, "outputs/", bounds, frozenset()))
    if "uploads" in sources:
        # Names that route elsewhere (outputs/..., logs/..., the named logs) are not the uploads folder's.
        hidden = frozenset({f"{folder}/" for folder in _WD_FOLDERS} | set(named))
        streams.append(_tree(layout, layout.uploads, "", bounds, hidden))
    try:
        previous = None
        for file in heapq.merge(*streams, key=lambda found: found.name):
            if not file.name.startswith(prefix):
                if file.name > prefix:  # name order: nothing later starts with it either
                    return
                continue
            if file.name != previous:
                previous = file.name
                yield file
    finally:
        for stream in streams:
            stream.close()


def list_run_files(layout: RunLayout, *, sources: Collection[Source] = ALL_SOURCES, prefix: str = "",
                   after: str | None = None, limit: int = DEFAULT_PAGE, driver_alias: bool = False) -> RunFilePage:
    """One page (at most ``limit``) of the run's regular files in name order; see ``iter_run_files``."""
    if limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}")
    files: list[RunFile] = []
    with contextlib.closing(iter_run_files(layout, sources=sources, prefix=prefix, after=after,
                                           driver_alias=driver_alias)) as found:
        for file in found:
            if len(files) == limit:
                return RunFilePage(files, files[-1].name)
            files.append(file)
    return RunFilePage(files, None)


def run_log_files(layout: RunLayout, *, limit: int = MAX_LOG_FILES, driver_alias: bool = False) -> dict[str, RunFile]:
    """The run's log files under their v1 names: the host's logs (build, control, std) first, then up to
    ``limit`` of the job's ./logs in name order."""
    files: dict[str, RunFile] = {}
    for name, parts in _named_logs(layout, driver_alias).items():
        with contextlib.suppress(RunFileError):
            files[name] = stat_run_file(RunFile(layout.root, name, parts))
    for file in list_run_files(layout, sources=_JOB_LOGS, limit=limit).files:
        files[file.name] = file
    return files


def copy_run_folder(layout: RunLayout, name: str, target: Path) -> int:
    """Copy the regular files under folder ``name`` of the run (``outputs``, ``outputs/model``, an uploaded
    folder) into ``target``, keeping their relative paths; returns how many. Links and special files are left
    out, as in every listing."""
    prefix = "/".join(_split(name)) + "/"
    copied = 0
    with contextlib.closing(iter_run_files(layout, prefix=prefix)) as found:
        for file in found:
            copy_run_file(file, target.joinpath(*file.name[len(prefix):].split("/")))
            copied += 1
    return copied
