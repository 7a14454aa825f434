"""Intake: accept a ticket and the files it names, or set it aside with its reason.

When several nodes watch one shared intake (a PostgreSQL store), a ticket is claimed by
renaming it to a dot-name in the intake folder, so that exactly one of them handles it.
A node with its own store (SQLite) holds the intake folder alone, under a lock, and
handles tickets where they lie: the rename would be two more events for the folder
watcher to pair per ticket, its largest cost in a burst.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from outputd import logs, safefs, states
from outputd.errors import (
    IntakeDeferred,
    OutputdError,
    RequestRefused,
    TicketConflict,
    TicketError,
)
from outputd.fileutil import os_reason
from outputd.intake import files as intakefiles
from outputd.layout import Layout
from outputd.model import BY_DAEMON, iso
from outputd.ops import events, submit
from outputd.ops.access import Caller
from outputd.store import DuplicateJob, Store
from outputd.store.outbox import OutboxPolicy
from outputd.tickets import MAX_TICKET_BYTES, EventTicket, JobTicket, parse_ticket

log = logging.getLogger(__name__)
IGNORED_SUFFIXES = (".tmp", ".part")
CLAIM_SUFFIX = ".claim"
LATE_FILE_SETTLE_S = 1.0


def is_ticket_name(name: str) -> bool:
    """Top-level `*.json` files that are not hidden or temporary are tickets."""
    return (
        name.endswith(".json") and not name.startswith(".")
        and not name.endswith(IGNORED_SUFFIXES)
    )


def claim_name(ticket_name: str, owner: str) -> str:
    """The name a node renames a ticket to while it handles it."""
    return f".{ticket_name}~{owner.replace('~', '-').replace('/', '-')}{CLAIM_SUFFIX}"


def parse_claim_name(name: str) -> tuple[str, str] | None:
    """(ticket name, owner) of a claim file, or None."""
    if not (name.startswith(".") and name.endswith(CLAIM_SUFFIX) and "~" in name):
        return None
    ticket, _, owner = name[1:-len(CLAIM_SUFFIX)].rpartition("~")
    return (ticket, owner) if is_ticket_name(ticket) else None


def lock_intake(folder: Path, shared: bool) -> int:
    """Hold the intake folder for this daemon's life: nodes of a shared store share it,
    a node with its own store holds it alone. Returns the lock's file descriptor, to be
    kept open; raises RequestRefused naming the conflict."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # no lock file to see
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RequestRefused(
            f"the intake folder {folder} is in use by another outputd; nodes may share an "
            "intake folder only with a shared (PostgreSQL) store") from None
    return fd


def waiting_tickets(folder: Path, arrived_before: float) -> list[tuple[str, float]]:
    """(name, arrival time) of tickets in the intake folder that arrived before the given
    time, oldest first: the daemon is not running, or cannot take them in yet."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    waiting = []
    for entry in entries:
        if not is_ticket_name(entry.name):
            continue
        try:
            arrived = entry.stat(follow_symlinks=False).st_ctime  # the rename into place
        except OSError:
            continue
        if arrived < arrived_before:
            waiting.append((entry.name, arrived))
    return sorted(waiting, key=lambda item: item[1])


@dataclass(frozen=True)
class Outcome:
    """What became of a ticket: accepted, duplicate (no-op), event, rejected or gone."""

    result: str
    job_id: str | None = None
    reason: str = ""


def take_late_file(layout: Layout, job_id: str, relative: str) -> bool:
    """Keep a file an AwaitingData job waits for once it has settled; raise
    IntakeDeferred if it cannot be kept there yet (the job tries again later)."""
    with safefs.folder(layout.intake) as intake_fd:
        try:
            named = intakefiles.open_named(intake_fd, relative)
        except TicketError:
            return False
        if named is None:
            return False
        try:
            if time.time() - named.st.st_mtime < LATE_FILE_SETTLE_S:
                return False
            sha = intakefiles.keep(named, layout.source_file(job_id, relative))
        except (FileNotFoundError, TicketError):
            return False  # another node took it, or it was swapped while being taken
        except OSError as exc:
            raise IntakeDeferred(f"{relative} has arrived but cannot be kept in "
                                 f"{layout.sources_root}: {os_reason(exc)}") from exc
        finally:
            named.close()
        intakefiles.remove_empty_folders(intake_fd, relative)
    _record_sha256(layout, job_id, {relative: sha})
    return True


def _record_sha256(layout: Layout, job_id: str, kept: dict[str, str | None]) -> None:
    """Note the sha256 of each copied file beside the job's sources (`files.sha256`)."""
    kept = {relative: sha for relative, sha in kept.items() if sha is not None}
    if kept:
        with open(layout.sources(job_id) / "files.sha256", "a", encoding="utf-8") as fh:
            fh.writelines(f"{sha}  {relative}\n" for relative, sha in kept.items())


