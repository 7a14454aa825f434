"""Hot-folder kinds: the config's `kind` maps to its transport class here."""

from __future__ import annotations

import logging
import threading

from outputd import logs
from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.errors import ConfigError
from outputd.transports.base import Transport
from outputd.transports.local import LocalTransport
from outputd.transports.sftp import SftpTransport

log = logging.getLogger(__name__)

KINDS: dict[str, type] = {"local": LocalTransport, "sftp": SftpTransport}


def check_kinds(hotfolders: dict[str, LocalHotFolder | SftpHotFolder]) -> None:
    """Raise ConfigError for a hot folder of a kind this version cannot deliver to."""
    for name, config in hotfolders.items():
        if config.kind not in KINDS:
            raise ConfigError(f"hotfolders.{name}.kind {config.kind!r} is not supported yet")


def make_transport(name: str, config: LocalHotFolder | SftpHotFolder) -> Transport:
    """A transport for the hot folder `name`."""
    check_kinds({name: config})
    transport: Transport = KINDS[config.kind](name, config)
    return transport


class TransportPool:
    """One transport per hot folder, made on first use, when stale temp files are swept."""

    def __init__(self, hotfolders: dict[str, LocalHotFolder | SftpHotFolder],
                 sweep_older_than_s: float) -> None:
        self.hotfolders = hotfolders
        self.sweep_older_than_s = sweep_older_than_s
        self._transports: dict[str, Transport] = {}
        self._lock = threading.Lock()
        self._successor: TransportPool | None = None  # set once a reload replaced it

    def get(self, name: str) -> Transport:
        """The transport of hot folder `name` (a job begun before a reload is handed the
        current one: a replaced pool holds none)."""
        if self._successor is not None:
            return self._successor.get(name)
        with self._lock:
            transport = self._transports.get(name)
            if transport is None:
                transport = make_transport(name, self.hotfolders[name])
                swept = transport.sweep(self.sweep_older_than_s)
                if swept:
                    logs.event(log, logging.INFO, "hotfolder.swept", hotfolder=name,
                               files=",".join(swept))
                self._transports[name] = transport
            return transport

    def sweep_all(self) -> None:
        """Remove stale temp files in every hot folder used so far (hourly)."""
        with self._lock:
            transports = list(self._transports.items())
        for name, transport in transports:
            swept = transport.sweep(self.sweep_older_than_s)
            if swept:
                logs.event(log, logging.INFO, "hotfolder.swept", hotfolder=name,
                           files=",".join(swept))

    def for_hotfolders(self, hotfolders: dict[str, LocalHotFolder | SftpHotFolder]
                       ) -> TransportPool:
        """A pool for a reloaded config: transports of unchanged hot folders are taken
        over; those of changed or removed ones close."""
        pool = TransportPool(hotfolders, self.sweep_older_than_s)
        with self._lock:
            for name, transport in self._transports.items():
                if hotfolders.get(name) == self.hotfolders.get(name):
                    pool._transports[name] = transport
                else:
                    transport.close()
            self._transports.clear()
            self._successor = pool
        return pool

    def close(self) -> None:
        with self._lock:
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()
