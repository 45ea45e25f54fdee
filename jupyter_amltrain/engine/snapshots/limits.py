"""v1's snapshot limits (300 MB, 2000 files), with a report of what to ignore appended to v1's text."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jupyter_amltrain.engine.snapshots.ignore import AMLIGNORE, GITIGNORE, IncludedFile
from jupyter_amltrain.engine.snapshots.secret_files import ignore_line
from jupyter_amltrain.exceptions import SnapshotException

ONE_MB = 1024 * 1024
SNAPSHOT_MAX_SIZE_BYTES = 300 * ONE_MB
SNAPSHOT_MAX_FILES = 2000
NO_FILE_LIMIT_ENV = "AML_SNAPSHOT_NO_FILE_LIMIT"

_BANNER = "=" * 68
_TOP = 5
# A folder whose single subfolder holds this share of its weight is reported as that subfolder: "src/"
# says little when "src/node_modules/" is the culprit.
_DRILL_SHARE = 0.8


def size_limit_text(source_dir: Path, max_bytes: int) -> str:
    """v1's message, byte for byte (azureml/_restclient/snapshots_client.py)."""
    return (f"{_BANNER}\n\nWhile attempting to take snapshot of {source_dir}\n"
            f"Your total snapshot size exceeds the limit of {max_bytes / ONE_MB} MB.\n"
            "Please see http://aka.ms/aml-largefiles on how to work with large files.\n\n"
            f"{_BANNER}\n\n")


def file_limit_text(source_dir: Path, max_files: int) -> str:
    """v1's message, byte for byte."""
    return (f"{_BANNER}\n\nWhile attempting to take snapshot of {source_dir}\n"
            f"Your project exceeds the file limit of {max_files}.\n\n{_BANNER}\n\n")


def check_limits(source_dir: Path, files: Sequence[IncludedFile], ignore_file: Path | None, *,
                 max_bytes: int, max_files: int) -> None:
    """Raise SnapshotException when ``files`` are over a limit; size is checked first, as in v1.

    ``AML_SNAPSHOT_NO_FILE_LIMIT`` (any non-empty value, as v1 reads it) turns the file limit off.
    """
    total = sum(f.size for f in files)
    if total > max_bytes:
        tree = _Tree(files)
        entries = tree.offenders("bytes")
        biggest = [f.relpath for f in sorted(files, key=lambda f: (-f.size, f.relpath))[:_TOP]]
        report = [f"Included: {_mb(total)} in {len(files):,} files.",
                  *_listing("Largest entries:", entries, tree, "bytes"),
                  *_listing("Largest files:", biggest, tree, "bytes"),
                  _ignore_advice(source_dir, ignore_file, tree.enough(entries, "bytes", max_bytes))]
        raise SnapshotException(size_limit_text(source_dir, max_bytes) + "\n".join(report) + "\n")
    if len(files) > max_files and not os.environ.get(NO_FILE_LIMIT_ENV):
        tree = _Tree(files)
        folders = tree.offenders("files", folders_only=True)
        report = [f"Included: {len(files):,} files.",
                  *_listing("Folders with the most files:", folders, tree, "files"),
                  _ignore_advice(source_dir, ignore_file, tree.enough(folders, "files", max_files)),
                  f"To lift the file limit instead, set the environment variable {NO_FILE_LIMIT_ENV}=1."]
        raise SnapshotException(file_limit_text(source_dir, max_files) + "\n".join(report) + "\n")


@dataclass
class _Weight:
    files: int = 0
    bytes: int = 0


class _Tree:
    """Files and bytes per path; folders end with '/' and count everything below them."""

    def __init__(self, files: Sequence[IncludedFile]):
        self.weight: dict[str, _Weight] = defaultdict(_Weight)
        self.children: dict[str, set[str]] = defaultdict(set)
        for f in files:
            parent = ""
            parts = f.relpath.split("/")
            for depth, part in enumerate(parts):
                node = parent + part + ("/" if depth < len(parts) - 1 else "")
                self.children[parent].add(node)
                self.weight[node].files += 1
                self.weight[node].bytes += f.size
                parent = node

    def metric(self, node: str, metric: str) -> int:
        value: int = getattr(self.weight[node], metric)
        return value

    def offenders(self, metric: str, *, folders_only: bool = False) -> list[str]:
        """The heaviest top-level entries, each narrowed to the subfolder that holds most of its weight."""
        picked = {self._drill(node, metric) for node in self.children[""]}
        if folders_only:
            picked = {node for node in picked if node.endswith("/")}
        return sorted(picked, key=lambda n: (-self.metric(n, metric), n))[:_TOP]

    def enough(self, offenders: Sequence[str], metric: str, limit: int) -> list[str]:
        """The first offenders whose removal brings the total within ``limit`` (all of them if none do)."""
        left = sum(self.metric(node, metric) for node in self.children[""])
        picked: list[str] = []
        for node in offenders:
            if left <= limit:
                break
            picked.append(node)
            left -= self.metric(node, metric)
        return picked

    def _drill(self, node: str, metric: str) -> str:
        # "src/" says little when "src/node_modules/" is the culprit; but a folder that is one unit (a git
        # repository, a virtual environment) or holds nothing else is best ignored whole.
        while node.endswith("/") and not self._is_unit(node):
            own = self.metric(node, metric)
            heavy = [c for c in self.children[node] if self.metric(c, metric) >= _DRILL_SHARE * own]
            if own == 0 or not heavy or not heavy[0].endswith("/") or self.metric(heavy[0], metric) == own:
                break
            node = heavy[0]
        return node

    def _is_unit(self, node: str) -> bool:
        return node.rstrip("/").rsplit("/", 1)[-1] == ".git" or bool(
            self.children[node] & {node + "pyvenv.cfg", node + "conda-meta/"})


def _mb(n: int) -> str:
    return f"{n / ONE_MB:,.1f} MB" if n >= ONE_MB // 10 else f"{n / 1024:,.1f} KB"


def _listing(title: str, paths: Sequence[str], tree: _Tree, metric: str) -> list[str]:
    lines = [title]
    for path in paths:
        w = tree.weight[path]
        if metric == "bytes":
            extra = f"  ({w.files:,} files)" if path.endswith("/") else ""
            lines.append(f"  {_mb(w.bytes):>12}  {path}{extra}")
        else:
            lines.append(f"  {w.files:>8,} files  {path}  ({_mb(w.bytes)})")
    return lines


def _ignore_advice(source_dir: Path, ignore_file: Path | None, offenders: Sequence[str]) -> str:
    example = "\n".join(f"    {ignore_line(p)}" for p in offenders) or "    /data/"
    if ignore_file is None:
        return (f"No ignore file is in effect: neither {AMLIGNORE} nor {GITIGNORE} exists at the root of "
                f"{source_dir}, so everything is included (Azure ML has no built-in excludes). Create "
                f"{Path(source_dir) / AMLIGNORE} with lines such as:\n{example}")
    advice = f"Ignore file in effect: {ignore_file}. To leave these out, add lines such as:\n{example}"
    if ignore_file.name == GITIGNORE:
        advice += (f"\nOr create {Path(source_dir) / AMLIGNORE}: once it exists, {GITIGNORE} is no longer "
                   "read, so copy the lines you still need into it.")
    return advice
