"""A real OpenSSH server on 127.0.0.1 for tests, with its own host key and user key."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, passphrase: str = "") -> Path:
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", passphrase,
                    "-f", str(path)], check=True)
    return path


class Sshd:
    """`sshd -D` on a free loopback port; stop() and start() keep port and keys."""

    def __init__(self, root: Path, read_only: bool = False) -> None:
        self.binary = require_tool("sshd")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host_key = keygen(root / "host_key")
        self.user_key = keygen(root / "user_key")
        (root / "authorized_keys").write_text((root / "user_key.pub").read_text())
        self.known_hosts = root / "known_hosts"
        host_pub = (root / "host_key.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        self.dest = root / "dest"
        self.dest.mkdir()
        self.config = root / "sshd_config"
        self.log = root / "sshd.log"
        self.read_only = read_only
        self.user = os.environ.get("USER") or "root"
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        sftp = "internal-sftp -R" if self.read_only else "internal-sftp"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.host_key}\n"
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}\n"
            f"PidFile {self.root / 'sshd.pid'}\nStrictModes no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            f"Subsystem sftp {sftp}\nLogLevel ERROR\nMaxStartups 100\nMaxSessions 50\n"
        )

    def start(self) -> Sshd:
        if not Path("/run/sshd").is_dir():
            import pytest

            message = "sshd needs /run/sshd (mkdir -p /run/sshd as root; .ci/run does)"
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(message)
            pytest.skip(message)
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-D", "-e", "-f", str(self.config)],
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited: {self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("sshd did not start listening")

    def _tree(self) -> list[int]:
        """The server's process and all its descendants (its sessions)."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def _signal_tree(self, signum: int) -> None:
        for pid in reversed(self._tree()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        if self.proc is not None:
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        """Stop the server and end its sessions."""
        self._signal_tree(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the server and every session at once, as a crash would."""
        self._signal_tree(signal.SIGKILL)

    def hotfolder_toml(self, name: str = "press", extra: str = "") -> str:
        return (
            f'[hotfolders.{name}]\nkind = "sftp"\nhost = "127.0.0.1"\nport = {self.port}\n'
            f'username = "{self.user}"\nkey_file = "{self.user_key}"\n'
            f'known_hosts = "{self.known_hosts}"\npath = "{self.dest}"\n'
            f'filename = "{{order_id}}_{{job_id}}.pdf"\ntimeout_s = 5\n{extra}\n'
        )
