"""What a command works on: the config, the store, the folders, and who is asking."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from outputd.configfile import ConfigFile, read_config_file
from outputd.ops.access import Caller
from outputd.store import Store, open_store

if TYPE_CHECKING:
    from outputd.config import Config
    from outputd.layout import Layout

# `show` and `jobs` only read the store: they neither validate the whole config nor load
# the pydantic models (about 100 ms of every command). The other commands import what
# they need when they run.

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
DEFAULT_LIMIT = 500


def who() -> str:
    """The local user's name, as the history's `by` (the sudo user's where sudo ran it)."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "cli"


class Context:
    """The config, store and folders a command works on, opened on first use.

    The config is validated up front unless the command only reads the store; then only
    the keys that locate the store are read, and a store that does not exist yet is not
    made (a `sudo outputd jobs` before the first start would leave root's file behind).
    """

    def __init__(self, config_path: str | None, *, reads_only: bool = False) -> None:
        self._reads_only = reads_only
        self._file: ConfigFile = read_config_file(config_path)
        self._config: Config | None = None
        self._layout: Layout | None = None
        self._store: Store | None = None
        if not reads_only:
            self.config  # noqa: B018 (a bad config is refused before anything is done)

    @property
    def config(self) -> Config:
        if self._config is None:
            from outputd.config import validate

            self._config = validate(self._file)
        return self._config

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            from outputd.layout import Layout

            self._layout = Layout(self.config)
        return self._layout

    @property
    def caller(self) -> Caller:
        """The CLI's caller: the local user, with every right (DESIGN §11)."""
        return Caller.local(who())

    @property
    def store(self) -> Store:
        if self._store is None:
            url = self._config.store.url if self._config else self._file.quick_store_url()
            self._store = open_store(url, create=not self._reads_only)
        return self._store


class Usage(Exception):
    """The command line is wrong (exit 2)."""
