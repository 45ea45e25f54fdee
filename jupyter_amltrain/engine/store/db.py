"""SQLite access for one workspace, safe for many processes at once.

WAL mode lets readers proceed while one writer commits; every write goes through ``write()``, which takes
the database lock up front (``BEGIN IMMEDIATE``) so a read-modify-write (booking a node, numbering a run)
can never interleave with another process's.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from jupyter_amltrain.engine.store.disk import is_disk_full

SCHEMA_VERSION = 2  # 2: system_metrics (an older store gets it on open: the script is idempotent)


class Store:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        (version,) = self.query_one("PRAGMA user_version") or (0,)
        if version < SCHEMA_VERSION:
            # Idempotent (CREATE ... IF NOT EXISTS), so two processes opening a new store at once is fine.
            script = resources.files(__package__).joinpath("schema.sql").read_text()
            try:
                self.db.executescript(
                    f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;")
            except sqlite3.Error as exc:
                self._rollback()
                if version == 0 or not is_disk_full(exc):
                    raise  # a new store must be created whole
                # An older store can still be read on a full disk; it is brought up to date on a later open.
                warnings.warn(f"The disk holding {self.path} is full, so its schema was not updated to version "
                              f"{SCHEMA_VERSION} ({exc}); free space there.", RuntimeWarning, stacklevel=2)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=60000")
        except sqlite3.Error:
            db.close()  # not cached: the next use tries again (a full disk may have been freed meanwhile)
            raise
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared across threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        db = self.db
        if db.in_transaction:  # nested: the outer write() owns the transaction
            yield db
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back by itself (it does on SQLITE_FULL: a plain ROLLBACK would then raise
            # and hide the real error), and a COMMIT that failed otherwise (SQLITE_BUSY) leaves the transaction
            # open: this connection must leave write() with none, or every later write() would nest into it.
            self._rollback()
            raise

    def _rollback(self) -> None:
        db = getattr(self._local, "conn", None)
        if db is not None and db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not self._may_read_file(exc):
                raise
        with contextlib.closing(self._file_reader()) as db:
            return db.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        try:
            row: sqlite3.Row | None = self.db.execute(sql, params).fetchone()
            return row
        except sqlite3.OperationalError as exc:
            if not self._may_read_file(exc):
                raise
        with contextlib.closing(self._file_reader()) as db:
            row = db.execute(sql, params).fetchone()
            return row

    # -- reading on a full disk -------------------------------------------------------------------------------
    # A WAL database is read through its shared-memory index (workspace.db-shm). When no process has the store
    # open, SQLite has removed that file, and on a full disk it can not be made again (SQLITE_IOERR_SHMSIZE):
    # every read would fail, although nothing needs writing. In exactly that state the WAL is gone or empty
    # (it is folded into the database file before the index is removed), so the database file alone is the
    # whole store, and it is read read-only and without the index. Such a reader is opened for one query and
    # closed, so it never outlives the moment it is right for.

    def _may_read_file(self, exc: sqlite3.Error) -> bool:
        if not is_disk_full(exc) or self._in_transaction() or not self.path.is_file():
            return False
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            return wal.stat().st_size == 0
        except FileNotFoundError:
            return True
        except OSError:
            return False

    def _in_transaction(self) -> bool:
        conn = getattr(self._local, "conn", None)
        return conn is not None and conn.in_transaction

    def _file_reader(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"{self.path.absolute().as_uri()}?mode=ro&immutable=1", uri=True,
                             check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def loads(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)
