"""Several daemons on one PostgreSQL queue: each job runs on one node at a time, a dead
node's jobs are taken over, and every job is delivered exactly once."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests.helpers import drop_ticket, job_ticket, make_pdf


def node_config(root: Path, shared: Path, name: str, pg_url: str, workers: int = 2) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    config = folder / "outputd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "state"\nintake_dir = "{shared / "intake"}"\n'
        f'sources_dir = "{shared / "sources"}"\nnode_id = "{name}"\nworkers = {workers}\n'
        f'stop_grace_s = 5\n\n[store]\nurl = "{pg_url}"\nlease_s = 4\n\n'
        '[retry]\ninitial_s = 0.5\nmax_s = 2\n\n[metrics]\nlisten = ""\n\n'
        "[limits]\nmin_free_mb = 10\n\n"
        f'[hotfolders.rip1]\nkind = "local"\npath = "{shared / "hot"}"\n'
        'filename = "{job_id}.pdf"\n\n[[routes]]\nmatch = {}\nto = ["rip1"]\n'
    )
    return config


def start(config: Path) -> subprocess.Popen[bytes]:
    log = open(config.parent / "daemon.log", "ab")  # noqa: SIM115 - lives with the process
    return subprocess.Popen([sys.executable, "-m", "outputd", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT)


def count(pg_url: str, status: str) -> int:
    with psycopg.connect(pg_url) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = %s",
                                (status,)).fetchone()[0])


def overlapping_claims(pg_url: str, dead: set[str], lease_s: float) -> list[str]:
    """Jobs whose claims overlapped in time, other than a dead node's lease expiring."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT job_id, owner, claimed_at, released_at FROM claim_log"
                            " ORDER BY job_id, claimed_at, id").fetchall()
    problems = []
    previous: dict[str, tuple[str, float, float | None]] = {}
    for job_id, owner, claimed, released in rows:
        before = previous.get(job_id)
        if before is not None:
            b_owner, b_claimed, b_released = before
            if b_released is None:
                if b_owner not in dead or claimed < b_claimed + lease_s:
                    problems.append(f"{job_id}: {owner} claimed while {b_owner} held it")
            elif claimed < b_released:
                problems.append(f"{job_id}: {owner} claimed before {b_owner} released it")
        previous[job_id] = (owner, claimed, released)
    return problems


@pytest.mark.slow
def test_three_daemons_share_500_jobs_and_survive_a_kill(tmp_path: Path, pg_url: str):
    shared = tmp_path / "shared"
    (shared / "intake").mkdir(parents=True)
    configs = [node_config(tmp_path, shared, f"node{n}", pg_url) for n in (1, 2, 3)]
    subprocess.run([sys.executable, "-m", "outputd", "status", "--config", str(configs[0])],
                   check=True, capture_output=True)  # creates the schema once
    procs = [start(c) for c in configs]
    time.sleep(1.5)
    digests = {}
    total = 500
    for n in range(total):
        job_id = f"J-{n:03d}"
        pdf = make_pdf(shared / "intake" / job_id / "art.pdf", label=job_id,
                       padding=random.randint(0, 1 << 20))
        digests[f"{job_id}.pdf"] = hashlib.sha256(pdf.read_bytes()).hexdigest()
    for n in range(total):
        drop_ticket(shared / "intake", job_ticket(f"J-{n:03d}", [f"J-{n:03d}/art.pdf"]))
        if n == 150:
            # Kill one node while work is in flight.
            deadline = time.monotonic() + 30
            while count(pg_url, "InHotFolder") < 40 and time.monotonic() < deadline:
                time.sleep(0.05)
            procs[1].send_signal(signal.SIGKILL)
            procs[1].wait()
    deadline = time.monotonic() + 240
    while count(pg_url, "InHotFolder") < total and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        with psycopg.connect(pg_url) as conn:
            stuck = conn.execute("SELECT job_id, status, claimed_by FROM jobs"
                                 " WHERE status <> 'InHotFolder'").fetchall()
        assert stuck == []
        assert count(pg_url, "InHotFolder") == total
        hot = shared / "hot"
        names = sorted(os.listdir(hot))
        assert names == sorted(digests)  # exactly one file per job, no temp file
        for name in names:
            assert hashlib.sha256((hot / name).read_bytes()).hexdigest() == digests[name]
        # A ticket the dead node had claimed is put back (and found to be a duplicate)
        # once its claim is older than the lease, at the next sweep: within 1.5 leases.
        deadline = time.monotonic() + 3 * 4
        while os.listdir(shared / "intake") != ["rejected"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sorted(os.listdir(shared / "intake")) == ["rejected"]
        assert os.listdir(shared / "intake" / "rejected") == []
        assert overlapping_claims(pg_url, dead={"node2"}, lease_s=4) == []
        with psycopg.connect(pg_url) as conn:
            owners = dict(conn.execute(
                "SELECT owner, COUNT(DISTINCT job_id) FROM claim_log GROUP BY owner"
            ).fetchall())
        assert set(owners) == {"node1", "node2", "node3"}  # all three took part
        for config in configs:
            assert "job.crashed" not in (config.parent / "daemon.log").read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) in (0, -signal.SIGKILL)


def test_racing_daemons_never_run_a_job_twice(tmp_path: Path, pg_url: str):
    shared = tmp_path / "shared"
    (shared / "intake").mkdir(parents=True)
    configs = [node_config(tmp_path, shared, f"node{n}", pg_url, workers=3) for n in (1, 2)]
    subprocess.run([sys.executable, "-m", "outputd", "status", "--config", str(configs[0])],
                   check=True, capture_output=True)
    for n in range(120):
        make_pdf(shared / "intake" / f"R-{n}" / "art.pdf")
        drop_ticket(shared / "intake", job_ticket(f"R-{n}", [f"R-{n}/art.pdf"]))
    procs = [start(c) for c in configs]  # both start on a full intake at once
    try:
        deadline = time.monotonic() + 120
        while count(pg_url, "InHotFolder") < 120 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert count(pg_url, "InHotFolder") == 120
        assert overlapping_claims(pg_url, dead=set(), lease_s=4) == []
        assert len(os.listdir(shared / "hot")) == 120
        for config in configs:
            assert "job.crashed" not in (config.parent / "daemon.log").read_text()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) == 0
