"""GPU leases shared by every workspace under one store home.

Each workspace books nodes and GPUs in its own database; that keeps one workspace's runs from sharing a
GPU, but two workspaces (two projects' notebooks) would both hand out GPU 0. A booking therefore also
takes a lease in ``<home>/gpu-leases.db``. A lease needs no release: it is dead as soon as its run is
terminal or no longer holds the GPU, and whoever books next clears it. A lease younger than
``LEASE_GRACE_SECONDS`` counts as live even before its run row shows the GPU, because the leasing process
commits the lease first and its own workspace a moment later.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from jupyter_amltrain.engine.runs.statuses import is_terminal
from jupyter_amltrain.engine.store.db import loads

LEASE_GRACE_SECONDS = 30.0

_SCHEMA = """CREATE TABLE IF NOT EXISTS leases (
    gpu INTEGER PRIMARY KEY,
    workspace_db TEXT NOT NULL,   -- path of the database of the workspace whose run holds it
    run_id TEXT NOT NULL,
    since REAL NOT NULL
)"""


class HostLeases:
    def __init__(self, path: Path, workspace_db: Path):
        self.path = Path(path)
        self.workspace_db = str(Path(workspace_db).resolve())
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.execute(_SCHEMA)
            self._local.conn = conn
        return conn

    @staticmethod
    def _alive_elsewhere(workspace_db: str, run_id: str, gpu: int, since: float, now: float) -> bool:
        try:
            other = sqlite3.connect(f"file:{workspace_db}?mode=ro", uri=True, timeout=10.0)
        except sqlite3.Error:
            return False  # that workspace is gone
        try:
            row = other.execute("SELECT status, gpus FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        except sqlite3.Error:
            return False
        finally:
            other.close()
        if row is None or is_terminal(row[0]):
            return row is None and now - since < LEASE_GRACE_SECONDS
        return gpu in loads(row[1], []) or now - since < LEASE_GRACE_SECONDS

    def acquire(self, free: Iterable[int], want: int, run_id: str, held_here: set[int]) -> tuple[int, ...] | None:
        """Lease ``want`` of the ``free`` GPUs for ``run_id``; None when other workspaces hold too many of them.

        ``held_here``: GPUs live runs of this workspace hold (read under this workspace's write lock, which
        the caller holds, so this workspace's own leases need no further check)."""
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            held_elsewhere: set[int] = set()
            for gpu, workspace_db, holder, since in db.execute(
                    "SELECT gpu, workspace_db, run_id, since FROM leases").fetchall():
                if workspace_db == self.workspace_db:
                    alive = gpu in held_here and holder != run_id
                else:
                    alive = self._alive_elsewhere(workspace_db, holder, gpu, since, now)
                if alive:
                    held_elsewhere.add(gpu)
                else:
                    db.execute("DELETE FROM leases WHERE gpu = ?", (gpu,))
            chosen = tuple(g for g in free if g not in held_elsewhere)[:want]
            if len(chosen) < want:
                db.execute("COMMIT")
                return None
            db.executemany("INSERT OR REPLACE INTO leases(gpu, workspace_db, run_id, since) VALUES (?, ?, ?, ?)",
                           [(gpu, self.workspace_db, run_id, now) for gpu in chosen])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return chosen

    def holders(self) -> dict[int, tuple[str, str]]:
        """GPU -> (workspace database, run id) of every lease on record, dead or alive (for diagnostics)."""
        return {row[0]: (row[1], row[2]) for row in
                self._db().execute("SELECT gpu, workspace_db, run_id FROM leases").fetchall()}
