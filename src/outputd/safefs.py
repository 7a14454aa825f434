"""File operations for folders other people can write (the intake, hot folders).

Nothing here follows a symlink or opens a path twice: a folder is walked one component at
a time from an open folder descriptor, a file is opened once and then checked through
its descriptor, and a move never replaces what is already there. What a swap in between
could change is checked afterwards (same device and inode) instead of assumed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import time
from collections.abc import Iterator
from pathlib import PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
NAME_MAX = 255


class Refused(Exception):
    """What was found is not what may be used (a symlink, a FIFO, a path leaving the
    folder); the message says what, in an operator's words."""


def kind(mode: int) -> str:
    """What a file is, for a message: `a symlink`, `a FIFO`, `a folder`, …"""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a regular file"


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats are of one file (device and inode)."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def open_folder(path: str | os.PathLike[str], dir_fd: int | None = None) -> int:
    """Open a folder without following a symlink at its last component."""
    return os.open(path, _DIR_FLAGS, dir_fd=dir_fd)


@contextlib.contextmanager
def folder(path: str | os.PathLike[str], dir_fd: int | None = None) -> Iterator[int]:
    """A folder opened without following a link at its last part, closed after."""
    fd = open_folder(path, dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def lstat_at(dir_fd: int | None, name: str) -> os.stat_result | None:
    """The stat of `name` in a folder without following it, or None if absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def relative_parts(relative: str) -> tuple[str, ...]:
    """The components of a path that must stay inside its folder; Refused otherwise."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts or "\x00" in relative:
        raise Refused(f"{relative} leaves the intake folder")
    return pure.parts


def walk(root_fd: int, relative: str, create: bool = False, mode: int = 0o750) -> int | None:
    """An open descriptor of the folder holding `relative`'s last component, reached
    from `root_fd` without following a symlink; None if a folder on the way is missing
    (and not to be created). The caller closes it."""
    parts = relative_parts(relative)
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            try:
                child = open_folder(part, fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
                child = _open_subfolder(fd, part, relative)
            except OSError as exc:
                raise _refusal(fd, part, relative, exc) from None
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise


def _open_subfolder(fd: int, part: str, relative: str) -> int:
    try:
        return open_folder(part, fd)
    except OSError as exc:
        raise _refusal(fd, part, relative, exc) from None


def _refusal(fd: int, part: str, relative: str, exc: OSError) -> Refused:
    st = lstat_at(fd, part)
    if st is not None and stat.S_ISLNK(st.st_mode):
        return Refused(f"{relative} goes through a symlink ({part})")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        return Refused(f"{relative}: {part} is not a folder")
    return Refused(f"{relative}: {part} cannot be opened: {exc.strerror or exc}")


def open_regular(dir_fd: int | None, name: str) -> tuple[int, os.stat_result]:
    """Open `name` for reading if it is a regular file: never through a symlink, never
    blocking on a FIFO. Raises Refused naming what it is instead, FileNotFoundError if
    it is not there."""
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink (whatever is there now)
            raise Refused(f"{name} is a symlink, not a regular file") from None
        if exc.errno != errno.ENXIO:  # ENXIO: a socket (or a device without a driver)
            raise
        st = lstat_at(dir_fd, name)
        what = kind(st.st_mode) if st is not None else "a socket"
        raise Refused(f"{name} is {what}, not a regular file") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused(f"{name} is {kind(st.st_mode)}, not a regular file")
    os.set_blocking(fd, True)
    return fd, st


def read_at_most(fd: int, limit: int) -> bytes:
    """Up to `limit` + 1 bytes: one more than allowed tells the caller it is too long."""
    chunks, left = [], limit + 1
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def create_new(dir_fd: int, name: str, mode: int = 0o640) -> int:
    """Create `name` for writing (and reading back); it must not exist: a symlink there
    is not followed but refused (FileExistsError)."""
    return os.open(name, _CREATE_FLAGS, mode, dir_fd=dir_fd)


def _libc_renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                         ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _libc_renameat2()


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Move `src` to `dst` (each relative to its folder descriptor); FileExistsError if
    `dst` exists. renameat2(RENAME_NOREPLACE) where the kernel and file system have it,
    else a hard link and an unlink, which never replace either."""
    global _renameat2
    if _renameat2 is not None:
        result = _renameat2(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst),  # type: ignore[operator]
                            _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code), src, None, dst)
    os.link(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=src_fd)


def free_name(dir_fd: int, name: str, suffix_room: int = 0) -> str:
    """`name`, or `name.1`, `name.2`, … where an earlier file holds it; shortened (with
    its ending kept) so that it and `suffix_room` more bytes fit in a file name."""
    n = 0
    while True:
        tail = f".{n}" if n else ""
        candidate = fit_name(name, NAME_MAX - suffix_room - len(tail)) + tail
        if lstat_at(dir_fd, candidate) is None:
            return candidate
        n += 1


def fit_name(name: str, limit: int = NAME_MAX, keep: str = "") -> str:
    """`name` cut to at most `limit` bytes of UTF-8, on a character boundary, keeping the
    ending `keep` (e.g. ".pdf") when `name` has it."""
    if len(name.encode()) <= limit:
        return name
    ending = keep if keep and name.endswith(keep) else ""
    stem = name[: len(name) - len(ending)] if ending else name
    room = limit - len(ending.encode())
    cut = stem.encode()[:room].decode("utf-8", "ignore")
    return cut + ending


def own_folder(parent_fd: int, name: str, mode: int) -> tuple[int, str | None]:
    """An open descriptor of `name` in the parent: a real folder of outputd's user, made
    if missing, made anew if something else has taken its name (a symlink, a file, a
    folder of another user). Returns it with the name the impostor was moved aside to,
    or None."""
    st = lstat_at(parent_fd, name)
    aside = None
    if st is not None and not (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()):
        aside = free_name(parent_fd, f".{name.lstrip('.')}.tampered-{int(time.time())}")
        rename_noreplace(parent_fd, name, parent_fd, aside)
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, mode, dir_fd=parent_fd)
    fd = open_folder(name, parent_fd)
    if os.fstat(fd).st_uid != os.geteuid():  # it was swapped in between: refuse to use it
        os.close(fd)
        raise OSError(errno.EPERM, f"the folder {name} is not outputd's own", name)
    return fd, aside
