"""The local transport against real folders: what only a local folder does (the
contract every transport keeps is in test_transport_contract.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from outputd.config import LocalHotFolder
from outputd.errors import DeliveryError, PermanentDeliveryError
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
