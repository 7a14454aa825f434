"""A hot folder held in memory, for unit tests of what drives transports (the worker,
the delivery stage): it keeps the promises of the Transport interface that do not depend
on a file system, and fails on cue like a hot folder that is down."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from outputd.errors import DeliveryError, NameTaken, PermanentDeliveryError
from outputd.transports.base import CopyControl, Transport


class MemoryTransport(Transport):
    """Files by final name; `failures` are raised by the next puts, one each."""

    def __init__(self, name: str = "memory", failures: Iterable[DeliveryError] = ()) -> None:
        super().__init__(name)
        self.files: dict[str, bytes] = {}
        self.failures = list(failures)
        self.puts = 0  # attempts, failed ones included
        self.writes = 0  # files actually written

    def put(self, source: Path, final_name: str, *, size: int, sha256: str,
            control: CopyControl | None = None) -> str:
        self.puts += 1
        if self.failures:
            raise self.failures.pop(0)
        if control is not None:
            control.check()
        if _held(self.files.get(final_name), size, sha256):
            return self._path(final_name)  # already delivered
        if final_name in self.files:
            raise NameTaken(self.name, self._path(final_name))
        data = source.read_bytes()
        if len(data) != size or _sha(data) != sha256:
            raise PermanentDeliveryError(
                f"{source} is not the output that was made (its sha256 differs)")
        self.files[final_name] = data
        self.writes += 1
        return self._path(final_name)

    def holds(self, path: str, size: int, sha256: str) -> bool:
        return _held(self.files.get(self._name(path)), size, sha256)

    def remove(self, path: str) -> None:
        self.files.pop(self._name(path), None)

    def withdraw(self, path: str, sha256: str | None) -> bool:
        name = self._name(path)
        held = self.files.get(name)
        if held is None or (sha256 is not None and _sha(held) != sha256):
            return False
        del self.files[name]
        return True

    def probe(self) -> None:
        if self.failures:
            raise self.failures[0]

    def sweep(self, older_than_s: float) -> list[str]:
        return []  # nothing is ever left half-written here

    def _path(self, final_name: str) -> str:
        return f"memory://{self.name}/{final_name}"

    def _name(self, path: str) -> str:
        """The final name a path of this hot folder stands for (what `put` returned)."""
        prefix = self._path("")
        if not path.startswith(prefix) or "/" in path[len(prefix):]:
            raise DeliveryError(f"{path} is not in the in-memory hot folder {self.name}")
        return path[len(prefix):]


def _held(data: bytes | None, size: int, sha256: str) -> bool:
    return data is not None and len(data) == size and _sha(data) == sha256


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
