"""A hot folder on an SFTP server (paramiko), as safe as a local one.

Host keys are always checked against `known_hosts`. Writes are pipelined, in requests of
the size the server announces (limits@openssh.com) or else `max_request_bytes`, over
AES-GCM where offered. A file goes up as `.<name>.part`,
is fsynced where the server offers `fsync@openssh.com`, its size checked, then renamed
with the protocol's own rename, which never replaces a file already there (OpenSSH's
server links, then unlinks; `posix-rename@openssh.com` would replace it, so it is not
used). Connections are kept per hot folder and checked before use.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import stat
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY, CMD_VERSION, SFTPError

from outputd.config import SftpHotFolder
from outputd.errors import CopyAborted, DeliveryError, NameTaken, PermanentDeliveryError
from outputd.transports.base import CopyControl, Transport, is_part_name, part_name

CHUNK = 1 << 20
WINDOW = 64 << 20
MAX_PACKET = 256 << 10
MAX_IDLE = 4
MAX_REQUEST = 1 << 20
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr",
                     "aes256-ctr")


class _Client(paramiko.SFTPClient):
    """An SFTP client that remembers the extensions the server announced."""

    extensions: dict[str, str]
    request_bytes: int | None = None  # the server's own write limit, where it says

    def _send_version(self) -> int:
        message = paramiko.Message()
        message.add_int(3)
        self._send_packet(paramiko.sftp.CMD_INIT, message)
        kind, data = self._read_packet()
        if kind != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        reply = paramiko.Message(data)
        version = reply.get_int()
        self.extensions = {}
        with contextlib.suppress(Exception):
            while reply.get_remainder():
                name = reply.get_text()
                self.extensions[name] = reply.get_text()
        return int(version)

    def fsync(self, handle: bytes) -> None:
        self._request(CMD_EXTENDED, "fsync@openssh.com", handle)

    def max_write(self) -> int | None:
        """The largest write the server accepts, where it says (limits@openssh.com)."""
        if "limits@openssh.com" not in self.extensions:
            return None
        kind, reply = self._request(CMD_EXTENDED, "limits@openssh.com")
        if kind != CMD_EXTENDED_REPLY:
            return None
        reply.get_int64()  # max packet length
        reply.get_int64()  # max read length
        return int(reply.get_int64()) or None


class _Connection:
    def __init__(self, transport: paramiko.Transport, sftp: _Client) -> None:
        self.transport = transport
        self.sftp = sftp
        try:
            sftp.request_bytes = sftp.max_write()
        except (OSError, paramiko.SSHException, SFTPError):
            sftp.request_bytes = None

    def alive(self) -> bool:
        if not self.transport.is_active():
            return False
        try:
            self.sftp.normalize(".")
        except Exception:
            return False
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.sftp.close()
        with contextlib.suppress(Exception):
            self.transport.close()


def _secret(inline: Any, path: Path | None, what: str) -> str | None:
    if inline is not None:
        return str(inline.get_secret_value())
    if path is None:
        return None
    try:
        return path.read_text().rstrip("\n")
    except OSError as exc:
        raise PermanentDeliveryError(f"cannot read the {what} file {path}: {exc.strerror}") \
            from None


def _fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16]


class SftpTransport(Transport):
    """Delivers into a folder on an SFTP server."""

    def __init__(self, name: str, config: SftpHotFolder) -> None:
        super().__init__(name)
        self.config = config
        self.folder = PurePosixPath(config.path)
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    # -- connections ---------------------------------------------------------

    @property
    def where(self) -> str:
        return f"{self.config.username}@{self.config.host}:{self.config.port}"

    def _host_key_name(self) -> str:
        c = self.config
        return c.host if c.port == 22 else f"[{c.host}]:{c.port}"

    def _verify_host_key(self, transport: paramiko.Transport) -> None:
        c = self.config
        try:
            known = paramiko.HostKeys(str(c.known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise PermanentDeliveryError(
                f"cannot read known_hosts {c.known_hosts} for {self.where}: {exc}") from None
        offered = transport.get_remote_server_key()
        entries = known.lookup(self._host_key_name()) or {}
        expected = entries.get(offered.get_name())
        if expected is None:
            raise PermanentDeliveryError(
                f"the host key of {c.host}:{c.port} ({offered.get_name()} "
                f"{_fingerprint(offered)}) is not in known_hosts {c.known_hosts}; "
                "add it after checking it, outputd never accepts an unknown host key")
        if expected != offered:
            raise PermanentDeliveryError(
                f"the host key of {c.host}:{c.port} has CHANGED ({offered.get_name()} "
                f"{_fingerprint(offered)} does not match known_hosts {c.known_hosts}); "
                "this may be an attack, or the server was reinstalled")

    def _authenticate(self, transport: paramiko.Transport) -> None:
        c = self.config
        try:
            if c.key_file is not None:
                passphrase = _secret(c.key_passphrase, c.key_passphrase_file, "key passphrase")
                try:
                    key = paramiko.PKey.from_path(
                        str(c.key_file), passphrase.encode() if passphrase else None)
                except (OSError, paramiko.SSHException, ValueError, TypeError) as exc:
                    raise PermanentDeliveryError(
                        f"cannot load key_file {c.key_file}: {exc}") from None
                transport.auth_publickey(c.username, key)
            else:
                password = _secret(c.password, c.password_file, "password")
                transport.auth_password(c.username, password or "")
        except paramiko.AuthenticationException:
            raise PermanentDeliveryError(
                f"authentication as {c.username} failed on {c.host}:{c.port}") from None

    def _connect(self) -> _Connection:
        c = self.config
        try:
            sock = socket.create_connection((c.host, c.port), timeout=c.timeout_s)
        except OSError as exc:
            raise DeliveryError(f"cannot connect to {c.host}:{c.port}: "
                                f"{exc.strerror or exc}") from None
        transport = paramiko.Transport(sock, default_window_size=WINDOW,
                                       default_max_packet_size=MAX_PACKET)
        try:
            transport.banner_timeout = c.timeout_s
            transport.auth_timeout = c.timeout_s
            options = transport.get_security_options()
            offered = [x for x in PREFERRED_CIPHERS if x in options.ciphers]
            options.ciphers = tuple(offered + [x for x in options.ciphers if x not in offered])
            transport.start_client(timeout=c.timeout_s)
            self._verify_host_key(transport)
            self._authenticate(transport)
            channel = transport.open_session(timeout=c.timeout_s)
            channel.settimeout(c.timeout_s)
            channel.invoke_subsystem("sftp")
            sftp = _Client(channel)
        except DeliveryError:
            transport.close()
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport.close()
            raise DeliveryError(f"SSH to {c.host}:{c.port} failed: {exc}") from None
        return _Connection(transport, sftp)

    def _acquire(self) -> _Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if conn.alive():
                return conn
            conn.close()

    def _release(self, conn: _Connection, healthy: bool) -> None:
        with self._lock:
            if healthy and len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _run(self, what: str, work: Any) -> Any:
        """Run `work(sftp)` on a pooled connection, mapping faults to delivery errors."""
        conn = self._acquire()
        healthy = False
        try:
            result = work(conn.sftp)
            healthy = True
            return result
        except (DeliveryError, CopyAborted):
            raise
        except OSError as exc:
            if isinstance(exc, TimeoutError | socket.timeout):
                raise DeliveryError(f"{what} on {self.where}: timed out after "
                                    f"{self.config.timeout_s:g} s") from None
            healthy = exc.errno is not None and conn.transport.is_active()
            raise _reason(exc, f"{what} on {self.where}") from None
        except (paramiko.SSHException, EOFError, SFTPError) as exc:
            raise DeliveryError(f"{what} on {self.where}: connection lost ({exc or 'EOF'})") \
                from None
        finally:
            self._release(conn, healthy)

    # -- the interface -------------------------------------------------------

    def put(
        self, source: Path, final_name: str, *, size: int, sha256: str,
        control: CopyControl | None = None,
    ) -> str:
        final = str(self.folder / final_name)
        temp = str(self.folder / part_name(final_name))

        def upload(sftp: _Client) -> None:
            if _remote_holds(sftp, final, size, sha256):
                return  # this delivery landed before a stop
            if _exists(sftp, final):
                raise NameTaken(self.name, final)
            _remove_quietly(sftp, temp)  # a stale temp of outputd's naming, or a link there
            digest = hashlib.sha256()
            # "x": created new (O_EXCL), so a symlink planted at the temp name is refused
            with open(source, "rb") as src, sftp.open(temp, "wxb", bufsize=CHUNK) as dst:
                dst.MAX_REQUEST_SIZE = min(
                    max(sftp.request_bytes or 0, self.config.max_request_bytes), MAX_REQUEST)
                dst.set_pipelined(True)
                while chunk := src.read(CHUNK):
                    if control is not None:
                        control.check()
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                if "fsync@openssh.com" in sftp.extensions:
                    sftp.fsync(dst.handle)
            if digest.hexdigest() != sha256:
                _remove_quietly(sftp, temp)
                raise PermanentDeliveryError(
                    f"the bytes sent are not the output that was made (its sha256 is not "
                    f"{sha256[:12]}…): {source} changed since; not delivered")
            written = sftp.lstat(temp).st_size
            if written != size:
                with contextlib.suppress(OSError):
                    sftp.remove(temp)
                raise DeliveryError(f"wrote {written} bytes to {temp}, expected {size}")
            try:
                sftp.rename(temp, final)  # refused if the final name is taken meanwhile
            except OSError:
                _remove_quietly(sftp, temp)
                if not _exists(sftp, final):
                    raise
                if not _remote_holds(sftp, final, size, sha256):
                    raise NameTaken(self.name, final) from None

        try:
            self._run(f"cannot write {final}", upload)
        except CopyAborted:
            self._discard(temp)
            raise
        return final

    def _discard(self, path: str) -> None:
        with contextlib.suppress(DeliveryError):
            self._run("cleanup", lambda sftp: _remove_quietly(sftp, path))

    # A recorded path is the server's path as `put` wrote it (under the path the hot
    # folder had then), on the server the hot folder names now.

    def remove(self, path: str) -> None:
        self._run(f"cannot remove {path}", lambda sftp: _remove_quietly(sftp, path))

    def holds(self, path: str, size: int, sha256: str) -> bool:
        result: bool = self._run(f"cannot read {path}",
                                 lambda sftp: _remote_holds(sftp, path, size, sha256))
        return result

    def withdraw(self, path: str, sha256: str | None) -> bool:
        def withdraw(sftp: _Client) -> bool:
            try:
                st = sftp.lstat(path)
            except FileNotFoundError:
                return False
            if not stat.S_ISREG(st.st_mode or 0):
                return False
            if sha256 is not None and not _remote_holds(sftp, path, st.st_size or 0, sha256):
                return False
            try:
                sftp.remove(path)
            except FileNotFoundError:
                return False  # taken just now
            return True

        result: bool = self._run(f"cannot withdraw {path}", withdraw)
        return result

    def probe(self) -> None:
        name = f"outputd-probe-{os.getpid()}"
        temp, final = str(self.folder / part_name(name)), str(self.folder / f".{name}")

        def probe(sftp: _Client) -> None:
            _remove_quietly(sftp, final)  # a probe's own file, left by a dropped connection
            with sftp.open(temp, "wb") as fh:
                fh.write(b"outputd probe\n")
            sftp.rename(temp, final)
            sftp.remove(final)

        self._run(f"hot folder {self.folder} failed the probe", probe)

    def sweep(self, older_than_s: float) -> list[str]:
        cutoff = time.time() - older_than_s

        def sweep(sftp: _Client) -> list[str]:
            swept = []
            for entry in sftp.listdir_attr(str(self.folder)):
                if is_part_name(entry.filename) and stat.S_ISREG(entry.st_mode or 0) and (
                    entry.st_mtime or 0) < cutoff:
                    _remove_quietly(sftp, str(self.folder / entry.filename))
                    swept.append(entry.filename)
            return swept

        try:
            result: list[str] = self._run("sweep", sweep)
        except DeliveryError:
            return []  # the server is down: the delivery will say so
        return result


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        sftp.remove(path)


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    """Whether anything (a file, a link, a folder) has the name `path`."""
    try:
        sftp.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _remote_holds(sftp: paramiko.SFTPClient, path: str, size: int, sha256: str) -> bool:
    """Whether `path` is a regular file (not a link to one) holding these bytes."""
    try:
        st = sftp.lstat(path)
        if not stat.S_ISREG(st.st_mode or 0) or st.st_size != size:
            return False
    except FileNotFoundError:
        return False
    digest = hashlib.sha256()
    with sftp.open(path, "rb") as fh:
        fh.prefetch(size)
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == sha256


def _reason(exc: OSError, what: str) -> DeliveryError:
    text = f"{what}: {exc.strerror or exc}"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return PermanentDeliveryError(f"{what}: permission denied")
    if exc.errno == errno.ENOENT:
        return PermanentDeliveryError(f"{what}: no such folder on the server")
    return DeliveryError(text)
