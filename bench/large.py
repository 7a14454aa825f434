"""A 2 GB static job through the daemon against `cp` of the same file on the same disk.

Reports the delivery (the copy into the hot folder, from the daemon's log line) and the
whole job (ticket to InHotFolder) against `cp` + `sync`, and the daemon's peak RSS.

    python bench/large.py [--gb 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.e2e import peak_rss_mb, start_daemon  # noqa: E402
from tests.helpers import job_ticket, make_pdf, write_config  # noqa: E402


def one_round(root: Path, source: Path, tag: str) -> tuple[float, float, float]:
    site = root / f"site-{tag}"
    config = write_config(site, hotfolders='[hotfolders.rip1]\nkind = "local"\n'
                          'path = "hot"\nfilename = "{job_id}.pdf"\n',
                          limits=f"max_file_bytes = {1 << 40}")
    (site / "intake" / "L").mkdir(parents=True)
    os.link(source, site / "intake" / "L" / "big.pdf")
    proc, _ = start_daemon(config, str(site / "notify.sock"))
    started = time.monotonic()
    ticket = site / "intake" / ".L.json.tmp"
    ticket.write_text(json.dumps(job_ticket("L", ["L/big.pdf"])))
    os.replace(ticket, site / "intake" / "L.json")
    log = site / "daemon.log"
    while "status=InHotFolder" not in log.read_text():
        time.sleep(0.05)
    whole = time.monotonic() - started
    rss = peak_rss_mb(proc.pid)
    proc.terminate()
    proc.wait()
    copy_ms = int(re.search(r"delivery.delivered .* ms=(\d+)", log.read_text()).group(1))
    return whole, copy_ms / 1000, rss


def cp_round(root: Path, source: Path, tag: str) -> float:
    target = root / f"cp-{tag}.pdf"
    started = time.monotonic()
    subprocess.run(["cp", str(source), str(target)], check=True)
    subprocess.run(["sync", str(target)], check=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        source = make_pdf(root / "big.pdf", padding=int(args.gb * (1 << 30)))
        size_mb = source.stat().st_size / (1 << 20)
        rows, cps = [], []
        for r in range(args.rounds):
            rows.append(one_round(root, source, str(r)))
            cps.append(cp_round(root, source, str(r)))
            for leftover in root.glob("site-*/hot/*.pdf"):
                leftover.unlink()
            (root / f"cp-{r}.pdf").unlink()
    whole = statistics.median(r[0] for r in rows)
    copy = statistics.median(r[1] for r in rows)
    rss = max(r[2] for r in rows)
    cp = statistics.median(cps)
    print(f"{size_mb:.0f} MB static job, {args.rounds} rounds (medians)")
    print(f"  cp + sync                 {size_mb / cp:7.0f} MB/s")
    print(f"  outputd delivery (copy)   {size_mb / copy:7.0f} MB/s   {cp / copy:.2f}× cp")
    print(f"  outputd whole job         {size_mb / whole:7.0f} MB/s   {cp / whole:.2f}× cp "
          "(preflight, sha256 of the output, copy, fsyncs)")
    print(f"  daemon peak RSS           {rss:7.0f} MB")


if __name__ == "__main__":
    main()
