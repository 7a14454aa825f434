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
    else:
        raise ConfigError(f"store.url {url!r}: only sqlite:/// stores are supported yet")
    if migrate:
        store.migrate()
    return store
