"""engine.runs.artifacts: the one door to a run's folder. A job (root in its container) can leave links to host
files, FIFOs, devices, sockets and millions of files there; none of them is followed, opened, read or listed
whole, and nothing hangs."""

from __future__ import annotations

import heapq
import os
import shutil
import socket
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from jupyter_amltrain.engine.runs import artifacts
from jupyter_amltrain.engine.runs.artifacts import (
    CONTROL_LOG,
    DRIVER_LOG,
    STD_LOG,
    RunFileMissing,
    RunFileRefused,
    copy_run_file,
    copy_run_folder,
    find_run_file,
    iter_run_files,
    list_run_files,
    open_run_file,
    read_run_file,
    run_file,
    run_log_files,
)
from jupyter_amltrain.engine.store.db import Store
from jupyter_amltrain.engine.store.layout import RunLayout
from jupyter_amltrain.engine.tracking import ingest_events

SECRET = "host secret: root:$6$not-for-the-job\n"


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    """A host file the job must never get at (a stand-in for /etc/shadow)."""
    secret = tmp_path / "host" / "shadow"
    secret.parent.mkdir()
    secret.write_text(SECRET)
    (secret.parent / "passwd").write_text(SECRET)
    return secret


@pytest.fixture
def layout(tmp_path: Path) -> RunLayout:
    run = RunLayout(tmp_path / "ws" / "runs" / "exp_1_abc").ensure()
    run.outputs.mkdir(parents=True)
    run.logs.mkdir(parents=True)
    run.std_log.write_text("epoch 1\n")
    (run.outputs / "model.pkl").write_bytes(b"weights")
    (run.logs / "train.txt").write_text("loss 0.1\n")
    return run


def finishes(call: Callable[[], Any], seconds: float = 10) -> Any:
    """``call()``'s result, failing (not hanging) when it blocks: a FIFO's open() waits for a writer forever."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call} blocked for {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def unblock(fifo: Path) -> None:
    """Lets a reader stuck in open() of ``fifo`` go (a writer opens and closes it), so a failing test ends."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


def all_names(layout: RunLayout) -> list[str]:
    return [file.name for file in iter_run_files(layout)]


def test_regular_files_are_listed_read_and_copied(layout: RunLayout, tmp_path: Path) -> None:
    assert all_names(layout) == ["logs/train.txt", "outputs/model.pkl", STD_LOG]
    assert list(run_log_files(layout, driver_alias=True)) == [STD_LOG, DRIVER_LOG, "logs/train.txt"]
    with open_run_file(find_run_file(layout, "outputs/model.pkl")) as handle:
        assert handle.read() == b"weights"
    assert read_run_file(run_file(layout, DRIVER_LOG), 6).data == b"1\n"  # v1's name for the std log
    copy_run_file(run_file(layout, "outputs/model.pkl"), tmp_path / "dl" / "model.pkl")
    assert (tmp_path / "dl" / "model.pkl").read_bytes() == b"weights"
    with pytest.raises(RunFileMissing, match="is a folder"):
        find_run_file(layout, "outputs")
    with pytest.raises(RunFileMissing, match="does not exist"):
        find_run_file(layout, CONTROL_LOG)


@pytest.mark.parametrize("name", ["../plan.json", "outputs/../../plan.json", "/etc/passwd", "outputs//x", "./x",
                                  "outputs/./model.pkl", ""])
def test_names_that_are_not_plain_run_relative_names_are_refused(layout: RunLayout, name: str) -> None:
    with pytest.raises(RunFileRefused, match="relative to the run's folder"):
        find_run_file(layout, name)


