"""One small engine per database: transactions, reads, the claim lock, push notices.

The repositories (jobs, events, claims, deliveries, hot folders, outbox) hold every
query in the SQL the engines share; an engine supplies connections and what only it can
do better (PostgreSQL: row locks that skip locked rows, NOTIFY, an advisory lock for
migrations).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from outputd.store.schema import MIGRATIONS


def marks(count: int) -> str:
    """`?, ?, …`: the placeholders of an IN list of `count` values."""
    return ", ".join("?" * count)


class Cursor(Protocol):
    """The DB-API cursor both engines hand out (`?` placeholders)."""
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Engine(ABC):
    """A database the store runs on."""

    serial = "INTEGER PRIMARY KEY"  # the engine's auto-numbered key, for migrations
    shared = False  # whether several nodes may work on this store at once

    def row_lock(self, alias: str) -> str:
        """Appended to claim queries: PostgreSQL locks the rows and skips locked ones;
        SQLite's write transaction already holds the whole database."""
        return ""

    def write_lock(self) -> str:
        """Appended to a read of rows the transaction goes on to write from what it read:
        PostgreSQL locks them (waiting for another writer to commit); SQLite's write
        transaction already holds the whole database."""
        return ""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction that holds the store's write lock from its start."""

    @abstractmethod
    def reader(self) -> AbstractContextManager[Cursor]:
        """A cursor for reads."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the store does not answer now (for /healthz)."""

    def close(self) -> None:  # noqa: B027 - engines with resources override
        """Close every connection."""

    def migrate(self) -> None:
        """Bring the schema up to date; safe when several nodes start at once."""
        with self.transaction() as cur:
            self.lock_for_migration(cur)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for version, steps in enumerate(MIGRATIONS[current:], start=current + 1):
                for step in steps:
                    if callable(step):
                        step(cur)
                    else:
                        cur.execute(step.replace("{serial}", self.serial))
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def lock_for_migration(self, cur: Cursor) -> None:  # noqa: B027 - SQLite's write lock does
        """Serialise migrations across nodes (the engine's own way)."""

    def notify(self, cur: Cursor) -> None:  # noqa: B027 - engines that can push override
        """Tell idle nodes there is new work (PostgreSQL: NOTIFY)."""

    def listen(self, wake: Callable[[], None], stopping: threading.Event) -> None:  # noqa: B027
        """Call `wake()` whenever another process records new work, until `stopping` is
        set (PostgreSQL: LISTEN). Engines without push rely on the daemon's poll."""
