"""A hot folder on a local or mounted file system."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from outputd import safefs
from outputd.config import LocalHotFolder
from outputd.errors import DeliveryError, NameTaken, PermanentDeliveryError
from outputd.fileutil import os_reason, sha256_fd
from outputd.transports.base import CopyControl, Transport, is_part_name, part_name

CHUNK = 8 << 20
HASH_ALONGSIDE_BYTES = 32 << 20  # from this size on, the sha256 is taken during the copy
_PERMANENT = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS}  # link(2) where there are none


def copy_fd(src: int, dst: int, size: int, control: CopyControl | None,
            copied: Callable[[int], None] | None = None) -> None:
    """Copy `size` bytes in kernel space (copy_file_range, else sendfile); `copied` is
    told how many bytes are in `dst` after each chunk."""
    copy = getattr(os, "copy_file_range", None)
    done = 0
    while done < size:
        if control is not None:
            control.check()
        want = min(CHUNK, size - done)
        try:
            n = copy(src, dst, want) if copy else os.sendfile(dst, src, None, want)
        except OSError as exc:
            if copy and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                copy = None
                n = os.sendfile(dst, src, None, want)
            else:
                raise
        if n == 0:
            raise DeliveryError(f"the source ended after {done} of {size} bytes")
        done += n
        if copied is not None:
            copied(done)


def _reason(exc: OSError, what: str) -> DeliveryError:
    text = f"{what}: {os_reason(exc)}"
    return PermanentDeliveryError(text) if exc.errno in _PERMANENT else DeliveryError(text)


class LocalTransport(Transport):
    """Writes `.<name>.part`, fsyncs it, checks its size and sha256, gives it the final
    name only where that name is free (never replacing a file there), fsyncs the folder."""

    def __init__(self, name: str, config: LocalHotFolder) -> None:
        super().__init__(name)
        self.folder = Path(config.path)
        self.mount = config.mount

    def _ready(self) -> None:
        if self.mount is not None and not os.path.ismount(self.mount):
            raise DeliveryError(f"hot folder {self.folder} is not usable: its share "
                                f"{self.mount} is not mounted")
        if self.folder.is_dir():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise PermanentDeliveryError(
                f"hot folder {self.folder} is not usable: it is not a folder") from None
        except OSError as exc:
            raise _reason(exc, f"hot folder {self.folder} is not usable") from exc

    def put(
        self, source: Path, final_name: str, *, size: int, sha256: str,
        control: CopyControl | None = None,
    ) -> str:
        self._ready()
        final = self.folder / final_name
        temp = part_name(final_name)
        try:
            with safefs.folder(self.folder) as dir_fd:
                if _holds(dir_fd, final_name, size, sha256):
                    return str(final)  # this delivery landed before a stop
                if safefs.lstat_at(dir_fd, final_name) is not None:
                    raise NameTaken(self.name, str(final))
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp, dir_fd=dir_fd)  # a stale temp of outputd's naming
                fd = safefs.create_new(dir_fd, temp, 0o644)
                try:
                    try:
                        _write(source, fd, size, sha256, control)
                        placed = _place(dir_fd, temp, final_name)
                    finally:
                        _discard(dir_fd, temp, os.fstat(fd))
                    if placed:
                        _check_renamed(dir_fd, final_name, os.fstat(fd))
                    elif not _holds(dir_fd, final_name, size, sha256):
                        raise NameTaken(self.name, str(final))  # came while it was written
                finally:
                    os.close(fd)
                os.fsync(dir_fd)
        except FileExistsError as exc:
            raise DeliveryError(f"cannot write {final}: {temp} was made again by someone "
                                "else while outputd wrote it") from exc
        except OSError as exc:
            raise _reason(exc, f"cannot write {final}") from exc
        return str(final)

    def _recorded(self, path: str) -> tuple[Path, str]:
        """The folder and name of a recorded path (absolute: where `put` wrote it, under
        whatever path the hot folder had then)."""
        recorded = Path(path)
        if not recorded.is_absolute() or recorded.name in ("", ".", ".."):
            raise PermanentDeliveryError(f"{path} is not a file path of a local hot folder")
        if self.mount is not None and recorded.is_relative_to(self.mount) \
                and not os.path.ismount(self.mount):
            raise DeliveryError(f"cannot reach {path}: its share {self.mount} is not mounted")
        return recorded.parent, recorded.name

    def remove(self, path: str) -> None:
        folder, name = self._recorded(path)
        try:
            with safefs.folder(folder) as dir_fd, contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _reason(exc, f"cannot remove {path}") from exc

    def holds(self, path: str, size: int, sha256: str) -> bool:
        folder, name = self._recorded(path)
        try:
            with safefs.folder(folder) as dir_fd:
                return _holds(dir_fd, name, size, sha256)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _reason(exc, f"cannot read {path}") from exc

    def withdraw(self, path: str, sha256: str | None) -> bool:
        folder, name = self._recorded(path)
        try:
            with safefs.folder(folder) as dir_fd:
                try:
                    fd, st = safefs.open_regular(dir_fd, name)
                except (FileNotFoundError, safefs.Refused):
                    return False
                try:
                    if sha256 is not None and sha256_fd(fd) != sha256:
                        return False
                finally:
                    os.close(fd)
                now = safefs.lstat_at(dir_fd, name)
                if now is None or not safefs.same_file(now, st):
                    return False  # taken (or replaced) just now
                os.unlink(name, dir_fd=dir_fd)
                os.fsync(dir_fd)
                return True
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _reason(exc, f"cannot withdraw {path}") from exc

    def probe(self) -> None:
        self._ready()
        probe = part_name(f"outputd-probe-{os.getpid()}")
        final = f".outputd-probe-{os.getpid()}"
        try:
            with safefs.folder(self.folder) as dir_fd:
                for name in (probe, final):  # left by an earlier probe of this pid
                    _discard(dir_fd, name)
                try:
                    fd = safefs.create_new(dir_fd, probe, 0o644)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(b"outputd probe\n")
                    os.replace(probe, final, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                finally:
                    _discard(dir_fd, probe)
                    _discard(dir_fd, final)
        except OSError as exc:
            raise _reason(exc, f"hot folder {self.folder} failed the probe") from exc

    def sweep(self, older_than_s: float) -> list[str]:
        swept: list[str] = []
        cutoff = time.time() - older_than_s
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return swept
        for entry in entries:
            if not is_part_name(entry.name):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    swept.append(entry.name)
        return swept


def _write(source: Path, fd: int, size: int, sha256: str,
           control: CopyControl | None) -> None:
    """Copy the output into the temp file and check what was written: its size, then
    its sha256 against the one recorded when the output was made."""
    with open(source, "rb") as src:
        if size < HASH_ALONGSIDE_BYTES:
            copy_fd(src.fileno(), fd, size, control)
            digest = sha256_fd(fd)
        else:
            digest = _copy_hashing(src.fileno(), fd, size, control)
    os.fsync(fd)
    written = os.fstat(fd).st_size
    if written != size:
        raise DeliveryError(f"wrote {written} bytes, expected {size}")
    if digest != sha256:
        raise PermanentDeliveryError(
            f"the bytes written are not the output that was made (its sha256 is not "
            f"{sha256[:12]}…): {source} changed since; not delivered")


def _copy_hashing(src: int, dst: int, size: int, control: CopyControl | None) -> str:
    """Copy in kernel space while a second thread hashes what has been written so far
    (read back from the temp file's pages): on a large file the two overlap, where one
    after the other they took as long again (hashlib and copy_file_range both release
    the GIL)."""
    digest = hashlib.sha256()
    written: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    failed: list[OSError] = []

    def hash_written() -> None:
        offset = 0
        while (upto := written.get()) is not None:
            try:
                while offset < upto:
                    chunk = os.pread(dst, min(CHUNK, upto - offset), offset)
                    if not chunk:
                        return
                    digest.update(chunk)
                    offset += len(chunk)
            except OSError as exc:
                failed.append(exc)
                return

    hasher = threading.Thread(target=hash_written, name="delivery-hash", daemon=True)
    hasher.start()
    try:
        copy_fd(src, dst, size, control, written.put)
    finally:
        written.put(None)
        hasher.join()
    if failed:
        raise failed[0]
    return digest.hexdigest()


def _place(dir_fd: int, temp: str, final_name: str) -> bool:
    """Give the temp file its final name unless that name is taken (False then): a
    hard link, which never replaces what is there, then the temp name goes. On a file
    system without hard links, a look before a rename, as OpenSSH's server does."""
    try:
        os.link(temp, final_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if safefs.lstat_at(dir_fd, final_name) is not None:
            return False
        os.rename(temp, final_name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    return True


def _check_renamed(dir_fd: int, final_name: str, written: os.stat_result) -> None:
    """The final name must be the temp file outputd wrote, not one swapped in for it."""
    now = safefs.lstat_at(dir_fd, final_name)
    if now is not None and safefs.same_file(now, written):
        return
    _discard(dir_fd, final_name)
    raise DeliveryError(f"{final_name}: the temp file was replaced by someone else "
                        "before its rename; removed, to be written again")


def _holds(dir_fd: int, final_name: str, size: int, sha256: str) -> bool:
    """Whether the final name is a regular file holding these bytes already."""
    try:
        fd, st = safefs.open_regular(dir_fd, final_name)
    except (OSError, safefs.Refused):
        return False
    try:
        return st.st_size == size and sha256_fd(fd) == sha256
    finally:
        os.close(fd)


def _discard(dir_fd: int, name: str, only: os.stat_result | None = None) -> None:
    """Remove `name` (only if it is the file `only`, when given)."""
    with contextlib.suppress(OSError):
        st = safefs.lstat_at(dir_fd, name)
        if st is not None and (only is None or safefs.same_file(st, only)):
            os.unlink(name, dir_fd=dir_fd)
