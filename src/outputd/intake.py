"""Intake: accept a ticket and the files it names, or set it aside with its reason.

When several nodes watch one shared intake (a PostgreSQL store), a ticket is claimed by
renaming it to a dot-name in the intake folder, so that exactly one of them handles it.
A node with its own store (SQLite) holds the intake folder alone, under a lock, and
handles tickets where they lie: the rename would be two more events for the folder
watcher to pair per ticket, its largest cost in a burst.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from outputd import commands, logs, states
from outputd.errors import IntakeDeferred, OutputdError, RequestRefused, TicketError
from outputd.fileutil import os_reason
from outputd.layout import Layout
from outputd.model import BY_DAEMON, iso
from outputd.store import DuplicateJob, SqlStore
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


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def check_named_file(intake: Path, relative: str) -> Path | None:
    """The intake path of a named file if it is there; raise TicketError if it is a
    symlink, not a regular file, or lies outside the intake folder."""
    path = intake
    parts = PurePosixPath(relative).parts
    for index, part in enumerate(parts):
        path = path / part
        st = _lstat(path)
        if st is None:
            return None
        if stat.S_ISLNK(st.st_mode):
            raise TicketError(f"file {relative} goes through a symlink ({path.name})")
        last = index == len(parts) - 1
        if last and not stat.S_ISREG(st.st_mode):
            raise TicketError(f"file {relative} is not a regular file")
        if not last and not stat.S_ISDIR(st.st_mode):
            raise TicketError(f"file {relative}: {path.name} is not a folder")
    resolved = path.resolve()
    if intake.resolve() not in resolved.parents:
        raise TicketError(f"file {relative} leaves the intake folder")
    return path


def move_file(source: Path, target: Path) -> None:
    """Rename `source` to `target`; across file systems, copy, fsync, then unlink."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(source, target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temp = target.with_name(f".{target.name}.part")
    try:
        shutil.copyfile(source, temp)
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # a part copy would hold the space it took
            temp.unlink()
        raise
    source.unlink()


def remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove folders above `path` up to (not including) `stop` while they are empty."""
    folder = path.parent
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def take_late_file(layout: Layout, relative: str, target: Path) -> bool:
    """Move a file an AwaitingData job waits for into its sources once it has settled;
    raise IntakeDeferred if it cannot be kept there yet (the job tries again later)."""
    try:
        path = check_named_file(layout.intake, relative)
    except TicketError:
        return False
    if path is None:
        return False
    st = _lstat(path)
    if st is None or time.time() - st.st_mtime < LATE_FILE_SETTLE_S:
        return False
    try:
        move_file(path, target)
    except FileNotFoundError:
        return False  # another node took it
    except OSError as exc:
        raise IntakeDeferred(f"{relative} has arrived but cannot be kept in "
                             f"{layout.sources_root}: {os_reason(exc)}") from exc
    remove_empty_parents(path, layout.intake)
    return True


class Intake:
    """Accepts tickets from the intake folder (or `outputd submit`) into the store."""

    def __init__(self, store: SqlStore, layout: Layout, owner: str) -> None:
        self.store = store
        self.layout = layout
        self.owner = owner
        self.claims = store.shared  # other nodes may watch this intake too

    # -- the intake folder ---------------------------------------------------

    def handle(self, path: Path) -> Outcome:
        """Claim (where the intake is shared) and process a ticket in the intake folder."""
        claimed = path
        try:
            if self.claims:
                claimed = path.with_name(claim_name(path.name, self.owner))
                os.rename(path, claimed)
            return self._process_claimed(claimed, path.name)
        except IntakeDeferred:
            if claimed != path:  # back in the intake for whichever node tries next
                with contextlib.suppress(OSError):
                    os.rename(claimed, path)
            raise
        except FileNotFoundError as exc:
            if exc.filename not in (str(path), str(claimed)):
                raise
            return Outcome("gone")  # another node took it, or it was withdrawn

    def recover_claims(self, is_gone: Callable[[str], bool], stale_after_s: float,
                       include_own: bool = False) -> None:
        """Put back in the intake folder tickets claimed by a node that stopped, or
        claimed longer ago than `stale_after_s` (a node that died elsewhere): handling a
        ticket takes moments, and accepting one twice is a no-op."""
        cutoff = time.time() - stale_after_s
        for entry in os.scandir(self.layout.intake):
            parsed = parse_claim_name(entry.name)
            if parsed is None or (parsed[1] == self.owner and not include_own):
                continue  # our own claims are in hand, unless this is our start-up
            try:
                stale = entry.stat(follow_symlinks=False).st_ctime < cutoff  # ctime: the claim
            except OSError:
                continue
            if is_gone(parsed[1]) or stale:
                with contextlib.suppress(OSError):
                    os.rename(entry.path, self.layout.intake / parsed[0])
                    logs.event(log, logging.WARNING, "intake.recovered", ticket=parsed[0],
                               node=parsed[1])

    def _process_claimed(self, claimed: Path, name: str) -> Outcome:
        size = claimed.stat().st_size
        if size > MAX_TICKET_BYTES:  # refused unread: a ticket that size is not one
            return self._reject(claimed, name, b"", f"the ticket is {size} bytes; the limit "
                                f"is {MAX_TICKET_BYTES}")
        data = claimed.read_bytes()
        try:
            ticket = parse_ticket(data)
            if isinstance(ticket, EventTicket):
                outcome = self._event(ticket)
                claimed.unlink()
                return outcome
            return self._job(ticket, data, claimed)
        except IntakeDeferred:
            raise
        except (TicketError, OutputdError) as exc:
            return self._reject(claimed, name, data, str(exc))

    # -- shared by intake and `outputd submit` -------------------------------

    def submit(self, data: bytes, by: str) -> Outcome:
        """Accept ticket bytes from the CLI; raise TicketError/OutputdError if refused."""
        ticket = parse_ticket(data)
        if isinstance(ticket, EventTicket):
            return self._event(ticket, by)
        return self._job(ticket, data, None, by)

    def _event(self, ticket: EventTicket, by: str = BY_DAEMON) -> Outcome:
        ids = commands.target_jobs(self.store, ticket.job_id, ticket.order_id)
        recorded = commands.record_event(self.store, self.layout, ids, ticket.event,
                                         ticket.by or by, ticket.message)
        return Outcome("event", ",".join(recorded))

    def _job(self, ticket: JobTicket, data: bytes, claimed: Path | None,
             by: str = BY_DAEMON) -> Outcome:
        intake = self.layout.intake
        sha = hashlib.sha256(data).hexdigest()
        present = {f.path: check_named_file(intake, f.path) for f in ticket.files}
        existing = self.store.find_job(ticket.job_id)
        if existing is not None:
            return self._duplicate(ticket, sha, present, claimed)
        try:
            self._keep_sources(ticket, data, present)
        except OSError as exc:
            raise IntakeDeferred(
                f"job {ticket.job_id}: its files cannot be kept in "
                f"{self.layout.sources_root}: {os_reason(exc)}", ticket.job_id) from exc
        missing = [f.path for f in ticket.files
                   if not self.layout.source_file(ticket.job_id, f.path).exists()]
        message = "ticket accepted" + (f"; waiting for {', '.join(missing)}" if missing else "")
        try:
            self.store.add_job(ticket, sha, states.ORDERED, message, by, time.time())
        except DuplicateJob as exc:  # another node accepted the same id just now
            if claimed is not None:
                claimed.unlink()
            return Outcome("duplicate", ticket.job_id, str(exc))
        if claimed is not None:
            claimed.unlink()
        logs.event(log, logging.INFO, "job.accepted", job=ticket.job_id, order=ticket.order_id,
                   status=states.ORDERED, type=ticket.product.type, files=len(ticket.files))
        return Outcome("accepted", ticket.job_id)

    def _keep_sources(self, ticket: JobTicket, data: bytes,
                      present: dict[str, Path | None]) -> None:
        """Move the named files that are here, then the ticket, into the job's sources;
        a file moved before a failure is found there on the next try."""
        for relative, path in present.items():
            if path is not None:
                move_file(path, self.layout.source_file(ticket.job_id, relative))
                remove_empty_parents(path, self.layout.intake)
        ticket_file = self.layout.ticket_file(ticket.job_id)
        ticket_file.parent.mkdir(parents=True, exist_ok=True)
        temp = ticket_file.with_name(".ticket.json.part")
        temp.write_bytes(data)
        os.replace(temp, ticket_file)

    def _duplicate(self, ticket: JobTicket, sha: str, present: dict[str, Path | None],
                   claimed: Path | None) -> Outcome:
        job = self.store.get_job(ticket.job_id)
        if job.ticket_sha256 != sha:
            raise TicketError(f"job {ticket.job_id} already exists with a different ticket")
        for relative, path in present.items():
            kept = self.layout.source_file(ticket.job_id, relative)
            if path is not None and kept.exists() and _same_bytes(path, kept):
                path.unlink()
                remove_empty_parents(path, self.layout.intake)
        if claimed is not None:
            claimed.unlink()
        logs.event(log, logging.INFO, "ticket.duplicate", job=ticket.job_id,
                   order=ticket.order_id, status=job.status)
        return Outcome("duplicate", ticket.job_id, "identical ticket; nothing to do")

    def _reject(self, claimed: Path, name: str, data: bytes, reason: str) -> Outcome:
        """Move the ticket and the intake files it names to rejected/, with an error file."""
        rejected = self.layout.rejected
        target = _free_name(rejected / name)
        move_file(claimed, target)
        for relative in _named_paths(data):
            with contextlib.suppress(TicketError, OSError):
                path = check_named_file(self.layout.intake, relative)
                if path is not None:
                    move_file(path, rejected / relative)
                    remove_empty_parents(path, self.layout.intake)
        error = {"ticket": name, "error": reason, "at": iso(time.time())}
        error_file = target.with_name(target.name + ".error.json")
        error_file.write_text(json.dumps(error, indent=2, ensure_ascii=False) + "\n")
        logs.event(log, logging.ERROR, "ticket.rejected", ticket=name, reason=reason,
                   moved_to=str(target))
        return Outcome("rejected", None, reason)


def _free_name(path: Path) -> Path:
    """`path`, or `path.1`, `path.2`, … if an earlier rejection holds the name."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


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
        if isinstance(path, str) and path and "\x00" not in path:
            pure = PurePosixPath(path)
            if not pure.is_absolute() and ".." not in pure.parts:
                paths.append(str(pure))
    return paths


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True