class Intake:
    """Accepts tickets from the intake folder (or `outputd submit`) into the store."""

    def __init__(self, store: Store, layout: Layout, owner: str,
                 owed: OutboxPolicy | None = None) -> None:
        self.store = store
        self.layout = layout
        self.owner = owner
        self.owed = owed  # which notifications a new job owes
        self.claims = store.shared  # other nodes may watch this intake too

    # -- the intake folder ---------------------------------------------------

    def handle(self, path: Path) -> Outcome:
        """Claim (where the intake is shared) and process a ticket in the intake folder."""
        name = path.name
        with safefs.folder(self.layout.intake) as intake_fd:
            claimed = name
            try:
                if self.claims:
                    claimed = claim_name(name, self.owner)
                    safefs.rename_noreplace(intake_fd, name, intake_fd, claimed)
                return self._process_claimed(intake_fd, claimed, name)
            except IntakeDeferred:
                if claimed != name:  # back in the intake for whichever node tries next
                    with contextlib.suppress(OSError):
                        safefs.rename_noreplace(intake_fd, claimed, intake_fd, name)
                raise
            except FileNotFoundError as exc:
                if exc.filename not in (name, claimed):
                    raise
                return Outcome("gone")  # another node took it, or it was withdrawn

    def recover_claims(self, is_gone: Callable[[str], bool], stale_after_s: float,
                       include_own: bool = False) -> None:
        """Put back in the intake folder tickets claimed by a node that stopped, or
        claimed longer ago than `stale_after_s` (a node that died elsewhere): handling a
        ticket takes moments, and accepting one twice is a no-op."""
        cutoff = time.time() - stale_after_s
        with safefs.folder(self.layout.intake) as intake_fd:
            for entry in os.scandir(intake_fd):
                parsed = parse_claim_name(entry.name)
                if parsed is None or (parsed[1] == self.owner and not include_own):
                    continue  # our own claims are in hand, unless this is our start-up
                try:
                    stale = entry.stat(follow_symlinks=False).st_ctime < cutoff  # the claim
                except OSError:
                    continue
                if is_gone(parsed[1]) or stale:
                    with contextlib.suppress(OSError):  # a new ticket of that name stays
                        safefs.rename_noreplace(intake_fd, entry.name, intake_fd, parsed[0])
                        logs.event(log, logging.WARNING, "intake.recovered",
                                   ticket=parsed[0], node=parsed[1])

    def _process_claimed(self, intake_fd: int, claimed: str, name: str) -> Outcome:
        try:
            data = intakefiles.read_ticket(intake_fd, claimed, MAX_TICKET_BYTES)
        except TicketError as exc:  # a FIFO, a symlink, a folder: never read
            return self._reject(intake_fd, claimed, name, b"", str(exc))
        if len(data) > MAX_TICKET_BYTES:  # read no further: a ticket that size is not one
            return self._reject(intake_fd, claimed, name, b"",
                                f"the ticket is larger than a ticket can be; the limit is "
                                f"{MAX_TICKET_BYTES} bytes")
        try:
            ticket = parse_ticket(data)
            caller = Caller.intake(BY_DAEMON, ticket.storefront)
            submit.check(caller, ticket)
            if isinstance(ticket, EventTicket):
                outcome = self._event(ticket, caller)
                os.unlink(claimed, dir_fd=intake_fd)
                return outcome
            outcome = self._job(ticket, data, intake_fd, claimed, caller)
            if outcome.result == "accepted":
                intakefiles.clear_stale_error(intake_fd, name)
            return outcome
        except IntakeDeferred:
            raise
        except (TicketError, OutputdError) as exc:
            return self._reject(intake_fd, claimed, name, data, str(exc))

    # -- shared by intake and `outputd submit` -------------------------------

    def submit(self, data: bytes, caller: Caller, files_fd: int | None = None,
               jobs_only: bool = False) -> Outcome:
        """Accept ticket bytes handed over by `caller`, its files taken from the intake
        folder (or from the folder open as `files_fd`: an upload's staging folder);
        raise TicketError/OutputdError if refused."""
        ticket = parse_ticket(data)
        if jobs_only and isinstance(ticket, EventTicket):
            raise TicketError("this takes a job ticket (outputd.job/1); events have their "
                              "own route")
        submit.check(caller, ticket)
        if isinstance(ticket, EventTicket):
            return self._event(ticket, caller)
        if files_fd is not None:
            return self._job(ticket, data, files_fd, None, caller)
        with safefs.folder(self.layout.intake) as intake_fd:
            return self._job(ticket, data, intake_fd, None, caller)

    def _event(self, ticket: EventTicket, caller: Caller) -> Outcome:
        ids = events.target_jobs(self.store, caller, ticket.job_id, ticket.order_id,
                                 ticket.storefront)
        recorded = events.record_event(self.store, self.layout, caller, ids, ticket.event,
                                       ticket.message, by=ticket.by)
        return Outcome("event", ",".join(recorded.jobs + recorded.already))

    def _job(self, ticket: JobTicket, data: bytes, intake_fd: int | None,
             claimed: str | None, caller: Caller) -> Outcome:
        sha = hashlib.sha256(data).hexdigest()
        with contextlib.ExitStack() as stack:
            present: dict[str, intakefiles.NamedFile | None] = {}
            for f in ticket.files:
                named = None if intake_fd is None else intakefiles.open_named(intake_fd, f.path)
                if named is not None:
                    stack.callback(named.close)
                present[f.path] = named
            if self.store.jobs.find(ticket.job_id) is not None:
                return self._duplicate(ticket, sha, present, intake_fd, claimed)
            try:
                self._keep_sources(ticket, data, present, intake_fd)
            except TicketError:  # a file swapped while it was taken: keep none of it
                self.layout.remove_sources(ticket.job_id)
                raise
            except OSError as exc:
                raise IntakeDeferred(
                    f"job {ticket.job_id}: its files cannot be kept in "
                    f"{self.layout.sources_root}: {os_reason(exc)}", ticket.job_id) from exc
        missing = [f.path for f in ticket.files
                   if not self.layout.source_file(ticket.job_id, f.path).exists()]
        message = "ticket accepted" + (f"; waiting for {', '.join(missing)}" if missing else "")
        try:
            self.store.jobs.add(ticket, sha, states.ORDERED, message, caller.name, time.time(),
                               self.owed)
        except DuplicateJob as exc:  # another node accepted the same id just now
            self._unlink_claim(intake_fd, claimed)
            return Outcome("duplicate", ticket.job_id, str(exc))
        self._unlink_claim(intake_fd, claimed)
        logs.event(log, logging.INFO, "job.accepted", job=ticket.job_id, order=ticket.order_id,
                   status=states.ORDERED, type=ticket.product.type, files=len(ticket.files))
        return Outcome("accepted", ticket.job_id)

    @staticmethod
    def _unlink_claim(intake_fd: int | None, claimed: str | None) -> None:
        if intake_fd is not None and claimed is not None:
            os.unlink(claimed, dir_fd=intake_fd)

    def _keep_sources(self, ticket: JobTicket, data: bytes,
                      present: dict[str, intakefiles.NamedFile | None],
                      intake_fd: int | None) -> None:
        """Keep outputd's own copy of the named files that are here, then the ticket;
        a file kept before a failure is found there on the next try."""
        kept: dict[str, str | None] = {}
        for relative, named in present.items():
            if named is not None:
                kept[relative] = intakefiles.keep(
                    named, self.layout.source_file(ticket.job_id, relative))
                assert intake_fd is not None
                intakefiles.remove_empty_folders(intake_fd, relative)
        ticket_file = self.layout.ticket_file(ticket.job_id)
        ticket_file.parent.mkdir(parents=True, exist_ok=True)
        _record_sha256(self.layout, ticket.job_id, kept)
        temp = ticket_file.with_name(".ticket.json.part")
        temp.write_bytes(data)
        os.replace(temp, ticket_file)

    def _duplicate(self, ticket: JobTicket, sha: str,
                   present: dict[str, intakefiles.NamedFile | None], intake_fd: int | None,
                   claimed: str | None) -> Outcome:
        job = self.store.jobs.get(ticket.job_id)
        if job.ticket_sha256 != sha:
            raise TicketConflict(
                f"job {ticket.job_id} already exists with a different ticket")
        for relative, named in present.items():
            kept = self.layout.source_file(ticket.job_id, relative)
            if named is not None and intakefiles.same_bytes(named, kept):
                named.unlink()
                assert intake_fd is not None
                intakefiles.remove_empty_folders(intake_fd, relative)
        self._unlink_claim(intake_fd, claimed)
        logs.event(log, logging.INFO, "ticket.duplicate", job=ticket.job_id,
                   order=ticket.order_id, status=job.status)
        return Outcome("duplicate", ticket.job_id, "identical ticket; nothing to do")

    def _reject(self, intake_fd: int, claimed: str, name: str, data: bytes,
                reason: str) -> Outcome:
        """Move the ticket and the intake files it names to rejected/, with an error file."""
        target = intakefiles.set_aside(intake_fd, claimed, name, _named_paths(data), reason,
                                       iso(time.time()))
        logs.event(log, logging.ERROR, "ticket.rejected", ticket=name, reason=reason,
                   moved_to=str(self.layout.rejected / target))
        return Outcome("rejected", None, reason)


def _named_paths(data: bytes) -> list[str]:
    """The file paths a (possibly invalid) ticket names, as far as they can be read."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return []
    files = body.get("files") if isinstance(body, dict) else None
    if not isinstance(files, list):
        return []
    paths = []
    for item in files:
        path = item.get("path") if isinstance(item, dict) else None
        if isinstance(path, str):
            with contextlib.suppress(safefs.Refused):
                safefs.relative_parts(path)
                paths.append(path)
    return paths
