"""Watches the intake folder and hands complete tickets to the intake, one at a time.

Events (close-after-write, rename into place, creation) are acted on at once when the
ticket already parses as a whole JSON object, since a cut-off JSON object never does.
A scan every few seconds catches what events miss (network shares): a ticket whose size
and time have not changed between two scans is handled even if it does not parse, so a
bad ticket is rejected rather than left waiting. A ticket that cannot be taken in yet
(a full disk) stays where it is and is tried again, less often each time. Writes
themselves are not watched: every write() would be an event (and a re-read of a ticket
still being written) while the close, rename or link that follows says more.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from outputd import logs
from outputd.errors import IntakeDeferred, TicketError
from outputd.intake.accept import Intake, is_ticket_name
from outputd.intake.files import read_ticket
from outputd.tickets import MAX_TICKET_BYTES

log = logging.getLogger(__name__)
SCAN_INTERVAL_S = 2.0
DEFERRED_MAX_S = 30.0  # a ticket waiting for disk space is tried at most this far apart

# Why a path was queued: a close after writing, a rename into place (within one file
# system a rename moves a finished file), or a scan that saw it unchanged all mean the
# writer is done with it.
_DONE_WRITING = frozenset({"closed", "moved", "stable"})


def _written(path: Path) -> bool:
    """Whether a ticket looks complete: it parses. What is not a regular file, or is
    too large to be a ticket, is never read: the intake refuses it now."""
    try:
        data = read_ticket(None, str(path), MAX_TICKET_BYTES)
    except TicketError:
        return True
    except OSError:
        return False
    if len(data) > MAX_TICKET_BYTES:
        return True
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(body, dict)


class _Handler(FileSystemEventHandler):
    def __init__(self, folder: Path, enqueue: Callable[[Path, str], None]) -> None:
        self.folder = folder
        self.enqueue = enqueue

    def _offer(self, raw: str | bytes, why: str) -> None:
        path = Path(os.fsdecode(raw))
        if path.parent == self.folder and is_ticket_name(path.name):
            self.enqueue(path, why)

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._offer(event.src_path, "closed")

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._offer(event.dest_path, "moved")

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._offer(event.src_path, "created")



class IntakeWatcher:
    """Runs the watchdog observer, the fallback scan and the one intake thread."""

    def __init__(self, intake: Intake, folder: Path, on_accept: Callable[[], None]) -> None:
        self.intake = intake
        self.folder = folder
        self.on_accept = on_accept
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._seen: dict[str, tuple[int, int]] = {}
        self._deferred: dict[str, _Deferred] = {}  # ticket name → why it waits, and until
        self._deferred_lock = threading.Lock()  # the scan runs in the scheduler's thread
        self._observer = Observer()
        self._thread = threading.Thread(target=self._loop, name="intake", daemon=True)

    def start(self) -> None:
        self._observer.schedule(_Handler(self.folder, self.enqueue), str(self.folder),
                                recursive=False, event_filter=[
                                    FileClosedEvent, FileMovedEvent, FileCreatedEvent])
        self._observer.start()
        self._thread.start()
        self.scan(startup=True)

    def stop(self) -> None:
        self._observer.stop()
        self._queue.put(None)
        self._observer.join(timeout=5)
        self._thread.join(timeout=30)

    def deferred_count(self) -> int:
        """Tickets that could not be taken in yet and wait to be tried again."""
        with self._deferred_lock:
            return len(self._deferred)

    def alive(self) -> bool:
        """Whether events are watched and tickets handled (both threads run)."""
        return self._thread.is_alive() and self._observer.is_alive()

    def enqueue(self, path: Path, why: str) -> None:
        self._queue.put((path, why))

    def scan(self, startup: bool = False) -> None:
        """Queue tickets present now: settled ones as stable, the rest to be peeked at."""
        seen: dict[str, tuple[int, int]] = {}
        try:
            entries = list(os.scandir(self.folder))
        except OSError as exc:
            log.error("intake.unreadable", extra={"fields": {"error": str(exc)}})
            return
        for entry in entries:
            if not is_ticket_name(entry.name):
                continue  # a ticket name that is not a regular file is refused by the intake
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mark = (st.st_size, st.st_mtime_ns)
            seen[entry.name] = mark
            stable = self._seen.get(entry.name) == mark
            self.enqueue(Path(entry.path), "stable" if stable else "scan")
        self._seen = seen
        with self._deferred_lock:
            for name in self._deferred.keys() - seen.keys():
                del self._deferred[name]  # withdrawn or taken in by another node

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            path, why = item
            if not os.path.lexists(path):
                continue
            with self._deferred_lock:
                deferred = self._deferred.get(path.name)
            if deferred is not None and time.monotonic() < deferred.retry_at:
                continue  # the scan comes back to it
            if why not in _DONE_WRITING and not _written(path):
                continue  # still being written: a close event or the scan comes back
            try:
                outcome = self.intake.handle(path)
            except IntakeDeferred as exc:
                self._defer(path.name, str(exc), job_id=exc.job_id)
                continue
            except Exception as exc:  # the store down or full, or a fault of our own
                self._defer(path.name, f"{type(exc).__name__}: {exc}", exc)
                continue
            if deferred is not None:
                with self._deferred_lock:
                    self._deferred.pop(path.name, None)
            if outcome.result in ("accepted", "event"):
                self.on_accept()

    def _defer(self, name: str, reason: str, unexpected: Exception | None = None,
               job_id: str | None = None) -> None:
        """Try `name` again later; say why once (with the traceback of an unexpected
        error), and again only when the reason changes."""
        with self._deferred_lock:
            before = self._deferred.get(name)
            delay = min(before.delay_s * 2, DEFERRED_MAX_S) if before else SCAN_INTERVAL_S
            self._deferred[name] = _Deferred(reason, delay, time.monotonic() + delay)
        if before is not None and before.reason == reason:
            return
        then = "the ticket stays in the intake folder and is tried again"
        if unexpected is None:
            logs.event(log, logging.ERROR, "intake.deferred", job=job_id, ticket=name,
                       reason=reason, then=then)
        else:
            log.error("intake.failed", exc_info=unexpected,
                      extra={"fields": {"ticket": name, "then": then}})


class _Deferred(NamedTuple):
    reason: str
    delay_s: float
    retry_at: float
