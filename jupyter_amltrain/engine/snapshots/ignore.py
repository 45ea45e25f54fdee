"""Which files of a source directory go into a snapshot, by Azure ML v1's ignore-file rules.

v1 reads one ignore file, at the root of the source directory: ``.amlignore`` when it exists, else
``.gitignore``, else nothing is excluded (there are no built-in excludes). Patterns use gitignore syntax
and match paths relative to that root.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec, PathSpec

from jupyter_amltrain.exceptions import SnapshotException

AMLIGNORE = ".amlignore"
GITIGNORE = ".gitignore"

# v1's exact text (azureml/_base_sdk_common/merkle_tree.py), kept so logs read the same.
CANNOT_ACCESS = "Cannot access file, so excluded from snapshot: {}"

_log = logging.getLogger(__name__)

Warn = Callable[[str], None]


def resolve_ignore_file(source_dir: Path) -> Path | None:
    """The ignore file in effect: ``.amlignore`` wins over ``.gitignore``; None if neither exists."""
    for name in (AMLIGNORE, GITIGNORE):
        candidate = Path(source_dir) / name
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class IgnoreRules:
    """The compiled ignore file of one source directory."""

    file: Path | None
    _files: GitIgnoreSpec
    # Decides whether to skip a folder without looking inside, as git does (so nothing under an excluded
    # folder can be re-included). It leaves out ``dir/**`` lines: in git they match what is inside ``dir``
    # but not ``dir`` itself, so ``dir/**`` + ``!dir/keep`` must still reach ``dir/keep``. It is a plain
    # PathSpec because GitIgnoreSpec mis-ranks folder paths: with ``*`` then ``!*/`` it still excludes
    # ``src/``. tests/unit/test_snapshot_rules.py checks the combination against git itself.
    _dirs: PathSpec

    def excludes_file(self, relpath: str) -> bool:
        return self._files.match_file(relpath)

    def excludes_dir(self, relpath: str) -> bool:
        # The trailing slash lets directory-only patterns such as ``venv/`` match.
        return self._dirs.match_file(relpath.rstrip("/") + "/")


def load_ignore_rules(source_dir: Path) -> IgnoreRules:
    ignore_file = resolve_ignore_file(source_dir)
    lines: list[str] = []
    if ignore_file is not None:
        try:
            # utf-8-sig: a .amlignore saved by a Windows editor starts with a BOM that would spoil line one.
            lines = ignore_file.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        except OSError as err:
            raise SnapshotException(
                f"Cannot read the ignore file {ignore_file} ({err.strerror}). Make it readable, or delete it "
                "to snapshot the whole source directory."
            ) from err
    dir_lines = [line for line in lines if not _matches_only_contents(line)]
    dir_spec = PathSpec.from_lines("gitignore", dir_lines)
    return IgnoreRules(ignore_file, GitIgnoreSpec.from_lines(lines), dir_spec)


def _matches_only_contents(line: str) -> bool:
    body = line.strip().rstrip("/")
    return body.endswith("/**") and len(body.lstrip("!/")) > len("/**")


@dataclass(frozen=True)
class IncludedFile:
    """One file going into the snapshot; ``path`` is what to read (a symlink's target inside the root)."""

    relpath: str
    path: Path
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    executable: bool

    @classmethod
    def from_stat(cls, relpath: str, path: Path, st: os.stat_result) -> IncludedFile:
        return cls(relpath, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino,
                   bool(st.st_mode & stat.S_IXUSR))


def iter_included_files(source_dir: Path, *, on_warning: Warn | None = None) -> Iterator[IncludedFile]:
    """Every file a snapshot of ``source_dir`` holds, honouring the root ignore file, in path order.

    Ignored folders are not entered. Symlinked folders are not followed. A symlinked file counts as its
    target's content when the target lies inside ``source_dir``; otherwise, and for unreadable or special
    files, ``on_warning`` (default: the logger) gets a message and the file is left out.
    """
    root = Path(os.path.realpath(source_dir))
    yield from walk(root, load_ignore_rules(root), on_warning=on_warning)


def walk(root: Path, rules: IgnoreRules, *, on_warning: Warn | None = None,
         skip_dirs: Iterable[Path] = ()) -> Iterator[IncludedFile]:
    """``iter_included_files`` for an already resolved root and loaded rules; ``skip_dirs`` are left out."""
    warn = on_warning or _log.warning
    skipped = {os.path.realpath(d) for d in skip_dirs}
    yield from _walk_dir(str(root), "", str(root), rules, warn, skipped)


def _walk_dir(root: str, rel_dir: str, abs_dir: str, rules: IgnoreRules, warn: Warn,
              skipped: set[str]) -> Iterator[IncludedFile]:
    try:
        with os.scandir(abs_dir) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError:
        warn(CANNOT_ACCESS.format(abs_dir))
        return
    for entry in entries:
        rel = rel_dir + entry.name
        try:
            if entry.is_dir(follow_symlinks=False):
                # Paths under root are already real (symlinked folders are never entered), so no realpath.
                if not rules.excludes_dir(rel) and entry.path not in skipped:
                    yield from _walk_dir(root, rel + "/", entry.path, rules, warn, skipped)
                continue
            if rules.excludes_file(rel):
                continue
            if entry.is_symlink():
                included = _symlinked_file(root, rel, entry.path, rules, warn)
            else:
                included = _regular_file(rel, entry.path, entry.stat(follow_symlinks=False), warn)
        except OSError:
            warn(CANNOT_ACCESS.format(entry.path))
            continue
        if included is not None:
            yield included


def _regular_file(rel: str, path: str, st: os.stat_result, warn: Warn) -> IncludedFile | None:
    if not stat.S_ISREG(st.st_mode):
        # Reading a FIFO would block the submit forever; sockets and devices have no content to copy.
        warn(f"Not a regular file (FIFO, socket or device), so excluded from snapshot: {path}")
        return None
    return IncludedFile.from_stat(rel, Path(path), st)


def _symlinked_file(root: str, rel: str, path: str, rules: IgnoreRules, warn: Warn) -> IncludedFile | None:
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except OSError:
        warn(f"Broken symlink {path} -> {os.readlink(path)}, so excluded from snapshot. "
             "Fix or delete the link.")
        return None
    if stat.S_ISDIR(st.st_mode):
        if not rules.excludes_dir(rel):
            warn(f"Symlinked folder is not followed, so excluded from snapshot: {path} -> {target}. Copy the "
                 "folder into the source directory if the job needs it.")
        return None
    if os.path.commonpath([root, target]) != root:
        warn(f"Symlink {path} points outside the source directory (to {target}), so excluded from snapshot. "
             "Copy the file into the source directory if the job needs it.")
        return None
    return _regular_file(rel, target, st, warn)
