"""Small file helpers shared by assembly, intake and the local transport."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

READ_CHUNK = 1 << 20


def os_reason(exc: OSError) -> str:
    """What went wrong, in the words an operator reads."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return str(exc.strerror or exc)


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_fd(fd: int) -> str:
    """The sha256 of an open file's bytes, from its start (its offset is left alone)."""
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, READ_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def private_temp(target: Path) -> Iterator[Path]:
    """A temp path for writing `target`, inside a new folder beside it that only this
    user can enter: a symlink planted at a predictable temp name cannot redirect the
    write. Move it into place before the block ends; the folder is removed after."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part",
                                   dir=target.parent))
    try:
        yield folder / "file"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
