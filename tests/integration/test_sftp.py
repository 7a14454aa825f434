"""The SFTP transport against a real OpenSSH server on loopback: host keys, keys,
connections and server faults (the contract every transport keeps is in
test_transport_contract.py)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from outputd.config import SftpHotFolder
from outputd.errors import DeliveryError, PermanentDeliveryError
from outputd.transports.base import CopyControl
from outputd.transports.sftp import SftpTransport
from tests.sshd import Sshd, keygen


@pytest.fixture
def sshd(tmp_path: Path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def transport(sshd: Sshd, **changes) -> SftpTransport:
    config = {
        "kind": "sftp", "host": "127.0.0.1", "port": sshd.port, "username": sshd.user,
        "key_file": sshd.user_key, "known_hosts": sshd.known_hosts, "path": str(sshd.dest),
        "filename": "{job_id}.pdf", "timeout_s": 5, **changes,
    }
    return SftpTransport("press", SftpHotFolder.model_validate(config))


def source(tmp_path: Path, size: int) -> tuple[Path, int, str]:
    data = os.urandom(size)
    path = tmp_path / "src.pdf"
    path.write_bytes(data)
    return path, size, hashlib.sha256(data).hexdigest()


def test_put_is_byte_identical_and_leaves_no_temp(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 5 << 20)
    with transport(sshd) as t:
        final = t.put(src, "J-1.pdf", size=size, sha256=digest)
        assert final == str(sshd.dest / "J-1.pdf")
        assert (sshd.dest / "J-1.pdf").read_bytes() == src.read_bytes()
        assert os.listdir(sshd.dest) == ["J-1.pdf"]
        t.put(src, "J-2.pdf", size=size, sha256=digest)  # on the same connection
        assert len(t._idle) == 1


def test_an_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 1000)
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(PermanentDeliveryError, match="host key .* is not in known_hosts"):
        transport(sshd, known_hosts=empty).put(src, "J-1.pdf", size=size, sha256=digest)
    assert os.listdir(sshd.dest) == []


def test_a_changed_host_key_is_refused(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 1000)
    other = keygen(tmp_path / "other_host")
    kind, key = (tmp_path / "other_host.pub").read_text().split()[:2]
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    with pytest.raises(PermanentDeliveryError, match="host key of 127.0.0.1.* has CHANGED"):
        transport(sshd, known_hosts=wrong).put(src, "J-1.pdf", size=size, sha256=digest)
    assert other.exists()


def test_hashed_known_hosts_entries_are_accepted(sshd: Sshd, tmp_path: Path):
    hashed = tmp_path / "hashed"
    hashed.write_text(sshd.known_hosts.read_text())
    import subprocess
    subprocess.run(["ssh-keygen", "-H", "-f", str(hashed)], check=True, capture_output=True)
    assert hashed.read_text().startswith("|1|")
    src, size, digest = source(tmp_path, 1000)
    transport(sshd, known_hosts=hashed).put(src, "J-1.pdf", size=size, sha256=digest)


def test_a_wrong_key_fails_authentication(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 1000)
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(PermanentDeliveryError, match="authentication as .* failed"):
        transport(sshd, key_file=stranger).put(src, "J-1.pdf", size=size, sha256=digest)


def test_a_passphrase_protected_key_from_a_file(sshd: Sshd, tmp_path: Path):
    key = keygen(tmp_path / "locked", passphrase="s3cret words")
    (sshd.root / "authorized_keys").write_text((tmp_path / "locked.pub").read_text())
    phrase = tmp_path / "phrase"
    phrase.write_text("s3cret words\n")
    src, size, digest = source(tmp_path, 1000)
    transport(sshd, key_file=key, key_passphrase_file=phrase).put(
        src, "J-1.pdf", size=size, sha256=digest)
    assert (sshd.dest / "J-1.pdf").exists()


def test_a_read_only_server_is_a_permanent_permission_failure(tmp_path: Path):
    server = Sshd(tmp_path / "ro", read_only=True).start()
    try:
        src, size, digest = source(tmp_path, 1000)
        with pytest.raises(PermanentDeliveryError, match="permission denied"):
            transport(server).put(src, "J-1.pdf", size=size, sha256=digest)
    finally:
        server.stop()


def test_a_missing_folder_is_a_permanent_failure(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 1000)
    with pytest.raises(PermanentDeliveryError, match="no such folder"):
        transport(sshd, path=str(sshd.dest / "nope")).put(src, "J-1.pdf", size=size,
                                                          sha256=digest)


def test_a_stopped_server_is_a_transient_failure_and_the_pool_reconnects(sshd: Sshd,
                                                                          tmp_path: Path):
    src, size, digest = source(tmp_path, 1000)
    t = transport(sshd)
    t.put(src, "J-1.pdf", size=size, sha256=digest)
    sshd.stop()
    with pytest.raises(DeliveryError, match="cannot connect") as caught:
        t.put(src, "J-2.pdf", size=size, sha256=digest)
    assert not isinstance(caught.value, PermanentDeliveryError)
    sshd.start()
    t.put(src, "J-2.pdf", size=size, sha256=digest)
    assert sorted(os.listdir(sshd.dest)) == ["J-1.pdf", "J-2.pdf"]
    t.close()


def test_an_aborted_upload_removes_its_temp_file(sshd: Sshd, tmp_path: Path):
    src, size, digest = source(tmp_path, 20 << 20)
    abort = threading.Event()
    calls = []

    def progress() -> None:
        calls.append(1)
        if len(calls) == 3:
            abort.set()

    with pytest.raises(DeliveryError, match="cut short"):
        transport(sshd).put(src, "J-1.pdf", size=size, sha256=digest,
                            control=CopyControl(abort, progress))
    assert os.listdir(sshd.dest) == []


def test_a_hung_server_times_out(tmp_path: Path):
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    known = tmp_path / "known"
    known.write_text("")
    key = keygen(tmp_path / "k")
    config = SftpHotFolder.model_validate({
        "kind": "sftp", "host": "127.0.0.1", "port": port, "username": "x", "key_file": key,
        "known_hosts": known, "path": "/x", "filename": "x.pdf", "timeout_s": 1})
    src, size, digest = source(tmp_path, 10)
    started = time.monotonic()
    with pytest.raises(DeliveryError):
        SftpTransport("hung", config).put(src, "x.pdf", size=size, sha256=digest)
    assert time.monotonic() - started < 5
    listener.close()
