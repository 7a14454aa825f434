"""The store: the single source of truth for jobs, history, deliveries, events, claims
and accounts.

One engine per database (engine.py: SQLite, PostgreSQL) and repositories over it, each
holding its own queries: `store.jobs`, `store.events`, `store.claims`,
`store.deliveries`, `store.hotfolders`, `store.outbox`, `store.accounts`. Every call is
one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from outputd.errors import ConfigError, RequestRefused
from outputd.store.accounts import Accounts
from outputd.store.claims import Claims
from outputd.store.deliveries import Deliveries, HotFolders
from outputd.store.engine import Engine
from outputd.store.jobs import DuplicateJob, Events, Jobs
from outputd.store.outbox import Outbox

__all__ = ["DuplicateJob", "Store", "open_store"]


class Store:
    """The repositories over one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs = Jobs(engine)
        self.events = Events(engine)
        self.claims = Claims(engine, self.jobs)
        self.deliveries = Deliveries(engine)
        self.hotfolders = HotFolders(engine)
        self.outbox = Outbox(engine)
        self.accounts = Accounts(engine)

    @property
    def shared(self) -> bool:
        """Whether several nodes may work on this store at once (PostgreSQL)."""
        return self.engine.shared

    def migrate(self) -> None:
        """Bring the schema up to date; safe when several nodes start at once."""
        self.engine.migrate()

    def ping(self) -> None:
        """Raise if the store does not answer now (for /healthz)."""
        self.engine.ping()

    def listen(self, wake: Callable[[], None], stopping: threading.Event) -> None:
        """Call `wake()` when another process records new work, until `stopping`."""
        self.engine.listen(wake, stopping)

    def close(self) -> None:
        self.engine.close()


def open_store(url: str, *, migrate: bool = True, create: bool = True) -> Store:
    """Open (and by default migrate) the store at `url`. Without `create`, a SQLite
    store that does not exist yet is refused rather than made (commands that only read
    should leave no files behind)."""
    engine: Engine
    if url.startswith("sqlite:///"):
        from outputd.store.sqlite import SqliteEngine

        path = Path(url[len("sqlite:///"):])
        if not create and not path.exists():
            raise RequestRefused(
                f"there is no store at {path} yet: outputd run creates it when it starts")
        engine = SqliteEngine(path)
    elif url.startswith(("postgresql://", "postgres://")):
        from outputd.store.postgres import PostgresEngine

        engine = PostgresEngine(url)
    else:
        raise ConfigError("store.url must start with sqlite:/// or postgresql://")
    if migrate:
        try:
            engine.migrate()
        except Exception as exc:
            engine.close()
            raise ConfigError(f"cannot open the store at store.url: {exc}") from exc
    return Store(engine)
