"""Kill the daemon again and again while 300 jobs of every kind flow through it, and
show that nothing is lost, duplicated or half-delivered, watching as a RIP would."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from outputd import states
from tests.conftest import DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf
from tests.sshd import Sshd

ROUTES = """
[[routes]]
match = {type = "static"}
to = ["rip1"]

[[routes]]
match = {type = "multipart"}
to = ["rip1", "press"]

[[routes]]
match = {type = "megaedit"}
to = ["press"]
"""


class RipWatch(FileSystemEventHandler):
    """Every file that appears under a final name must be a complete PDF at that instant."""

    def __init__(self, folders: list[Path]) -> None:
        self.violations: list[str] = []
        self.seen = 0
        self.lock = threading.Lock()
        self.observer = Observer()
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            self.observer.schedule(self, str(folder))

    def _check(self, raw: str | bytes) -> None:
        path = Path(os.fsdecode(raw))
        if path.name.startswith(".") or path.suffix != ".pdf":
            return
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        with self.lock:
            self.seen += 1
            if not (data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]):
                self.violations.append(f"{path.name}: {len(data)} bytes, not a whole PDF")

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._check(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._check(event.dest_path)


def prepare_job(site: Site, n: int) -> tuple[str, str, dict]:
    kind = ("static", "multipart", "megaedit")[n % 3]
    job_id = f"C-{n:03d}"
    order = f"O{n // 6}"
    if kind == "static":
        files = [f"{job_id}/art.pdf"]
        make_pdf(site.intake / files[0], label=job_id)
        ticket = job_ticket(job_id, files, order_id=order)
    elif kind == "multipart":
        files = [f"{job_id}/cover.pdf", f"{job_id}/body.pdf"]
        make_pdf(site.intake / files[0], pages=2, label=f"{job_id} cover")
        make_pdf(site.intake / files[1], pages=2, label=f"{job_id} body")
        ticket = job_ticket(job_id, files, order_id=order, product_type="multipart",
                            product={"sku": "BOOK-A5", "pages": {"min": 4, "max": 4}})
    else:
        files = [f"{job_id}/p{k}.pdf" for k in range(3)]
        for k, f in enumerate(files):
            make_pdf(site.intake / f, pages=1, label=f"{job_id} page {k}")
        ticket = job_ticket(job_id, files, order_id=order, product_type="megaedit",
                            product={"pages": {"exact": 3}})
    return job_id, order, ticket


def legal(history: list[str]) -> bool:
    path = [s for s in history if s not in states.NOTES]
    return all(states.allowed(a, b) for a, b in zip(path, path[1:], strict=False))


def wait_for_work(db: Path, total: int) -> None:
    """Return once a job is claimed, or every job dropped so far has settled."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            claimed, settled = conn.execute(
                "SELECT COUNT(claimed_by), SUM(status IN (?, ?)) FROM jobs",
                (states.IN_HOT_FOLDER, states.CLEAN_UP)).fetchone()
        if claimed or settled == total:
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_300_jobs_survive_repeated_kills(tmp_path: Path):
    rng = random.Random(7)
    sshd = Sshd(tmp_path / "sshd").start()
    try:
        local = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
                 'filename = "{order_id}_{job_id}.pdf"\n')
        site = Site(tmp_path / "site", hotfolders=local + sshd.hotfolder_toml(),
                    routes=ROUTES)
        watch = RipWatch([site.hot, sshd.dest])
        watch.observer.start()
        daemon = DaemonProcess(site)
        jobs: dict[str, str] = {}
        shipped: set[str] = set()
        kills = 0
        for batch in range(10):
            batch_tickets = []
            for n in range(batch * 30, batch * 30 + 30):
                job_id, order, ticket = prepare_job(site, n)  # files first
                jobs[job_id] = order
                batch_tickets.append(ticket)
            for ticket in batch_tickets:  # then the tickets, all at once
                drop_ticket(site.intake, ticket)
            if batch in (4, 7):  # orders finishing while work flows: clean-up under fire
                for order in sorted({o for o in jobs.values()})[:batch * 2]:
                    if order not in shipped:
                        site.cli("event", "--order", order, "shipped", check=False)
                        shipped.add(order)
            if batch != 9:
                # Kill while the batch is being worked: soon after a job is claimed.
                wait_for_work(site.state / "outputd.db", len(jobs))
                time.sleep(rng.uniform(0, 0.05))
                daemon.kill()
                kills += 1
                daemon = DaemonProcess(site)
        db = site.state / "outputd.db"

        def settled() -> bool:
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT job_id, status FROM jobs").fetchall()
            done = {states.IN_HOT_FOLDER, states.CLEAN_UP}
            return len(rows) == len(jobs) and all(s in done for _, s in rows)

        site.wait_for(settled, timeout=180, what="every job to settle")
        daemon.stop()
        watch.observer.stop()
        watch.observer.join()
        assert kills >= 5
        log = site.log.read_text()
        # The kills caught work in flight: claims held by a dead daemon were taken back
        # at the next start.
        assert log.count("claims.recovered") >= 3

        with sqlite3.connect(db) as conn:
            rows = dict(conn.execute("SELECT job_id, status FROM jobs").fetchall())
            outputs = conn.execute("SELECT job_id, sha256 FROM outputs").fetchall()
            deliveries = conn.execute(
                "SELECT job_id, hotfolder, path, state FROM deliveries").fetchall()
            histories: dict[str, list[str]] = {}
            for job_id, status in conn.execute(
                    "SELECT job_id, status FROM history ORDER BY id").fetchall():
                histories.setdefault(job_id, []).append(status)
        # Every job reached the status it should.
        for job_id, order in jobs.items():
            want = states.CLEAN_UP if order in shipped and rows[job_id] == states.CLEAN_UP \
                else states.IN_HOT_FOLDER
            assert rows[job_id] in (want, states.CLEAN_UP), (job_id, rows[job_id])
        # Exactly one file per delivered output, with the right bytes.
        sha = dict(outputs)
        expected = {}
        for job_id, hotfolder, path, state in deliveries:
            if rows[job_id] == states.CLEAN_UP and state == "skipped":
                continue  # the order shipped before this copy was made: none is owed
            assert state == "delivered", (job_id, hotfolder, state)
            expected[path] = sha[job_id]
        on_disk = {str(p): p for folder in (site.hot, sshd.dest) for p in folder.iterdir()}
        assert sorted(on_disk) == sorted(expected)
        for path, digest in expected.items():
            assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == digest, path
        # No temp file anywhere; the intake holds nothing but an empty rejected/.
        temps = [p for root in (site.hot, sshd.dest, site.intake, site.state)
                 for p in root.rglob("*") if p.name.endswith((".part", ".claim", ".merged"))]
        assert temps == []
        assert sorted(os.listdir(site.intake)) == ["rejected"]
        assert os.listdir(site.intake / "rejected") == []
        # Every history is a legal path through the transition table.
        assert [j for j, h in histories.items() if not legal(h)] == []
        # A RIP never saw a partial file.
        assert watch.violations == []
        assert watch.seen >= len(expected)
    finally:
        sshd.stop()
