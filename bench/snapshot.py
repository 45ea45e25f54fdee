"""Snapshots: the first snapshot of a 2,000-file, 300 MB folder against ``cp -a`` of it; taking it again
unchanged (what a resubmission pays) against the first (target: at most 0.05x); and how both grow with
200, 2,000 and 20,000 files.

``SnapshotStore.take`` is timed directly: it is exactly what ``Experiment.submit`` runs, without the rest of a
submission around it. Files are written just before and read from the page cache by both sides alike (the
machine's disk is not the subject). A first snapshot gets a new, empty store each round.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import Options, Result, Target, growth_exponent, main_for, median, timed

FULL_FILES, FULL_BYTES = 2_000, 300_000_000  # v1's limits: 2,000 files and 300 MB
GROWTH_FILES = (200, 2_000, 20_000)
GROWTH_FILE_BYTES = 10_000  # fixed per file, so the growth curve is about file count alone
FILES_PER_FOLDER = 100
# Files written within 2 s of a scan are hashed again next time (stat_cache.RACY_WINDOW_NS); a user's source
# folder was not edited in the last two seconds, so the trees are dated an hour back.
AGE_SECONDS = 3600


def make_tree(root: Path, files: int, total_bytes: int) -> None:
    """``files`` files of random content (nothing deduplicates) totalling ``total_bytes``, 100 per folder."""
    size = total_bytes // files
    for index in range(files):
        folder = root / f"part{index // FILES_PER_FOLDER:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{index:05d}.bin").write_bytes(os.urandom(size))
    (root / "train.py").write_text("print('train')\n")
    past = time.time() - AGE_SECONDS
    for path in root.rglob("*"):
        os.utime(path, (past, past))


def _cp_a(source: Path, scratch: Path) -> float:
    target = scratch / "cp-a-copy"
    os.sync()  # each side starts with no dirty pages of the other's to write back
    seconds = timed(lambda: subprocess.run(["cp", "-a", str(source), str(target)], check=True))
    shutil.rmtree(target)
    return seconds


def _first_snapshot(source: Path, scratch: Path, max_files: int) -> float:
    from jupyter_amltrain.engine.snapshots import SnapshotStore

    store_dir = scratch / "first-store"
    os.sync()
    seconds = timed(lambda: SnapshotStore(store_dir).take(source, max_files=max_files))
    shutil.rmtree(store_dir)
    return seconds


def _unchanged(source: Path, store_dir: Path, max_files: int, rounds: int) -> tuple[float, int]:
    """Median seconds of taking an unchanged folder again, and the most files any round had to read again."""
    from jupyter_amltrain.engine.snapshots import SnapshotStore

    store = SnapshotStore(store_dir)
    store.take(source, max_files=max_files)
    os.sync()
    times, hashed = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        again = store.take(source, max_files=max_files)
        times.append(time.perf_counter() - start)
        hashed = max(hashed, again.hashed_files)
    return median(times), hashed


def run(options: Options) -> list[Result]:
    full_files, full_bytes = (200, 30_000_000) if options.quick else (FULL_FILES, FULL_BYTES)
    growth = (50, 200, 2_000) if options.quick else GROWTH_FILES
    rounds = 2 if options.quick else 3
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="amltrain-bench-snapshot-") as tmp:
        scratch = Path(tmp)
        source = scratch / "source"
        make_tree(source, full_files, full_bytes)
        files = full_files + 1
        cp, first = [], []
        for _ in range(rounds):  # alternating, so both meet the same page cache and writeback state
            cp.append(_cp_a(source, scratch))
            first.append(_first_snapshot(source, scratch, files))
        first_s, cp_s = median(first), median(cp)
        unchanged_s, hashed = _unchanged(source, scratch / "store", files, 5)
        results.append(Result(
            "snapshot_first", first_s, "s", "cp -a", cp_s,
            details={"files": files, "bytes": full_bytes, "rounds_s": first, "cp_a_s": cp},
            notes=["Reads and hashes every byte (sha256) while copying it into the content-addressed store."],
        ))
        results.append(Result(
            "snapshot_unchanged", unchanged_s, "s", "first snapshot", first_s, target=Target(0.05),
            details={"files_read_again": hashed, "vs_cp_a": unchanged_s / cp_s},
        ))
        shutil.rmtree(source)
        shutil.rmtree(scratch / "store")

        points: list[dict[str, float]] = []
        for count in growth:
            tree = scratch / f"tree-{count}"
            make_tree(tree, count, count * GROWTH_FILE_BYTES)
            cp_n = _cp_a(tree, scratch)
            first_n = _first_snapshot(tree, scratch, count + 1)
            unchanged_n, reread = _unchanged(tree, scratch / f"store-{count}", count + 1, 3)
            points.append({"files": count, "first_s": first_n, "unchanged_s": unchanged_n, "cp_a_s": cp_n,
                           "files_read_again": reread})
            shutil.rmtree(tree)
            shutil.rmtree(scratch / f"store-{count}")
    sizes = [p["files"] for p in points]
    first_k = growth_exponent(sizes, [p["first_s"] for p in points])
    unchanged_k = growth_exponent(sizes, [p["unchanged_s"] for p in points])
    cp_k = growth_exponent(sizes, [p["cp_a_s"] for p in points])
    largest = points[-1]
    results.append(Result(
        "snapshot_growth_first", largest["first_s"], "s", f"cp -a of {largest['files']:,.0f} files",
        largest["cp_a_s"],
        details={"points": points, "exponent_first": first_k, "exponent_unchanged": unchanged_k,
                 "exponent_cp_a": cp_k, "file_bytes": GROWTH_FILE_BYTES},
        notes=[f"time ~ files^k from {sizes[0]:,} to {sizes[-1]:,} files of {GROWTH_FILE_BYTES:,} bytes: "
               f"first snapshot k={first_k:.2f}, unchanged k={unchanged_k:.2f}, cp -a k={cp_k:.2f} (1 = linear)."]
        + [f"{p['files']:,.0f} files: first {p['first_s'] * 1000:.0f} ms, unchanged {p['unchanged_s'] * 1000:.1f} ms, "
           f"cp -a {p['cp_a_s'] * 1000:.0f} ms" for p in points],
    ))
    results.append(Result(
        "snapshot_growth_unchanged", largest["unchanged_s"], "s", f"first snapshot of {largest['files']:,.0f} files",
        largest["first_s"], details={"exponent": unchanged_k},
    ))
    return results


if __name__ == "__main__":
    sys.exit(main_for(run, __doc__))
