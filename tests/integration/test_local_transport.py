"""The local transport against real folders."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from outputd.config import LocalHotFolder
from outputd.errors import CopyAborted, DeliveryError, PermanentDeliveryError
from outputd.transports.base import CopyControl
from outputd.transports.local import LocalTransport


def transport(folder: Path) -> LocalTransport:
    return LocalTransport("rip1", LocalHotFolder(kind="local", path=str(folder),
                                                 filename="{job_id}.pdf"))


def source(tmp_path: Path, data: bytes) -> tuple[Path, int, str]:
    path = tmp_path / "src.pdf"
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


def test_put_delivers_the_same_bytes_and_leaves_no_temp_file(tmp_path: Path):
    data = os.urandom(3 << 20)
    src, size, digest = source(tmp_path, data)
    hot = tmp_path / "hot"
    final = transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert final == str(hot / "J-1.pdf")
    assert (hot / "J-1.pdf").read_bytes() == data
    assert os.listdir(hot) == ["J-1.pdf"]


def test_a_final_file_with_the_same_bytes_counts_as_delivered(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 same")
    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / "J-1.pdf").write_bytes(b"%PDF-1.7 same")
    os.utime(hot / "J-1.pdf", (1, 1))
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert (hot / "J-1.pdf").stat().st_mtime == 1  # not written again


def test_a_final_file_with_other_bytes_is_replaced(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 new")
    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / "J-1.pdf").write_bytes(b"%PDF-1.7 old and longer")
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert (hot / "J-1.pdf").read_bytes() == b"%PDF-1.7 new"


def test_a_stale_temp_file_is_overwritten_not_appended(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 complete")
    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / ".J-1.pdf.part").write_bytes(b"x" * 100)
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot) == ["J-1.pdf"]


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


def test_an_aborted_copy_removes_its_temp_file(tmp_path: Path):
    src, size, digest = source(tmp_path, os.urandom(20 << 20))
    hot = tmp_path / "hot"
    abort = threading.Event()
    abort.set()
    with pytest.raises(CopyAborted, match="cut short"):
        transport(hot).put(src, "J-1.pdf", size=size, sha256=digest,
                           control=CopyControl(abort))
    assert os.listdir(hot) == []


def test_sweep_removes_only_old_temp_files_of_our_naming(tmp_path: Path):
    hot = tmp_path / "hot"
    hot.mkdir()
    for name in (".old.pdf.part", ".new.pdf.part", "keep.pdf", ".keep-hidden"):
        (hot / name).write_bytes(b"x")
    os.utime(hot / ".old.pdf.part", (time.time() - 100, time.time() - 100))
    assert transport(hot).sweep(older_than_s=30) == [".old.pdf.part"]
    assert sorted(os.listdir(hot)) == [".keep-hidden", ".new.pdf.part", "keep.pdf"]


def test_probe_writes_renames_and_deletes(tmp_path: Path):
    hot = tmp_path / "hot"
    transport(hot).probe()
    assert os.listdir(hot) == []


def test_a_symlink_planted_at_the_temp_name_is_never_written_through(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 the job's own bytes")
    hot = tmp_path / "hot"
    hot.mkdir()
    victim = tmp_path / "victim.pdf"
    victim.write_bytes(b"someone else's file")
    (hot / ".J-1.pdf.part").symlink_to(victim)
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert victim.read_bytes() == b"someone else's file"
    assert not (hot / "J-1.pdf").is_symlink()
    assert (hot / "J-1.pdf").read_bytes() == b"%PDF-1.7 the job's own bytes"
    assert os.listdir(hot) == ["J-1.pdf"]


def test_a_final_name_that_links_to_the_same_bytes_is_not_taken_as_delivered(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 same")
    hot = tmp_path / "hot"
    hot.mkdir()
    (hot / "J-1.pdf").symlink_to(src)
    transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert not (hot / "J-1.pdf").is_symlink()


def test_an_output_whose_bytes_changed_since_it_was_made_is_refused(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 as made and recorded")
    src.write_bytes(b"%!PS-Adobe-3.0".ljust(size, b"%"))  # rewritten through another link
    hot = tmp_path / "hot"
    with pytest.raises(PermanentDeliveryError, match="not the output that was made"):
        transport(hot).put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(hot) == []


def test_withdraw_removes_only_the_file_delivered(tmp_path: Path):
    src, size, digest = source(tmp_path, b"%PDF-1.7 delivered")
    hot = tmp_path / "hot"
    t = transport(hot)
    t.put(src, "J-1.pdf", size=size, sha256=digest)
    assert t.withdraw("J-1.pdf", digest) is True
    assert os.listdir(hot) == []
    assert t.withdraw("J-1.pdf", digest) is False  # already gone (taken)
    (hot / "J-1.pdf").write_bytes(b"someone else's file now")
    assert t.withdraw("J-1.pdf", digest) is False
    (hot / "J-2.pdf").symlink_to(src)
    assert t.withdraw("J-2.pdf", None) is False
    assert sorted(os.listdir(hot)) == ["J-1.pdf", "J-2.pdf"]


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
