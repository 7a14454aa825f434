"""Opening the store named by `store.url`."""

from __future__ import annotations

from pathlib import Path

from outputd.errors import ConfigError
from outputd.store.base import DuplicateJob, SqlStore

__all__ = ["DuplicateJob", "SqlStore", "open_store"]


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """Open (and by default migrate) the store at `url`."""
    if url.startswith("sqlite:///"):
        from outputd.store.sqlite import SqliteStore

        store: SqlStore = SqliteStore(Path(url[len("sqlite:///"):]))
    elif url.startswith(("postgresql://", "postgres://")):
        from outputd.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise ConfigError("store.url must start with sqlite:/// or postgresql://")
    if migrate:
        try:
            store.migrate()
        except Exception as exc:
            store.close()
            raise ConfigError(f"cannot open the store at store.url: {exc}") from exc
    return store
