"""SFTP upload speed: outputd's transport against OpenSSH's `sftp -b`, same server.

Starts a loopback sshd (as the tests do), then uploads one file alternately through
outputd's SftpTransport and through `sftp -b`, and reports median throughput and the
ratio. Run from the checkout, as root (sshd needs /run/sshd):

    python bench/sftp.py [--mib 1024] [--rounds 3] [--max-request-bytes 32768]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from outputd.config import SftpHotFolder  # noqa: E402
from outputd.transports.sftp import SftpTransport  # noqa: E402
from tests.sshd import Sshd  # noqa: E402


def make_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for n in range(mib):
            chunk = block[n % 251:] + block[: n % 251]
            fh.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-request-bytes", type=int, default=32768)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        server = Sshd(root / "sshd").start()
        try:
            source = root / "big.pdf"
            digest = make_file(source, args.mib)
            size = source.stat().st_size
            transport = SftpTransport("bench", SftpHotFolder.model_validate({
                "kind": "sftp", "host": "127.0.0.1", "port": server.port,
                "username": server.user, "key_file": server.user_key,
                "known_hosts": server.known_hosts, "path": str(server.dest),
                "filename": "x.pdf", "timeout_s": 60,
                "max_request_bytes": args.max_request_bytes,
            }))
            batch = root / "batch"
            batch.write_text(f"put {source} {server.dest}/openssh.pdf\n")
            openssh = ["sftp", "-q", "-b", str(batch), "-i", str(server.user_key),
                       "-o", f"UserKnownHostsFile={server.known_hosts}",
                       "-o", "StrictHostKeyChecking=yes", "-P", str(server.port),
                       f"{server.user}@127.0.0.1"]
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(args.rounds):
                for name in os.listdir(server.dest):
                    os.unlink(server.dest / name)
                started = time.perf_counter()
                transport.put(source, "outputd.pdf", size=size, sha256=digest)
                ours.append(size / (time.perf_counter() - started) / (1 << 20))
                started = time.perf_counter()
                subprocess.run(openssh, check=True, capture_output=True)
                theirs.append(size / (time.perf_counter() - started) / (1 << 20))
            transport.close()
        finally:
            server.stop()
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"file {args.mib} MiB, {args.rounds} rounds, max_request_bytes "
          f"{args.max_request_bytes}")
    print(f"  outputd SftpTransport   {a:8.1f} MiB/s   (rounds: "
          + ", ".join(f"{x:.0f}" for x in ours) + ")")
    print(f"  OpenSSH sftp -b         {b:8.1f} MiB/s   (rounds: "
          + ", ".join(f"{x:.0f}" for x in theirs) + ")")
    print(f"  ratio outputd/OpenSSH   {a / b:8.2f}   (median of the per-round ratios "
          f"{statistics.median(x / y for x, y in zip(ours, theirs, strict=True)):.2f})")


if __name__ == "__main__":
    main()
