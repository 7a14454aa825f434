"""What every kind of hot folder promises, run against each: a local folder and a real
OpenSSH server on loopback (and, for the promises that need no file system, the
in-memory transport). Kind-specific behaviour is tested beside each transport."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from outputd.config import LocalHotFolder, SftpHotFolder
from outputd.errors import CopyAborted, NameTaken, PermanentDeliveryError
from outputd.transports.base import CopyControl, Transport
from outputd.transports.local import LocalTransport
from outputd.transports.memory import MemoryTransport
from outputd.transports.sftp import SftpTransport
from tests.sshd import Sshd


@dataclass
class Hot:
    """A transport and the folder (as this machine sees it) its files land in."""

    transport: Transport
    folder: Path
    moved: Callable[[Path], Transport]  # the same hot folder, its path changed to another

    def plant(self, name: str, data: bytes) -> None:
        """Put a file there the way someone other than outputd does."""
        if isinstance(self.transport, MemoryTransport):
            self.transport.files[name] = data
        else:
            (self.folder / name).write_bytes(data)

    def take(self, name: str) -> None:
        """Take a file away, the way the RIP does."""
        if isinstance(self.transport, MemoryTransport):
            del self.transport.files[name]
        else:
            (self.folder / name).unlink()

    def files(self) -> dict[str, bytes]:
        if isinstance(self.transport, MemoryTransport):
            return dict(self.transport.files)
        return {name: (self.folder / name).read_bytes() for name in os.listdir(self.folder)}


@contextlib.contextmanager
def made(kind: str, tmp_path: Path) -> Iterator[Hot]:
    if kind == "memory":
        memory = MemoryTransport("mem")
        yield Hot(memory, tmp_path / "unused", lambda path: memory)
        return
    if kind == "local":
        folder = tmp_path / "hot"
        folder.mkdir()

        def local(path: Path) -> Transport:
            return LocalTransport("rip1", LocalHotFolder(
                kind="local", path=str(path), filename="{job_id}.pdf"))

        yield Hot(local(folder), folder, local)
        return
    server = Sshd(tmp_path / "sshd").start()
    config = SftpHotFolder.model_validate({
        "kind": "sftp", "host": "127.0.0.1", "port": server.port, "username": server.user,
        "key_file": server.user_key, "known_hosts": server.known_hosts,
        "path": str(server.dest), "filename": "{job_id}.pdf", "timeout_s": 5})
    transport = SftpTransport("press", config)

    def sftp(path: Path) -> Transport:
        return SftpTransport("press", config.model_copy(update={"path": str(path)}))

    try:
        yield Hot(transport, server.dest, sftp)
    finally:
        transport.close()
        server.stop()


@pytest.fixture(params=["local", "sftp"])
def hot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hot]:
    with made(request.param, tmp_path) as made_hot:
        yield made_hot


@pytest.fixture(params=["local", "sftp", "memory"])
def any_hot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hot]:
    """Every transport, the in-memory one included."""
    with made(request.param, tmp_path) as made_hot:
        yield made_hot


def source(tmp_path: Path, data: bytes) -> tuple[Path, int, str]:
    path = tmp_path / "src.pdf"
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


def test_put_delivers_the_same_bytes_and_leaves_no_temp_file(hot: Hot, tmp_path: Path):
    data = os.urandom(3 << 20)
    src, size, digest = source(tmp_path, data)
    final = hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert final == str(hot.folder / "J-1.pdf")
    assert (hot.folder / "J-1.pdf").read_bytes() == data
    assert os.listdir(hot.folder) == ["J-1.pdf"]


def test_same_bytes_count_as_delivered_and_are_not_written_again(hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 same")
    (hot.folder / "J-1.pdf").write_bytes(b"%PDF-1.7 same")  # landed before a stop
    os.utime(hot.folder / "J-1.pdf", (1, 1))
    hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert (hot.folder / "J-1.pdf").stat().st_mtime == 1  # not written again
    assert os.listdir(hot.folder) == ["J-1.pdf"]


def test_other_bytes_at_the_final_name_are_never_replaced(any_hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 this job's")
    any_hot.plant("J-1.pdf", b"%PDF-1.7 another job's, same name")
    with pytest.raises(NameTaken, match=f"hot folder {any_hot.transport.name}: .*J-1.pdf "
                       "already holds another file; outputd never replaces"):
        any_hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert any_hot.files() == {"J-1.pdf": b"%PDF-1.7 another job's, same name"}
    any_hot.take("J-1.pdf")  # the RIP takes it: the retry delivers
    any_hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert any_hot.files() == {"J-1.pdf": b"%PDF-1.7 this job's"}


def test_a_file_put_at_the_final_name_during_the_copy_is_never_replaced(any_hot: Hot,
                                                                       tmp_path: Path):
    src, size, digest = source(tmp_path, os.urandom(3 << 20))

    def someone_else_writes() -> None:
        if "J-1.pdf" not in any_hot.files():
            any_hot.plant("J-1.pdf", b"%PDF-1.7 another job's")

    with pytest.raises(NameTaken, match="J-1.pdf already holds another file"):
        any_hot.transport.put(src, "J-1.pdf", size=size, sha256=digest,
                              control=CopyControl(threading.Event(), someone_else_writes))
    assert any_hot.files() == {"J-1.pdf": b"%PDF-1.7 another job's"}  # and no temp file


def test_a_stale_temp_file_is_replaced_not_appended_to(hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 complete")
    (hot.folder / ".J-1.pdf.part").write_bytes(b"x" * 100)
    hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot.folder) == ["J-1.pdf"]
    assert (hot.folder / "J-1.pdf").read_bytes() == b"%PDF-1.7 complete"


def test_an_aborted_copy_removes_its_temp_file(hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, os.urandom(20 << 20))
    abort = threading.Event()
    abort.set()
    with pytest.raises(CopyAborted, match="cut short"):
        hot.transport.put(src, "J-1.pdf", size=size, sha256=digest,
                          control=CopyControl(abort))
    assert os.listdir(hot.folder) == []


def test_sweep_removes_only_old_temp_files_of_our_naming(hot: Hot):
    for name in (".old.pdf.part", ".new.pdf.part", "keep.pdf", ".keep-hidden"):
        (hot.folder / name).write_bytes(b"x")
    os.utime(hot.folder / ".old.pdf.part", (time.time() - 100, time.time() - 100))
    assert hot.transport.sweep(older_than_s=30) == [".old.pdf.part"]
    assert sorted(os.listdir(hot.folder)) == [".keep-hidden", ".new.pdf.part", "keep.pdf"]


def test_probe_writes_renames_and_deletes(hot: Hot):
    hot.transport.probe()
    assert os.listdir(hot.folder) == []


def test_a_symlink_planted_at_the_temp_name_is_never_written_through(hot: Hot,
                                                                     tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 the job's own bytes")
    victim = tmp_path / "victim.pdf"
    victim.write_bytes(b"someone else's file")
    (hot.folder / ".J-1.pdf.part").symlink_to(victim)
    hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert victim.read_bytes() == b"someone else's file"
    assert not (hot.folder / "J-1.pdf").is_symlink()
    assert (hot.folder / "J-1.pdf").read_bytes() == b"%PDF-1.7 the job's own bytes"
    assert os.listdir(hot.folder) == ["J-1.pdf"]


def test_a_link_at_the_final_name_is_neither_taken_as_delivered_nor_replaced(
        hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 same")
    (hot.folder / "J-1.pdf").symlink_to(src)
    with pytest.raises(NameTaken, match="already holds another file"):
        hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert (hot.folder / "J-1.pdf").is_symlink()
    assert os.listdir(hot.folder) == ["J-1.pdf"]


def test_an_output_whose_bytes_changed_since_it_was_made_is_refused(hot: Hot,
                                                                    tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 as made and recorded")
    src.write_bytes(b"%!PS-Adobe-3.0".ljust(size, b"%"))  # rewritten through another link
    with pytest.raises(PermanentDeliveryError, match="not the output that was made"):
        hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot.folder) == []


def test_withdraw_removes_only_the_file_delivered(hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    delivered = hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert hot.transport.withdraw(delivered, digest) is True
    assert os.listdir(hot.folder) == []
    assert hot.transport.withdraw(delivered, digest) is False  # already gone (taken)
    (hot.folder / "J-1.pdf").write_bytes(b"someone else's file now")
    assert hot.transport.withdraw(delivered, digest) is False
    (hot.folder / "J-2.pdf").symlink_to(src)
    assert hot.transport.withdraw(str(hot.folder / "J-2.pdf"), None) is False
    (hot.folder / "J-3.json").write_bytes(b"{}")  # a sidecar: no recorded sha256
    assert hot.transport.withdraw(str(hot.folder / "J-3.json"), None) is True
    assert sorted(os.listdir(hot.folder)) == ["J-1.pdf", "J-2.pdf"]


def test_holds_says_whether_the_path_has_these_bytes(hot: Hot, tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    at = {name: str(hot.folder / name) for name in ("J-1.pdf", "J-2.pdf", "J-3.pdf")}
    assert hot.transport.holds(at["J-1.pdf"], size, digest) is False  # not there
    hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    assert hot.transport.holds(at["J-1.pdf"], size, digest) is True
    (hot.folder / "J-2.pdf").write_bytes(b"%PDF-1.7 other bytes, same name")
    assert hot.transport.holds(at["J-2.pdf"], size, digest) is False
    (hot.folder / "J-3.pdf").symlink_to(hot.folder / "J-1.pdf")  # a link to them is not
    assert hot.transport.holds(at["J-3.pdf"], size, digest) is False


def test_a_file_delivered_before_the_hot_folder_moved_is_found_where_it_went(
        hot: Hot, tmp_path: Path):
    """A reload changed the hot folder's path: what was delivered under the old one is
    held, withdrawn and removed there, by its recorded path."""
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered before the move")
    delivered = hot.transport.put(src, "J-1.pdf", size=size, sha256=digest)
    temp = str(hot.folder / ".J-2.pdf.part")
    (hot.folder / ".J-2.pdf.part").write_bytes(b"half a copy")
    (hot.folder / "moved").mkdir()
    with hot.moved(hot.folder / "moved") as moved:
        assert moved.holds(delivered, size, digest) is True
        moved.remove(temp)
        assert moved.withdraw(delivered, digest) is True
        assert moved.holds(delivered, size, digest) is False
    assert os.listdir(hot.folder) == ["moved"]
