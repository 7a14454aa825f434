"""Many small jobs through one daemon: all delivered, and memory, file descriptors and
threads flat after warm-up. CI runs 1,000 jobs; SOAK_JOBS=10000 runs the full
soak (bench/soak figures in docs/reliability.md)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf

JOBS = int(os.environ.get("SOAK_JOBS", "1000"))


def stats(pid: int) -> tuple[float, int, int]:
    """(RSS MB, open file descriptors, threads) of a process and its children's RSS."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines()}
    return (int(fields["VmRSS"][0]) / 1024, len(os.listdir(f"/proc/{pid}/fd")),
            int(fields["Threads"][0]))


@pytest.mark.slow
def test_soak(tmp_path: Path):
    site = Site(tmp_path / "site", hotfolders='[hotfolders.rip1]\nkind = "local"\n'
                'path = "hot/rip1"\nfilename = "{job_id}.pdf"\n')
    art = make_pdf(tmp_path / "art.pdf")
    daemon = DaemonProcess(site)
    db = site.state / "outputd.db"

    def delivered() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'InHotFolder'"
                                    ).fetchone()[0])

    def drop(start: int, count: int) -> None:
        for n in range(start, start + count):
            folder = site.intake / f"S-{n}"
            folder.mkdir()
            os.link(art, folder / "art.pdf")
            drop_ticket(site.intake, job_ticket(f"S-{n}", [f"S-{n}/art.pdf"]))

    try:
        warm = min(200, JOBS // 5)
        drop(0, warm)
        site.wait_for(lambda: delivered() == warm, timeout=120, what="warm-up")
        time.sleep(6)  # every periodic job has run: the scheduler's two threads exist
        start = stats(daemon.proc.pid)
        batch = 200
        for first in range(warm, JOBS, batch):
            drop(first, min(batch, JOBS - first))
            site.wait_for(lambda f=first: delivered() >= min(f + batch, JOBS) - batch // 2,
                          timeout=300, what="the soak to keep up")
        site.wait_for(lambda: delivered() == JOBS, timeout=600, what="every job delivered")
        time.sleep(1)
        end = stats(daemon.proc.pid)
        (tmp_path / "soak.txt").write_text(f"jobs={JOBS} start={start} end={end}\n")
        print(f"soak: {JOBS} jobs, RSS {start[0]:.1f} → {end[0]:.1f} MB, fds {start[1]} → "
              f"{end[1]}, threads {start[2]} → {end[2]}")
        assert end[0] <= start[0] * 1.2 + 8, (start, end)  # flat, with allocator slack
        assert abs(end[1] - start[1]) <= 3, (start, end)
        assert end[2] == start[2], (start, end)
        assert len(os.listdir(site.hot)) == JOBS
    finally:
        daemon.stop()
