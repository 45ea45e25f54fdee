"""What goes into a snapshot: v1 ignore-file rules, symlinks, special files, limits, secret warnings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jupyter_amltrain.engine.snapshots import (
    SnapshotStore,
    iter_included_files,
    resolve_ignore_file,
)
from jupyter_amltrain.engine.snapshots.secret_files import ignore_line
from jupyter_amltrain.exceptions import SnapshotException

MiB = 1024 * 1024
BANNER = "=" * 68


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def included(root: Path, warnings: list[str] | None = None) -> set[str]:
    sink = warnings if warnings is not None else []
    return {f.relpath for f in iter_included_files(root, on_warning=sink.append)}


# ---- ignore files -----------------------------------------------------------------------------------------

def test_amlignore_wins_over_gitignore(tmp_path: Path) -> None:
    make_tree(tmp_path, {".amlignore": "*.csv\n", ".gitignore": "*.py\n", "a.py": "", "b.csv": ""})
    assert resolve_ignore_file(tmp_path) == tmp_path / ".amlignore"
    assert included(tmp_path) == {".amlignore", ".gitignore", "a.py"}


def test_gitignore_is_used_when_there_is_no_amlignore(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "*.py\n", "a.py": "", "b.csv": ""})
    assert resolve_ignore_file(tmp_path) == tmp_path / ".gitignore"
    assert included(tmp_path) == {".gitignore", "b.csv"}


def test_without_ignore_file_nothing_is_excluded_not_even_git(tmp_path: Path) -> None:
    make_tree(tmp_path, {".git/HEAD": "ref", "__pycache__/m.pyc": "", "train.py": ""})
    assert resolve_ignore_file(tmp_path) is None
    assert included(tmp_path) == {".git/HEAD", "__pycache__/m.pyc", "train.py"}


def test_only_the_root_ignore_file_counts(tmp_path: Path) -> None:
    make_tree(tmp_path, {"sub/.amlignore": "*\n", "sub/.gitignore": "*\n", "sub/x.py": "", "y.py": ""})
    assert resolve_ignore_file(tmp_path) is None
    assert included(tmp_path) == {"sub/.amlignore", "sub/.gitignore", "sub/x.py", "y.py"}


def test_patterns_match_paths_relative_to_the_root(tmp_path: Path) -> None:
    make_tree(tmp_path, {".amlignore": "/data\nnotes.txt\n", "data/a": "", "src/data/b": "",
                         "notes.txt": "", "src/notes.txt": ""})
    assert included(tmp_path) == {".amlignore", "src/data/b"}


def test_negation_re_includes_a_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {".amlignore": "*.log\n!keep.log\nlogs/*\n!logs/important.txt\n",
                         "a.log": "", "keep.log": "", "logs/x": "", "logs/important.txt": ""})
    assert included(tmp_path) == {".amlignore", "keep.log", "logs/important.txt"}


def test_excluded_folder_is_not_entered_and_cannot_be_re_included(tmp_path: Path) -> None:
    # As in git, a file under an excluded folder cannot be re-included; the folder is never read, so the
    # broken link inside it raises no warning.
    make_tree(tmp_path, {".amlignore": "venv/\n!venv/keep.txt\n", "venv/keep.txt": "", "venv/lib/x.py": ""})
    os.symlink(tmp_path / "missing", tmp_path / "venv" / "dangling")
    warnings: list[str] = []
    assert included(tmp_path, warnings) == {".amlignore"}
    assert warnings == []


def test_contents_pattern_still_lets_a_negation_reach_inside(tmp_path: Path) -> None:
    # "dir/**" matches what is inside dir, not dir itself, so git re-includes dir/keep.txt.
    make_tree(tmp_path, {".amlignore": "cache/**\n!cache/keep.txt\n", "cache/keep.txt": "", "cache/x": "",
                         "cache/deep/y": ""})
    assert included(tmp_path) == {".amlignore", "cache/keep.txt"}


def test_ignore_file_with_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / ".amlignore").write_bytes("\ufeffdata/\n".encode())
    make_tree(tmp_path, {"data/x": "", "a.py": ""})
    assert included(tmp_path) == {".amlignore", "a.py"}


GIT_CASES = [
    "*.log\n!keep.log\n",
    "build/\n!build/keep.txt\n",
    "cache/**\n!cache/keep.txt\n",
    "/top.txt\n**/deep/*.bin\n",
    "src/*\n!src/app/\n",
    "*\n!*/\n!*.py\n",
    "logs/\n!logs/**/\n",
    "**\n!*.py\n!*/\n",
    "a/b\n*.md\n!doc/*.md\n",
    "/*\n!/src\n",
]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to compare with")
@pytest.mark.parametrize("patterns", GIT_CASES)
def test_selection_agrees_with_git(tmp_path: Path, patterns: str) -> None:
    names = ["a.log", "keep.log", "top.txt", "sub/top.txt", "build/keep.txt", "build/x.o", "cache/keep.txt",
             "cache/x", "cache/deep/y.bin", "x/deep/z.bin", "deep/w.bin", "src/app/main.py", "src/other.py",
             "src/app/data.csv", "readme.md", "logs/2024/x.log", "logs/keep", "a/b/c.txt", "doc/x.md"]
    make_tree(tmp_path, {".amlignore": patterns, **{n: "" for n in names}})
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    git = subprocess.run(
        ["git", "-c", "core.excludesFile=/dev/null", "ls-files", "--others", "--exclude-from=.amlignore"],
        cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout.split()
    ours = {r for r in included(tmp_path) if not r.startswith(".git/")}
    assert ours == set(git)


# ---- symlinks and special files ---------------------------------------------------------------------------

def test_symlinked_file_inside_is_included_with_its_targets_content(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"real/config.json": "{}"})
    os.symlink("real/config.json", src / "config.json")
    files = {f.relpath: f for f in iter_included_files(src)}
    assert set(files) == {"real/config.json", "config.json"}
    assert files["config.json"].path == (src / "real" / "config.json").resolve()


def test_symlink_to_a_file_outside_is_skipped_with_a_warning(tmp_path: Path) -> None:
    make_tree(tmp_path, {"secret.txt": "outside"})
    src = make_tree(tmp_path / "src", {"a.py": ""})
    os.symlink(tmp_path / "secret.txt", src / "link.txt")
    warnings: list[str] = []
    assert included(src, warnings) == {"a.py"}
    assert len(warnings) == 1
    assert "link.txt" in warnings[0] and "outside the source directory" in warnings[0]


def test_symlinked_folder_is_not_followed(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"real/x.py": ""})
    os.symlink("real", src / "alias")
    warnings: list[str] = []
    assert included(src, warnings) == {"real/x.py"}
    assert any("alias" in w and "not followed" in w for w in warnings)


def test_broken_symlink_is_skipped_with_a_warning(tmp_path: Path) -> None:
    os.symlink(tmp_path / "gone", tmp_path / "link")
    warnings: list[str] = []
    assert included(tmp_path, warnings) == set()
    assert len(warnings) == 1 and "Broken symlink" in warnings[0]


def test_fifo_is_skipped_instead_of_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    make_tree(tmp_path, {"a.py": ""})
    warnings: list[str] = []
    assert included(tmp_path, warnings) == {"a.py"}
    assert any(str(tmp_path / "pipe") in w for w in warnings)


# ---- limits -----------------------------------------------------------------------------------------------

def sparse(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)


def test_size_limit_raises_v1_text_lists_offenders_and_stores_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    sparse(src / "data" / "big1.bin", 200 * MiB)
    sparse(src / "data" / "big2.bin", 100 * MiB)
    sparse(src / "model.ckpt", 50 * MiB)
    make_tree(src, {"train.py": "print(1)"})
    store = SnapshotStore(tmp_path / "snapshots")

    with pytest.raises(SnapshotException) as info:
        store.take(src)

    message = str(info.value)
    assert message.startswith(
        f"{BANNER}\n\nWhile attempting to take snapshot of {src}\n"
        "Your total snapshot size exceeds the limit of 300.0 MB.\n"
        "Please see http://aka.ms/aml-largefiles on how to work with large files.\n\n"
        f"{BANNER}\n\n"
    )
    report = message.split(BANNER)[-1]
    assert "Included: 350.0 MB in 4 files." in report
    assert "300.0 MB  data/  (2 files)" in report and "50.0 MB  model.ckpt" in report
    assert "200.0 MB  data/big1.bin" in report
    # The suggestion is what it takes to get under the limit: data/ alone is enough.
    assert report.endswith(f"Create {src / '.amlignore'} with lines such as:\n    /data/\n")
    assert not (tmp_path / "snapshots" / "objects").exists()
    assert not (tmp_path / "snapshots" / "manifests").exists()


def test_size_limit_is_a_parameter_and_names_the_ignore_file_in_effect(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", {".gitignore": "*.tmp\n", "a.bin": "x" * 2000})
    with pytest.raises(SnapshotException) as info:
        SnapshotStore(tmp_path / "snapshots").take(tmp_path / "src", max_bytes=1000)
    message = str(info.value)
    assert f"exceeds the limit of {1000 / MiB} MB." in message
    assert f"Ignore file in effect: {tmp_path / 'src' / '.gitignore'}" in message
    assert "/a.bin" in message


def test_file_limit_raises_v1_text_with_the_folders_holding_most_files(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(1990):
        sparse(src / "lib" / "node_modules" / f"m{i % 40}" / f"f{i}.js", 0)
    for i in range(11):
        sparse(src / "tests" / f"t{i}.py", 0)
    make_tree(src, {".amlignore": "*.pyc\n", "lib/app.py": ""})
    store = SnapshotStore(tmp_path / "snapshots")

    with pytest.raises(SnapshotException) as info:
        store.take(src)

    message = str(info.value)
    assert message.startswith(
        f"{BANNER}\n\nWhile attempting to take snapshot of {src}\n"
        f"Your project exceeds the file limit of 2000.\n\n{BANNER}\n\n"
    )
    report = message.split(BANNER)[-1]
    # The culprit is named precisely, not as its top-level parent that also holds code.
    assert "1,990 files  lib/node_modules/" in report and "11 files  tests/" in report
    assert f"Ignore file in effect: {src / '.amlignore'}. To leave these out, add lines such as:\n" \
           "    /lib/node_modules/\n" in report
    assert not (tmp_path / "snapshots" / "objects").exists()


def test_file_limit_can_be_lifted_by_env_as_in_v1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_tree(tmp_path / "src", {f"f{i}.txt": str(i) for i in range(5)})
    store = SnapshotStore(tmp_path / "snapshots")
    with pytest.raises(SnapshotException, match="exceeds the file limit of 3"):
        store.take(src, max_files=3)
    monkeypatch.setenv("AML_SNAPSHOT_NO_FILE_LIMIT", "1")
    assert store.take(src, max_files=3).file_count == 5


def test_ignored_files_do_not_count_toward_limits(tmp_path: Path) -> None:
    src = tmp_path / "src"
    sparse(src / "data" / "huge.bin", 400 * MiB)
    make_tree(src, {".amlignore": "data/\n", "train.py": ""})
    result = SnapshotStore(tmp_path / "snapshots").take(src)
    assert result.file_count == 2


# ---- secrets ----------------------------------------------------------------------------------------------

def test_secret_looking_files_are_warned_about_with_the_fix(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {
        ".env": "KEY=1", "certs/server.pem": "", "home/.aws/credentials": "", ".netrc": "", "gcp-sa.json": "",
        ".env.example": "", "train.py": "", "venv-ish/.env/bin/python": "",
        "venv/lib/site-packages/certifi/cacert.pem": "", "ignored.key": "",
    })
    make_tree(src, {".amlignore": "ignored.key\n"})
    result = SnapshotStore(tmp_path / "snapshots").take(src)
    flagged = {w.split(" ", 1)[0] for w in result.warnings}
    assert flagged == {".env", "certs/server.pem", "home/.aws/credentials", ".netrc", "gcp-sa.json"}
    env_warning = next(w for w in result.warnings if w.startswith(".env "))
    assert f"add this line to {src / '.amlignore'}: /.env" in env_warning


def test_secret_warning_suggests_creating_amlignore_when_none_exists(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"id_rsa": ""})
    (warning,) = SnapshotStore(tmp_path / "snapshots").take(src).warnings
    assert f"create {src / '.amlignore'} holding this line: /id_rsa" in warning


@pytest.mark.parametrize("name", ["a[1].txt", "x*y?.key", "trailing ", "#hash", "!bang"])
def test_suggested_ignore_line_matches_exactly_that_file(tmp_path: Path, name: str) -> None:
    make_tree(tmp_path, {".amlignore": ignore_line(name) + "\n", name: "", name + "x": ""})
    assert included(tmp_path) == {".amlignore", name + "x"}


def test_virtual_environment_is_suggested_whole(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"venv/pyvenv.cfg": "", "train.py": "",
                                       **{f"venv/lib/site-packages/p/m{i}.py": "" for i in range(12)}})
    with pytest.raises(SnapshotException) as info:
        SnapshotStore(tmp_path / "snapshots").take(src, max_files=10)
    assert "with lines such as:\n    /venv/\n" in str(info.value)
