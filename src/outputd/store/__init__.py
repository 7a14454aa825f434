"""Opening the store named by `store.url`."""

from __future__ import annotations

from pathlib import Path

from outputd.errors import ConfigError, RequestRefused
from outputd.store.base import DuplicateJob, SqlStore

__all__ = ["DuplicateJob", "SqlStore", "open_store"]


def open_store(url: str, *, migrate: bool = True, create: bool = True) -> SqlStore:
    """Open (and by default migrate) the store at `url`. Without `create`, a SQLite
    store that does not exist yet is refused rather than made (commands that only read
    should leave no files behind)."""
    if url.startswith("sqlite:///"):
        from outputd.store.sqlite import SqliteStore

        path = Path(url[len("sqlite:///"):])
        if not create and not path.exists():
            raise RequestRefused(
                f"there is no store at {path} yet: outputd run creates it when it starts")
        store: SqlStore = SqliteStore(path)
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
