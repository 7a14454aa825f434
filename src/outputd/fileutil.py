"""Small file helpers shared by assembly, intake and the local transport."""

from __future__ import annotations

import errno
import hashlib
import os
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


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
