"""The one interface every kind of hot folder implements."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

PART_PREFIX = "."
PART_SUFFIX = ".part"


def part_name(final_name: str) -> str:
    """The temp name a file is written under before its rename: `.<final-name>.part`."""
    return f"{PART_PREFIX}{final_name}{PART_SUFFIX}"


def is_part_name(name: str) -> bool:
    """Whether `name` is a temp name of outputd's naming."""
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX) and len(name) > 6


class CopyControl:
    """Lets a long copy be cut short when outputd stops, and report that it progresses."""

    def __init__(self, abort: threading.Event,
                 on_progress: Callable[[], None] | None = None) -> None:
        self.abort = abort
        self.on_progress = on_progress

    def check(self) -> None:
        """Call between chunks: raises CopyAborted once the stop grace time is over."""
        from outputd.errors import CopyAborted

        if self.abort.is_set():
            raise CopyAborted("the copy was cut short because outputd is stopping")
        if self.on_progress is not None:
            self.on_progress()


class Transport(ABC):
    """Puts files into one hot folder so that a RIP only ever sees complete files.

    Errors are raised as DeliveryError (retry later) or PermanentDeliveryError (an
    operator must act), with the reason in the message.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def put(
        self, source: Path, final_name: str, *, size: int, sha256: str,
        control: CopyControl | None = None,
    ) -> str:
        """Deliver `source` under `final_name` atomically; return the final path.

        A final file already holding the same bytes counts as delivered (this delivery
        landed before a stop kept it from being recorded). Anything else at the final
        name (other bytes, a link, a folder) is never replaced: NameTaken.
        """

    # The methods below act on a file outputd recorded: `path` is the delivery's path as
    # `put` returned it (or as planned, before it was sent), wherever the hot folder's
    # config puts files now (a reload may have changed its path or filename). A path
    # this transport cannot reach raises DeliveryError: never "not there".

    @abstractmethod
    def holds(self, path: str, size: int, sha256: str) -> bool:
        """Whether `path` is a regular file (not a link) holding these bytes: a copy
        renamed into place before a stop kept it from being recorded."""

    @abstractmethod
    def remove(self, path: str) -> None:
        """Remove the file at `path` (a temp file a cut-short copy left); no error if it
        is gone."""

    @abstractmethod
    def withdraw(self, path: str, sha256: str | None) -> bool:
        """Remove a delivered file the RIP has not taken (a cancelled job): True if it
        was there and removed; False if it is gone, or what is there now is not the file
        delivered (other bytes, or not a regular file), which is left alone."""

    @abstractmethod
    def probe(self) -> None:
        """Write, rename and delete a probe file; raise DeliveryError on failure."""

    @abstractmethod
    def sweep(self, older_than_s: float) -> list[str]:
        """Remove stale temp files of outputd's naming; return their names."""

    def close(self) -> None:  # noqa: B027 - transports holding connections override
        """Release connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
