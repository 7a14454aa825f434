"""A hot folder on a local or mounted file system."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from pathlib import Path

from outputd.config import LocalHotFolder
from outputd.errors import DeliveryError, PermanentDeliveryError
from outputd.fileutil import fsync_dir, os_reason, sha256_file
from outputd.transports.base import CopyControl, Transport, is_part_name, part_name

CHUNK = 8 << 20
_PERMANENT = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}


def copy_fd(src: int, dst: int, size: int, control: CopyControl | None) -> None:
    """Copy `size` bytes in kernel space (copy_file_range, else sendfile)."""
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


def _reason(exc: OSError, what: str) -> DeliveryError:
    text = f"{what}: {os_reason(exc)}"
    return PermanentDeliveryError(text) if exc.errno in _PERMANENT else DeliveryError(text)


class LocalTransport(Transport):
    """Writes `.<name>.part`, fsyncs it, checks its size, renames, fsyncs the folder."""

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
        if _holds(final, size, sha256):
            return str(final)
        temp = self.folder / part_name(final_name)
        try:
            with open(source, "rb") as src:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    copy_fd(src.fileno(), fd, size, control)
                    os.fsync(fd)
                    written = os.fstat(fd).st_size
                finally:
                    os.close(fd)
            if written != size:
                raise DeliveryError(f"wrote {written} bytes to {temp}, expected {size}")
            os.replace(temp, final)
            fsync_dir(self.folder)
        except OSError as exc:
            _discard(temp)
            raise _reason(exc, f"cannot write {final}") from exc
        except BaseException:
            _discard(temp)
            raise
        return str(final)

    def remove(self, final_name: str) -> None:
        try:
            (self.folder / final_name).unlink(missing_ok=True)
        except OSError as exc:
            raise _reason(exc, f"cannot remove {self.folder / final_name}") from exc

    def probe(self) -> None:
        self._ready()
        probe = self.folder / part_name(f"outputd-probe-{os.getpid()}")
        final = self.folder / f".outputd-probe-{os.getpid()}"
        try:
            probe.write_bytes(b"outputd probe\n")
            os.replace(probe, final)
            final.unlink()
        except OSError as exc:
            _discard(probe)
            _discard(final)
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


def _holds(final: Path, size: int, sha256: str) -> bool:
    try:
        if final.stat().st_size != size:
            return False
        return sha256_file(final) == sha256
    except OSError:
        return False


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