def test_symbolic_links_to_host_files_are_not_listed_nor_read(layout: RunLayout, host_secret: Path,
                                                              tmp_path: Path) -> None:
    (layout.outputs / "leak").symlink_to(host_secret)
    (layout.logs / "leak.txt").symlink_to(host_secret)
    (layout.uploads / "leak.txt").symlink_to(host_secret)
    assert all_names(layout) == ["logs/train.txt", "outputs/model.pkl", STD_LOG]
    assert "logs/leak.txt" not in run_log_files(layout)
    for name in ("outputs/leak", "logs/leak.txt", "leak.txt"):
        with pytest.raises(RunFileRefused, match="is a symbolic link"):
            find_run_file(layout, name)
        with pytest.raises(RunFileRefused, match="is a symbolic link"):  # a RunFile made by hand: still refused
            open_run_file(run_file(layout, name))
        with pytest.raises(RunFileRefused):
            copy_run_file(run_file(layout, name), tmp_path / "dl" / "leak")
    assert not (tmp_path / "dl" / "leak").exists()


def test_folders_replaced_by_links_lead_nowhere(layout: RunLayout, host_secret: Path) -> None:
    (layout.outputs / "sub").symlink_to(host_secret.parent)  # a link to a host folder inside outputs/
    shutil.rmtree(layout.logs)
    layout.logs.symlink_to(host_secret.parent)  # ./logs itself replaced by a link (the probe used /usr, /etc)
    assert all_names(layout) == ["outputs/model.pkl", STD_LOG]
    assert list(run_log_files(layout)) == [STD_LOG]
    for name in ("outputs/sub/shadow", "logs/passwd"):
        with pytest.raises(RunFileRefused, match=r"its folder .* is a symbolic link"):
            find_run_file(layout, name)


def test_the_run_folder_of_a_link_to_etc_lists_nothing_of_etc(layout: RunLayout) -> None:
    shutil.rmtree(layout.outputs)
    layout.outputs.symlink_to("/etc")
    assert all_names(layout) == ["logs/train.txt", STD_LOG]
    with pytest.raises(RunFileRefused):
        find_run_file(layout, "outputs/passwd")


def test_a_hard_link_inside_the_run_folder_is_served_as_its_content(layout: RunLayout) -> None:
    # Hard links are normal here (the working copy is hard-linked from the snapshot store), and a job cannot
    # link a host file in: link(2) fails across mounts and the container sees only its own.
    os.link(layout.outputs / "model.pkl", layout.outputs / "copy.pkl")
    assert os.stat(layout.outputs / "copy.pkl").st_nlink == 2
    assert "outputs/copy.pkl" in all_names(layout)
    assert read_run_file(find_run_file(layout, "outputs/copy.pkl")).data == b"weights"


def test_a_fifo_is_neither_listed_nor_opened_and_nothing_blocks(layout: RunLayout, tmp_path: Path) -> None:
    fifo = layout.outputs / "pipe"
    os.mkfifo(fifo)
    os.mkfifo(layout.logs / "pipe.txt")
    try:
        assert finishes(lambda: all_names(layout)) == ["logs/train.txt", "outputs/model.pkl", STD_LOG]
        pipe = run_file(layout, "outputs/pipe")
        for call in (lambda: find_run_file(layout, "outputs/pipe"), lambda: open_run_file(pipe),
                     lambda: copy_run_file(pipe, tmp_path / "pipe")):
            with pytest.raises(RunFileRefused, match="FIFO"):
                finishes(call)
        assert finishes(lambda: copy_run_folder(layout, "outputs", tmp_path / "model")) == 1
        assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["model.pkl"]
    finally:
        unblock(fifo)


