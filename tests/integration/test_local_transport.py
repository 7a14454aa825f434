"""The local transport against real folders: what only a local folder does (the
contract every transport keeps is in test_transport_contract.py)."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from pathlib import Path

import pytest

from outputd.config import LocalHotFolder
from outputd.errors import DeliveryError, NameTaken, PermanentDeliveryError
from outputd.transports.base import CopyControl
from outputd.transports.local import LocalTransport


def transport(folder: Path) -> LocalTransport:
    return LocalTransport("rip1", LocalHotFolder(kind="local", path=str(folder),
                                                 filename="{job_id}.pdf"))


def source(tmp_path: Path, data: bytes) -> tuple[Path, int, str]:
    path = tmp_path / "src.pdf"
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


def test_a_short_source_fails_and_leaves_nothing(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF short")
    hot = tmp_path / "hot"
    with pytest.raises(DeliveryError, match="source ended"):
        transport(hot).put(src, "J-1.pdf", size=size + 100, sha256=digest)
    assert os.listdir(hot) == []


def test_a_hot_folder_that_is_not_a_folder_is_a_permanent_failure(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF")
    blocker = tmp_path / "hot"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(PermanentDeliveryError, match="not usable"):
        transport(blocker).put(src, "J-1.pdf", size=size, sha256=digest)


def test_a_large_output_is_hashed_during_its_copy_and_refused_if_it_changed(tmp_path: Path):
    from outputd.transports.local import HASH_ALONGSIDE_BYTES

    data = os.urandom(HASH_ALONGSIDE_BYTES + (5 << 20) + 7)  # several chunks and a tail
    src, size, digest = source(tmp_path, data)
    hot = tmp_path / "hot"
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert hashlib.sha256((hot / "J-1.pdf").read_bytes()).hexdigest() == digest
    with open(src, "r+b") as fh:  # one byte changed, deep inside
        fh.seek(size - 100)
        fh.write(b"\x00" if data[size - 100] else b"\x01")
    with pytest.raises(PermanentDeliveryError, match="not the output that was made"):
        transport(hot).put(src, "J-2.pdf", size=size, sha256=digest)
    assert sorted(os.listdir(hot)) == ["J-1.pdf"]


def test_a_recorded_path_it_cannot_reach_is_an_error_not_a_file_taken(tmp_path: Path):
    """Withdrawing by a recorded path never follows a link put where its folder was,
    and a path that is not a local file path is refused: neither says "gone"."""
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    old = tmp_path / "old"
    delivered = transport(old).put(src, "J-1.pdf", size=size, sha256=digest)
    elsewhere = tmp_path / "elsewhere"
    old.rename(elsewhere)
    old.symlink_to(elsewhere)  # the old folder is a link now
    now = transport(tmp_path / "new")
    with pytest.raises(DeliveryError, match="cannot withdraw"):
        now.withdraw(delivered, digest)
    with pytest.raises(DeliveryError, match="cannot read"):
        now.holds(delivered, size, digest)
    assert (elsewhere / "J-1.pdf").exists()
    with pytest.raises(PermanentDeliveryError, match="not a file path"):
        now.withdraw("J-1.pdf", digest)


def test_a_recorded_path_on_a_share_not_mounted_is_an_error_not_a_file_taken(
        tmp_path: Path):
    share = tmp_path / "share"
    hot = LocalTransport("rip1", LocalHotFolder(
        kind="local", path=str(share / "hot"), filename="{job_id}.pdf", mount=str(share)))
    with pytest.raises(DeliveryError, match="not mounted"):
        hot.withdraw(str(share / "old-hot" / "J-1.pdf"), None)
    assert hot.withdraw(str(tmp_path / "other" / "J-1.pdf"), None) is False


def no_hard_links(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EPERM, "Operation not permitted")  # link(2) on vfat, some shares


def test_without_hard_links_a_free_name_is_renamed_into(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "link", no_hard_links)
    src, size, digest = source(tmp_path, b"%PDF-1.7 the job's")
    hot = tmp_path / "hot"
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot) == ["J-1.pdf"]
    assert (hot / "J-1.pdf").read_bytes() == b"%PDF-1.7 the job's"


def test_without_hard_links_a_name_taken_during_the_copy_is_not_replaced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "link", no_hard_links)
    src, size, digest = source(tmp_path, b"%PDF-1.7 the job's")
    hot = tmp_path / "hot"

    def someone_else_writes() -> None:
        (hot / "J-1.pdf").write_bytes(b"%PDF-1.7 another job's")

    with pytest.raises(NameTaken, match="already holds another file"):
        transport(hot).put(src, "J-1.pdf", size=size, sha256=digest,
                           control=CopyControl(threading.Event(), someone_else_writes))
    assert os.listdir(hot) == ["J-1.pdf"]
    assert (hot / "J-1.pdf").read_bytes() == b"%PDF-1.7 another job's"


def test_a_delivered_file_has_one_link_and_no_temp_name(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 the job's")
    hot = tmp_path / "hot"
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot) == ["J-1.pdf"]
    assert (hot / "J-1.pdf").stat().st_nlink == 1
