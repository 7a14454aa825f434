"""The in-memory transport keeps the promises of the Transport interface that do not need
a file system (the rest are tested on real folders and a real sshd)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from outputd.errors import CopyAborted, DeliveryError, PermanentDeliveryError
from outputd.transports.base import CopyControl
from outputd.transports.memory import MemoryTransport


def source(tmp_path: Path, data: bytes) -> tuple[Path, int, str]:
    path = tmp_path / "src.pdf"
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


def test_same_bytes_count_as_delivered_and_are_not_written_again(tmp_path: Path):
    hot = MemoryTransport()
    src, size, digest = source(tmp_path, b"%PDF-1.7 one")
    assert hot.put(src, "J-1.pdf", size=size, sha256=digest) == "memory://memory/J-1.pdf"
    hot.put(src, "J-1.pdf", size=size, sha256=digest)
    assert (hot.puts, hot.writes, hot.files) == (2, 1, {"J-1.pdf": b"%PDF-1.7 one"})


def test_failures_come_on_cue_then_it_delivers(tmp_path: Path):
    hot = MemoryTransport(failures=[DeliveryError("connection refused")])
    src, size, digest = source(tmp_path, b"%PDF-1.7")
    with pytest.raises(DeliveryError, match="connection refused"):
        hot.put(src, "J-1.pdf", size=size, sha256=digest)
    assert hot.files == {}
    hot.put(src, "J-1.pdf", size=size, sha256=digest)
    assert list(hot.files) == ["J-1.pdf"]


def test_changed_bytes_and_a_stop_deliver_nothing(tmp_path: Path):
    hot = MemoryTransport()
    src, size, digest = source(tmp_path, b"%PDF-1.7 as made")
    src.write_bytes(b"%PDF-1.7 changed")
    with pytest.raises(PermanentDeliveryError, match="not the output that was made"):
        hot.put(src, "J-1.pdf", size=size, sha256=digest)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CopyAborted):
        hot.put(src, "J-1.pdf", size=size, sha256=digest, control=CopyControl(stop))
    assert hot.files == {} and hot.writes == 0


def test_withdraw_takes_back_only_the_file_delivered(tmp_path: Path):
    hot = MemoryTransport()
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    delivered = hot.put(src, "J-1.pdf", size=size, sha256=digest)
    hot.files["J-2.pdf"] = b"someone else's"
    assert hot.withdraw("memory://memory/J-2.pdf", digest) is False
    assert hot.withdraw(delivered, digest) is True
    assert hot.withdraw(delivered, digest) is False  # gone already
    assert list(hot.files) == ["J-2.pdf"]


def test_a_path_of_another_hot_folder_is_an_error_not_a_file_gone(tmp_path: Path):
    hot = MemoryTransport("rip1")
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    hot.put(src, "J-1.pdf", size=size, sha256=digest)
    for path in ("memory://rip2/J-1.pdf", "/srv/hot/rip1/J-1.pdf"):
        with pytest.raises(DeliveryError, match="not in the in-memory hot folder rip1"):
            hot.withdraw(path, digest)
        with pytest.raises(DeliveryError):
            hot.holds(path, size, digest)
    assert hot.holds("memory://rip1/J-1.pdf", size, digest) is True
