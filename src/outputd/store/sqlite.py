"""The embedded SQLite engine: WAL, a busy timeout, writes under BEGIN IMMEDIATE."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from outputd.store.base import Cursor, SqlStore, ThreadConnections


class SqliteStore(ThreadConnections, SqlStore):
    """A store in one SQLite file, one connection per thread."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # Threads of this process take turns at writing here, where a hand-over is
        # immediate; SQLite's own busy handler sleeps for milliseconds between retries.
        self._write_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = self._own()
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._keep(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self._connection()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[Cursor]:
        yield self._connection().cursor()

    def ping(self) -> None:
        """Raise if the database file cannot be opened and read right now."""
        conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=2)
        try:
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        finally:
            conn.close()
