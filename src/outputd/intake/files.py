"""The files of the intake folder, which submitters write: read a ticket, take a named
file into outputd's own sources, set a rejected ticket aside.

Every path below the intake folder is walked with folder descriptors (safefs), so a
symlink, a FIFO or a swap between a check and a move cannot make outputd read, keep or
overwrite a file the ticket did not name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from outputd import logs, safefs
from outputd.errors import TicketError
from outputd.fileutil import sha256_fd, sha256_file

log = logging.getLogger(__name__)
REJECTED = "rejected"
ERROR_SUFFIX = ".error.json"
CHUNK = 1 << 20


def read_ticket(intake_fd: int | None, name: str, limit: int) -> bytes:
    """A ticket's bytes, at most `limit` + 1; TicketError if it is not a regular file."""
    try:
        fd, _ = safefs.open_regular(intake_fd, name)
    except safefs.Refused as exc:  # "<name> is a FIFO, not a regular file"
        raise TicketError("the ticket " + str(exc).removeprefix(f"{name} ")) from None
    try:
        return safefs.read_at_most(fd, limit)
    finally:
        os.close(fd)


@dataclass
class NamedFile:
    """A file a ticket names, open and checked: a regular file inside the intake."""

    relative: str
    folder_fd: int
    name: str
    fd: int
    st: os.stat_result

    def close(self) -> None:
        for fd in (self.fd, self.folder_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def still_named(self) -> bool:
        """Whether the intake name still leads to the file that was opened."""
        now = safefs.lstat_at(self.folder_fd, self.name)
        return now is not None and safefs.same_file(now, self.st)

    def unlink(self) -> None:
        """Remove the intake name, if it still is this file (never what replaced it). A
        submitter's folder that outputd may not write keeps it: said once in the log,
        since outputd has its own copy and the job goes on."""
        if not self.still_named():
            return
        try:
            os.unlink(self.name, dir_fd=self.folder_fd)
        except FileNotFoundError:
            pass
        except PermissionError:
            logs.event(log, logging.WARNING, "intake.left_behind", file=self.relative,
                       reason="outputd may not remove files from its folder (make the "
                       "submitter's folders group-writable: umask 0002)")


def open_named(intake_fd: int, relative: str) -> NamedFile | None:
    """Open a named file, or None if it is not there yet; TicketError if it is a
    symlink, not a regular file, or lies outside the intake folder."""
    try:
        folder_fd = safefs.walk(intake_fd, relative)
    except safefs.Refused as exc:
        raise TicketError(f"file {exc}") from None
    if folder_fd is None:
        return None
    name = safefs.relative_parts(relative)[-1]
    try:
        fd, st = safefs.open_regular(folder_fd, name)
    except FileNotFoundError:
        os.close(folder_fd)
        return None
    except safefs.Refused:
        os.close(folder_fd)
        raise TicketError(f"file {relative} is not a regular file (a symlink, a FIFO, a "
                          "device or a folder)") from None
    except BaseException:
        os.close(folder_fd)
        raise
    return NamedFile(relative, folder_fd, name, fd, st)


def keep(named: NamedFile, target: Path) -> str | None:
    """Make `target` outputd's own copy of a named file and remove it from the intake.
    A file owned by outputd's user that no group or other user may write is moved: no
    one else can change it, through any link or handle, so its sha256 is taken when its
    output is made (returns None; hashing it here too cost a pass over every file). Any
    other file is copied from the descriptor that was checked, hashed on the way (its
    sha256 is returned), so a submitter who keeps a link or a handle to its file cannot
    change what is kept."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if named.st.st_uid == os.geteuid() and not named.st.st_mode & 0o022:
        with safefs.folder(target.parent) as target_fd:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target.name, dir_fd=target_fd)  # a part kept by an earlier try
            try:
                safefs.rename_noreplace(named.folder_fd, named.name, target_fd, target.name)
            except OSError as exc:  # another file system, or the name moved since
                if exc.errno not in (errno.EXDEV, errno.ENOENT):
                    raise
            else:
                _check_moved(named, target_fd, target.name)
                return None
    return _copy(named, target)


def _check_moved(named: NamedFile, target_fd: int, name: str) -> None:
    """What the rename moved must be what was checked; anything else (swapped in since)
    goes back where it came from, and the ticket is refused."""
    moved = safefs.lstat_at(target_fd, name)
    if moved is not None and safefs.same_file(moved, named.st):
        return
    with contextlib.suppress(OSError):
        try:
            safefs.rename_noreplace(target_fd, name, named.folder_fd, named.name)
        except OSError:
            os.unlink(name, dir_fd=target_fd)
    raise TicketError(f"file {named.relative} was replaced while it was being accepted")


def _copy(named: NamedFile, target: Path) -> str:
    digest = hashlib.sha256()
    temp = target.with_name(f".{target.name}.part")
    try:
        out = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
        try:
            os.lseek(named.fd, 0, os.SEEK_SET)
            while chunk := os.read(named.fd, CHUNK):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            os.fsync(out)
        finally:
            os.close(out)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # a part copy would hold the space it took
            temp.unlink()
        raise
    named.unlink()
    return digest.hexdigest()


def same_bytes(named: NamedFile, kept: Path) -> bool:
    """Whether a named file holds the bytes outputd already keeps."""
    try:
        if os.stat(kept).st_size != named.st.st_size:
            return False
        return sha256_file(kept) == sha256_fd(named.fd)
    except OSError:
        return False


def remove_empty_folders(intake_fd: int, relative: str) -> None:
    """Remove the folders of `relative` below the intake, deepest first, while they are
    empty (reached by descriptor: a folder swapped for a symlink is left alone)."""
    parts = safefs.relative_parts(relative)[:-1]
    fds = [os.dup(intake_fd)]
    try:
        for part in parts:
            fds.append(safefs.open_folder(part, fds[-1]))
    except OSError:
        parts = parts[: len(fds) - 1]
    try:
        for index in range(len(parts) - 1, -1, -1):
            try:
                os.rmdir(parts[index], dir_fd=fds[index])
            except OSError:
                return
    finally:
        for fd in fds:
            os.close(fd)


def rejected_folder(intake_fd: int) -> int:
    """An open descriptor of `rejected/`, outputd's own real folder: made if it is
    missing, made anew (and said so) if something else has taken its name."""
    found = safefs.lstat_at(intake_fd, REJECTED)
    fd, aside = safefs.own_folder(intake_fd, REJECTED, 0o750)
    if aside is not None and found is not None:
        logs.event(log, logging.WARNING, "intake.rejected_replaced",
                   found=safefs.kind(found.st_mode), moved_to=aside,
                   then="a new rejected folder is made")
    return fd


def clear_stale_error(intake_fd: int, ticket_name: str) -> None:
    """Remove `rejected/<ticket>.error.json` once a ticket of that name is accepted and
    the rejected ticket itself is gone from there (fixed and dropped again)."""
    st = safefs.lstat_at(intake_fd, REJECTED)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return
    with contextlib.suppress(OSError), safefs.folder(REJECTED, intake_fd) as rejected_fd:
        error = ticket_name + ERROR_SUFFIX
        if safefs.lstat_at(rejected_fd, error) and not safefs.lstat_at(rejected_fd,
                                                                      ticket_name):
            os.unlink(error, dir_fd=rejected_fd)


def set_aside(intake_fd: int, ticket_name: str, display_name: str, named: list[str],
              reason: str, at: str | None) -> str:
    """Move a ticket (by its current name) and the intake files it names to
    `rejected/`, beside an error file; return the ticket's name there."""
    rejected_fd = rejected_folder(intake_fd)
    try:
        target = safefs.free_name(rejected_fd, display_name, len(ERROR_SUFFIX))
        safefs.rename_noreplace(intake_fd, ticket_name, rejected_fd, target)
        for relative in named:
            with contextlib.suppress(OSError, safefs.Refused):
                _move_aside(intake_fd, rejected_fd, relative)
        error = {"ticket": display_name, "error": reason, "at": at}
        # written aside, then renamed: whoever watches rejected/ never reads half of it
        temp = f".{secrets.token_hex(6)}{ERROR_SUFFIX}.part"
        fd = safefs.create_new(rejected_fd, temp)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(error, indent=2, ensure_ascii=False) + "\n")
            safefs.rename_noreplace(rejected_fd, temp, rejected_fd, target + ERROR_SUFFIX)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=rejected_fd)
            raise
        return target
    finally:
        os.close(rejected_fd)


def _move_aside(intake_fd: int, rejected_fd: int, relative: str) -> None:
    source_fd = safefs.walk(intake_fd, relative)
    if source_fd is None:
        return
    try:
        name = safefs.relative_parts(relative)[-1]
        if safefs.lstat_at(source_fd, name) is None:
            return
        target_fd = safefs.walk(rejected_fd, relative, create=True)
        assert target_fd is not None
        try:
            safefs.rename_noreplace(source_fd, name, target_fd,
                                    safefs.free_name(target_fd, name))
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
    remove_empty_folders(intake_fd, relative)
