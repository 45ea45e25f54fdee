"""Snapshot store: content addressing, the stat cache, materialization, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.engine.snapshots import SnapshotStore
from jupyter_amltrain.exceptions import SnapshotException, UserErrorException


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    return root


def age(root: Path) -> None:
    """Backdate mtimes: files written moments ago are 'racily clean' and re-hashed on purpose."""
    past = time.time_ns() - 60 * 1_000_000_000
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), ns=(past, past), follow_symlinks=False)


def project(root: Path) -> Path:
    src = make_tree(root, {"train.py": "print('hi')\n", "pkg/__init__.py": "", "pkg/model.py": "W = 1\n",
                           "data/labels.csv": "a,b\n1,2\n", "run.sh": "#!/bin/sh\necho run\n"})
    (src / "run.sh").chmod(0o755)
    return src


def tree_of(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & 0o100))
            for p in root.rglob("*") if p.is_file()}


# ---- identity ---------------------------------------------------------------------------------------------

def test_same_content_gives_the_same_id_anywhere(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.take(project(tmp_path / "a"))
    second = store.take(project(tmp_path / "b"))
    assert first.snapshot_id == second.snapshot_id
    assert second.reused and not first.reused
    assert [len(p) for p in first.snapshot_id.split("-")] == [8, 4, 4, 4, 12]
    source_bytes = sum(len(c) for c, _ in tree_of(tmp_path / "a").values())
    assert (first.file_count, first.total_bytes) == (5, source_bytes)


def test_content_path_or_exec_bit_change_gives_a_new_id(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    src = project(tmp_path / "src")
    ids = {store.take(src).snapshot_id}
    (src / "train.py").write_text("print('changed')\n")
    ids.add(store.take(src).snapshot_id)
    (src / "train.py").rename(src / "main.py")
    ids.add(store.take(src).snapshot_id)
    (src / "main.py").chmod(0o755)
    ids.add(store.take(src).snapshot_id)
    assert len(ids) == 4


def test_each_content_is_stored_once(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "same", "b/c.txt": "same", "d.txt": "other"})
    store = SnapshotStore(tmp_path / "snapshots")
    store.take(src)
    objects = [p for p in (tmp_path / "snapshots" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 2
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in objects)


# ---- cache: only changed files are read -------------------------------------------------------------------

def test_unchanged_resubmit_reads_no_file_and_reuses_the_snapshot(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    age(src)
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.take(src)
    second = store.take(src)
    assert first.hashed_files == 5
    assert (second.hashed_files, second.reused, second.snapshot_id) == (0, True, first.snapshot_id)


def test_one_changed_file_is_the_only_one_read(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    age(src)
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.take(src)
    (src / "pkg" / "model.py").write_text("W = 2\n")
    second = store.take(src)
    assert second.hashed_files == 1
    assert not second.reused and second.snapshot_id != first.snapshot_id


def test_same_size_rewrite_with_restored_mtime_is_still_seen(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"w.txt": "aaaa"})
    age(src)
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.take(src)
    before = (src / "w.txt").stat()
    (src / "w.txt").write_text("bbbb")
    os.utime(src / "w.txt", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert store.take(src).snapshot_id != first.snapshot_id


def test_file_written_just_now_is_hashed_again_next_time(tmp_path: Path) -> None:
    # Its stat cannot be trusted yet: it could change again within the same timestamp tick.
    src = make_tree(tmp_path / "src", {"old.txt": "o"})
    age(src)
    make_tree(src, {"new.txt": "n"})
    store = SnapshotStore(tmp_path / "snapshots")
    store.take(src)
    assert store.take(src).hashed_files == 1


def test_garbage_collected_objects_are_stored_again(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    age(src)
    store = SnapshotStore(tmp_path / "snapshots")
    first = store.take(src)
    shutil.rmtree(tmp_path / "snapshots" / "objects")
    again = store.take(src)
    assert again.snapshot_id == first.snapshot_id and again.hashed_files == 5
    store.materialize(again.snapshot_id, tmp_path / "wd")
    assert tree_of(tmp_path / "wd") == tree_of(src)


def test_progress_reports_every_file(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    store = SnapshotStore(tmp_path / "snapshots")
    store.take(project(tmp_path / "src"), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]


def test_store_inside_the_source_folder_is_left_out(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    store = SnapshotStore(src / ".amltrain" / "snapshots")
    first = store.take(src)
    second = store.take(src)
    assert first.file_count == second.file_count == 5 and first.snapshot_id == second.snapshot_id


def test_missing_or_file_source_dir_raises_with_the_fix(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    with pytest.raises(SnapshotException, match=r"does not exist\. Pass the folder holding your training"):
        store.take(tmp_path / "nope")
    (tmp_path / "train.py").write_text("")
    with pytest.raises(SnapshotException, match="is a file, not a folder"):
        store.take(tmp_path / "train.py")
    assert not (tmp_path / "snapshots").exists()


def _take_as_nobody(src: str, snapshots: str, out: multiprocessing.Queue) -> None:
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    result = SnapshotStore(Path(snapshots)).take(Path(src))
    out.put((result.file_count, result.warnings))


def test_unreadable_file_is_left_out_with_v1_warning() -> None:
    # Root reads everything, so the snapshot is taken by an unprivileged process.
    base = Path(tempfile.mkdtemp(prefix="amltrain-test-"))
    try:
        base.chmod(0o777)
        src = make_tree(base / "src", {"ok.txt": "ok", "locked.txt": "no"})
        src.chmod(0o755)
        (src / "locked.txt").chmod(0o000)
        (base / "snapshots").mkdir(mode=0o777)
        (base / "snapshots").chmod(0o777)
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        child = ctx.Process(target=_take_as_nobody, args=(str(src), str(base / "snapshots"), out))
        child.start()
        count, warnings = out.get(timeout=60)
        child.join(60)
        assert count == 1
        assert f"Cannot access file, so excluded from snapshot: {src / 'locked.txt'}" in warnings
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---- materialization --------------------------------------------------------------------------------------

def test_materialize_reproduces_the_tree_with_exec_bits_and_run_folders(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    store = SnapshotStore(tmp_path / "snapshots")
    sid = store.take(src).snapshot_id
    wd = tmp_path / "runs" / "r1" / "wd"
    store.materialize(sid, wd)
    assert tree_of(wd) == tree_of(src)
    assert tree_of(wd)["run.sh"][1] and not tree_of(wd)["train.py"][1]
    assert (wd / "outputs").is_dir() and (wd / "logs").is_dir()
    assert [e.path for e in store.manifest(sid)] == sorted(tree_of(src))


def test_materialized_files_are_hard_links_to_the_store(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    store = SnapshotStore(tmp_path / "snapshots")
    sid = store.take(src).snapshot_id
    store.materialize(sid, tmp_path / "wd")
    entry = next(e for e in store.manifest(sid) if e.path == "pkg/model.py")
    linked = (tmp_path / "wd" / "pkg" / "model.py").stat()
    assert linked.st_nlink > 1
    assert linked.st_ino == store.objects.path(entry.sha256, entry.executable).stat().st_ino


def _second_file_system() -> bool:
    return os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat(tempfile.gettempdir()).st_dev


@pytest.mark.skipif(not _second_file_system(), reason="needs /dev/shm on another file system")
def test_materialize_copies_across_file_systems(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    store = SnapshotStore(tmp_path / "snapshots")
    sid = store.take(src).snapshot_id
    dest = Path(tempfile.mkdtemp(prefix="amltrain-test-", dir="/dev/shm")) / "wd"
    try:
        store.materialize(sid, dest)
        assert tree_of(dest) == tree_of(src)
        assert (dest / "train.py").stat().st_nlink == 1
    finally:
        shutil.rmtree(dest.parent)


def test_materialize_refuses_a_non_empty_destination_and_leaves_it_alone(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    sid = store.take(project(tmp_path / "src")).snapshot_id
    dest = make_tree(tmp_path / "wd", {"mine.txt": "keep"})
    with pytest.raises(UserErrorException, match="not an empty folder"):
        store.materialize(sid, dest)
    assert sorted(os.listdir(dest)) == ["mine.txt"]
    assert sorted(os.listdir(tmp_path)) == ["snapshots", "src", "wd"]
    (dest / "mine.txt").unlink()
    store.materialize(sid, dest)
    assert (dest / "train.py").is_file()


def test_object_written_through_a_working_copy_is_detected_and_healed(tmp_path: Path) -> None:
    src = project(tmp_path / "src")
    age(src)
    store = SnapshotStore(tmp_path / "snapshots")
    sid = store.take(src).snapshot_id
    store.materialize(sid, tmp_path / "wd1")
    # What a job running as root can do to its hard-linked working copy.
    victim = tmp_path / "wd1" / "train.py"
    victim.chmod(0o644)
    victim.write_text("print('hacked')\n")
    with pytest.raises(SnapshotException, match=r"train\.py .* missing or was changed"):
        store.materialize(sid, tmp_path / "wd2")
    assert not (tmp_path / "wd2").exists()
    healed = store.take(src)
    assert healed.snapshot_id == sid and healed.hashed_files == 1
    store.materialize(sid, tmp_path / "wd2")
    assert (tmp_path / "wd2" / "train.py").read_text() == "print('hi')\n"


def test_unknown_or_malformed_snapshot_id(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots")
    with pytest.raises(SnapshotException, match="is not in"):
        store.manifest("00000000-0000-0000-0000-000000000000")
    with pytest.raises(UserErrorException, match="is not a snapshot id"):
        store.materialize("../../etc", tmp_path / "wd")
    assert not (tmp_path / "wd").exists()


# ---- concurrency ------------------------------------------------------------------------------------------

def _take(src: str, snapshots: str, go: Any, out: multiprocessing.Queue) -> None:
    go.wait(60)  # start together, so the two really race
    out.put(SnapshotStore(Path(snapshots)).take(Path(src)).snapshot_id)


def test_two_processes_snapshotting_the_same_folder_agree(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {f"m{i // 20}/f{i}.py": f"x = {i % 50}\n" for i in range(300)})
    ctx = multiprocessing.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    args = (str(src), str(tmp_path / "snapshots"), go, out)
    procs = [ctx.Process(target=_take, args=args) for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    ids = {out.get(timeout=120) for _ in procs}
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(ids) == 1
    store = SnapshotStore(tmp_path / "snapshots")
    (sid,) = ids
    assert all(store.objects.is_intact(e.sha256, e.size, e.executable) for e in store.manifest(sid))
    assert list((tmp_path / "snapshots" / "objects" / "tmp").iterdir()) == []
    assert store.take(src).snapshot_id == sid
    store.materialize(sid, tmp_path / "wd")
    assert tree_of(tmp_path / "wd") == tree_of(src)
