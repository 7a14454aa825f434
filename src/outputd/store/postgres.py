"""The PostgreSQL engine: several nodes share one queue.

Claims take rows with `FOR UPDATE SKIP LOCKED`; migrations run under an advisory lock;
new work is announced with NOTIFY so idle nodes start at once rather than at their poll.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from outputd.store.engine import Cursor, Engine

log = logging.getLogger(__name__)
CHANNEL = "outputd"
MIGRATION_LOCK = 0x6F757470  # "outp"
_PLACEHOLDER = re.compile(r"\?")


class _Cursor:
    """A psycopg cursor that takes the store's `?` placeholders."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(_PLACEHOLDER.sub("%s", sql), params)  # type: ignore[call-overload]
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class PostgresEngine(Engine):
    """A store in a PostgreSQL database, one connection per thread."""

    serial = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    shared = True

    def row_lock(self, alias: str) -> str:
        return f" FOR UPDATE OF {alias} SKIP LOCKED"

    def write_lock(self) -> str:
        return " FOR UPDATE"

    def __init__(self, url: str, connect_timeout_s: float = 10) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._local = threading.local()  # this thread's connection, as `conn`
        self._connections: list[psycopg.Connection[Any]] = []  # every thread's, to close
        self._lock = threading.Lock()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True,
                               connect_timeout=int(self.connect_timeout_s))

    def _connection(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def _using(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self._connection()
        try:
            yield conn
        except psycopg.OperationalError:
            self._local.conn = None  # reconnect on the next call
            raise

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self._using() as conn, conn.transaction(), conn.cursor() as cur:
            yield _Cursor(cur)

    @contextmanager
    def reader(self) -> Iterator[Cursor]:
        with self._using() as conn, conn.cursor() as cur:
            yield _Cursor(cur)

    def lock_for_migration(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def notify(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_notify(?, '')", (CHANNEL,))

    def listen(self, wake: Callable[[], None], stopping: threading.Event) -> None:
        """LISTEN on a connection of its own; reconnect after a fault until stopping."""
        while not stopping.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not stopping.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            wake()
            except psycopg.Error as exc:
                log.warning("store.listen_failed", extra={"fields": {"error": str(exc)}})
                stopping.wait(2.0)

    def ping(self) -> None:
        with psycopg.connect(self.url, connect_timeout=2) as conn:
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