def test_devices_and_sockets_are_neither_listed_nor_opened(layout: RunLayout, tmp_path: Path) -> None:
    try:  # /dev/zero's numbers: reading it would never end
        os.mknod(layout.outputs / "zero", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs root (CAP_MKNOD)")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(layout.outputs / "sock"))
        assert finishes(lambda: all_names(layout)) == ["logs/train.txt", "outputs/model.pkl", STD_LOG]
        for name, kind in (("outputs/zero", "character device"), ("outputs/sock", "socket")):
            with pytest.raises(RunFileRefused, match=kind):
                finishes(lambda name=name: copy_run_file(run_file(layout, name), tmp_path / "x"))
        assert finishes(lambda: copy_run_folder(layout, "outputs", tmp_path / "model")) == 1


def test_a_folder_replaced_by_a_link_in_the_middle_of_a_walk_is_not_followed(
    layout: RunLayout, host_secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = layout.outputs / "sub"
    sub.mkdir()
    (sub / "a.txt").write_text("a")
    real = artifacts._open_dir_at
    swapped: list[str] = []

    def swap_then_open(name: str, folder: int) -> int:
        # The job's move, between the walk's look at "sub" (a folder) and its open: sub becomes a link.
        if name == "sub" and not swapped:
            shutil.rmtree(sub)
            sub.symlink_to(host_secret.parent)
            swapped.append(name)
        return real(name, folder)

    monkeypatch.setattr(artifacts, "_open_dir_at", swap_then_open)
    names = all_names(layout)
    assert swapped and not any(name.startswith("outputs/sub/") for name in names), names

    sub.unlink()
    sub.mkdir()
    (sub / "shadow").write_text("the run's own")
    swapped.clear()
    with pytest.raises(RunFileRefused, match="symbolic link"):  # same move while a name is being opened
        find_run_file(layout, "outputs/sub/shadow")
    assert swapped


def test_listings_are_pages_in_name_order_that_never_hold_a_big_folder_whole(
    layout: RunLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = {"outputs/model.pkl", "logs/train.txt", STD_LOG}
    for index in range(3000):
        name = f"outputs/{'ab'[index % 2]}/{index}" + ("/deep.txt" if index % 7 == 0 else ".txt")
        (layout.wd / name).parent.mkdir(parents=True, exist_ok=True)
        (layout.wd / name).write_text("x")
        names.add(name)
    (layout.uploads / "a.bin").write_text("u")  # uploads interleave by name
    (layout.uploads / "outputs").mkdir()  # uploads/outputs/... is not what outputs/... names
    (layout.uploads / "outputs" / "model.pkl").write_text("not served")
    names.add("a.bin")
    expected = sorted(names)

    batches: list[int] = []
    real_nsmallest = heapq.nsmallest

    def counting(n: int, iterable: Iterator[Any], **kwargs: Any) -> list[Any]:
        batches.append(n)
        return real_nsmallest(n, iterable, **kwargs)

    monkeypatch.setattr(artifacts.heapq, "nsmallest", counting)
    first = list_run_files(layout, limit=10)
    assert first.names == expected[:10] and first.next_after == expected[9]
    assert max(batches) <= 256  # a page of ten reads a folder of 1500 in one bounded batch, not whole

    seen: list[str] = []
    after = None
    while True:
        page = list_run_files(layout, after=after, limit=333)
        assert len(page.files) <= 333
        seen += page.names
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == expected
    assert list_run_files(layout, prefix="outputs/b/1", limit=3).names == [
        n for n in expected if n.startswith("outputs/b/1")][:3]
    assert read_run_file(find_run_file(layout, "outputs/model.pkl")).data == b"weights"


def test_copying_a_folder_keeps_regular_files_only(layout: RunLayout, host_secret: Path, tmp_path: Path) -> None:
    (layout.outputs / "nested").mkdir()
    (layout.outputs / "nested" / "w.bin").write_bytes(b"w")
    (layout.outputs / "leak").symlink_to(host_secret)
    (layout.outputs / "etc").symlink_to(host_secret.parent)
    assert copy_run_folder(layout, "outputs", tmp_path / "model") == 2
    copied = sorted(str(p.relative_to(tmp_path / "model")) for p in (tmp_path / "model").rglob("*"))
    assert copied == ["model.pkl", "nested", "nested/w.bin"]
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "model").rglob("*") if p.is_file())


# -- the job's event file (ingest) ----------------------------------------------------------------------------
RUN = "exp_1_abc"


@pytest.fixture
def store(layout: RunLayout) -> Store:
    store = Store(layout.root.parent.parent / "workspace.db")
    with store.write() as db:
        db.execute("INSERT INTO experiments (name, id, created) VALUES ('exp', 'e-id', 0)")
        db.execute("INSERT INTO runs (run_id, experiment, number, status, target, definition, created) "
                   "VALUES (?, 'exp', 1, 'Running', 'local', '{}', 0)", (RUN,))
    return store


def test_an_event_file_replaced_by_a_fifo_is_refused_without_blocking(store: Store, layout: RunLayout) -> None:
    os.mkfifo(layout.events)
    said: list[str] = []
    try:
        assert finishes(lambda: ingest_events(store, RUN, layout.events, on_refused=said.append)) == 0
    finally:
        unblock(layout.events)
    assert len(said) == 1 and "FIFO" in said[0] and "events.jsonl" in said[0]
    with pytest.warns(UserWarning, match="FIFO"):  # without a place to say it (a notebook): a warning
        assert finishes(lambda: ingest_events(store, RUN, layout.events)) == 0
    # The store was never held: another process can write at once.
    other = sqlite3.connect(store.path, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    other.rollback()


def test_an_event_file_that_is_a_link_is_not_followed(store: Store, layout: RunLayout, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text('{"op": "tag", "key": "k", "value": "v"}\n')
    layout.events.symlink_to(elsewhere)
    said: list[str] = []
    assert ingest_events(store, RUN, layout.events, on_refused=said.append) == 0
    assert "symbolic link" in said[0]


def test_the_event_file_is_read_with_no_transaction_open(store: Store, layout: RunLayout,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_amltrain.engine.tracking import ingest

    layout.events.write_text('{"op": "tag", "key": "k", "value": "v"}\n')
    real = ingest.open_run_file
    checked: list[bool] = []

    def open_and_check(file: Any) -> Any:
        other = sqlite3.connect(store.path, timeout=0)  # fails at once ("locked") if ingest holds the lock
        other.execute("BEGIN IMMEDIATE")
        other.rollback()
        other.close()
        checked.append(True)
        return real(file)

    monkeypatch.setattr(ingest, "open_run_file", open_and_check)
    assert ingest_events(store, RUN, layout.events) == 1 and checked
    assert ingest_events(store, RUN, layout.events) == 0


# -- the v1 face ----------------------------------------------------------------------------------------------
def test_get_file_names_is_capped_with_a_warning_and_download_files_gets_them_all(
    ws: Any, tmp_path: Path, host_secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jupyter_amltrain.core import Experiment, Run
    from jupyter_amltrain.core import run as run_module
    from jupyter_amltrain.engine.runs import records

    record = records.create_run(ws._local.store, experiment="exp", target="local", definition={},
                                snapshot_id=None, properties={}, tags={}, warnings=[])
    layout = RunLayout(ws._local.layout.run_dir(record.run_id)).ensure()
    layout.outputs.mkdir(parents=True)
    for index in range(7):
        (layout.outputs / f"f{index}.txt").write_text(str(index))
    (layout.outputs / "leak").symlink_to(host_secret)
    run = Run(Experiment(ws, "exp"), record.run_id)
    monkeypatch.setattr(run_module, "MAX_FILE_NAMES", 5)
    with pytest.warns(UserWarning, match="more than 5 files: get_file_names"):
        assert run.get_file_names() == [f"outputs/f{index}.txt" for index in range(5)]
    run.download_files(prefix="outputs/", output_directory=str(tmp_path / "dl"))
    assert sorted(p.name for p in (tmp_path / "dl" / "outputs").iterdir()) == [f"f{i}.txt" for i in range(7)]
    with pytest.raises(RunFileRefused, match="symbolic link"):
        run.download_file("outputs/leak", str(tmp_path / "leak"))
