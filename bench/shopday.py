"""A day in the shop: every feature at once, through outputd's real interfaces.

One `outputd run` (2 workers, its web child on; SQLite), or two nodes on one PostgreSQL
store, is driven through a compressed day: several storefronts; static, multipart and
MegaEdit jobs through the intake folder and the API; payments arriving late, approvals
and rejections, future orders, test-mode jobs, a file arriving late, preflight failures
and overrides, a proof checkpoint verified and one rejected, recreate and reopen, holds
and releases, cancellations, station scans in every order, shipping and clean-up, a hot
folder paused and resumed, an SFTP hot folder whose server goes away for a while, people
polling the board and the API and opening previews, a SIGHUP reload that adds a hot
folder, and one restart mid-day. Then the shop goes quiet, and the daemon must too.

Each job follows a script (bench/shopday_scripts.py) and must end in the status its
script says. Invariants are checked while the day runs and at its end (see `Day.check`);
any broken one is a line in `Figures.violations`. When a bug is found in the field, the
day learns the move that caused it.

    python bench/shopday.py [--jobs 120] [--arrive-s 60] [--engine sqlite|postgresql]
                            [--resting 1000] [--idle-s 60]
"""

from __future__ import annotations

import argparse
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.shopday_scripts import SCRIPTS, Plan, Sleep, Wait  # noqa: E402
from bench.shopday_shop import (  # noqa: E402
    CLK,
    WORKERS,
    CpuMeter,
    Observer,
    Shop,
    proc_table,
)
from outputd import states  # noqa: E402
from tests.helpers import drop_ticket, job_ticket, make_pdf  # noqa: E402

STATIONS = tuple(states.STATIONS)
LEASE_S = 10.0  # the shop's store.lease_s: a killed node's jobs are free after it
RESTART_QUIET_S = 15.0  # after a restart, the queue may lag this long
OVERDUE_S = 10.0  # a due job unclaimed this long while a worker is free is a stall


# -- the day ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What the day measured, and every invariant it found broken."""

    engine: str
    jobs: int = 0
    day_s: float = 0.0
    jobs_per_hour: float = 0.0
    daemon_cpu_ms_per_job: float = 0.0
    bare_cpu_ms_per_job: float = 0.0
    daemon_vs_bare: float = 0.0
    web_cpu_ms_per_job: float = 0.0
    web_cpu_ms_per_request: float = 0.0
    claims_per_job: float = 0.0
    claims_max: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    idle_jobs: int = 0
    idle_s: float = 0.0
    idle_cpu_pct: float = 0.0
    idle_claim_rows: int = 0
    quiet_latency_ms: float = 0.0
    requests: int = 0
    violations: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"shopday: {key}={value}" for key, value in vars(self).items()
                if key != "violations"] + [f"shopday: VIOLATION {v}" for v in self.violations]


class Day:
    """Run the day on a shop and check its invariants."""

    def __init__(self, root: Path, *, jobs: int = 120, arrive_s: float = 60.0,
                 pg_url: str | None = None, resting: int = 0, idle_s: float = 20.0,
                 seed: int = 26, wait_s: float = 120.0) -> None:
        """`wait_s`: how long a job may take to reach what its script waits for, beyond
        the day's longest outage (the SFTP server's, a fifth of `arrive_s`)."""
        random.seed(seed)
        self.shop = Shop(root, pg_url)
        self.observer = Observer(self.shop)
        self.cpu = CpuMeter(self.shop)
        self.figures = Figures("postgresql, 2 nodes" if pg_url else "sqlite, 1 node")
        self.plans = _plans(jobs, arrive_s)
        self.by_id = {plan.job_id: plan for plan in self.plans}
        self.arrive_s = arrive_s
        self.resting = resting
        self.idle_s = idle_s
        self.wait_s = wait_s + 0.25 * arrive_s
        self.quiet_until = 0.0  # invariants that need a running queue are off till then
        self.stop_polling = threading.Event()

    def violation(self, text: str) -> None:
        self.figures.violations.append(text)

    # -- the run ------------------------------------------------------------------

    def run(self) -> Figures:
        shop = self.shop
        shop.prepare()
        for node in shop.nodes:
            shop.start(node)
        poller = threading.Thread(target=self._poll_faces, name="people", daemon=True)
        poller.start()
        try:
            started = time.monotonic()
            self._drive(started)
            self.figures.day_s = round(time.monotonic() - started, 1)
            self.stop_polling.set()
            poller.join(timeout=60)
            self.cpu.sample()
            self._settle_figures()
            self.check()
            self._quiet()
        finally:
            self.stop_polling.set()
            for node in shop.nodes:
                try:
                    shop.stop(node)
                except RuntimeError as exc:
                    self.violation(str(exc))
            shop.sshd.stop()
            shop.rip.stop()
            shop.mis.close()
        self._check_logs()
        self._check_no_process_left()
        return self.figures

    def _check_no_process_left(self) -> None:
        """Once every node has stopped (one of them killed outright during the day), no
        process of the shop's outputd is left running: no board outlives its daemon."""
        mark = str(self.shop.root)
        ours = set(self.cpu.seen)  # every process seen under a node: PDF processes too
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = [(pid, cmd) for pid, (_, _, cmd) in proc_table().items()
                    if (pid in ours and "python" in cmd) or ("outputd" in cmd and mark in cmd)]
            if not left:
                return
            time.sleep(0.5)
        for pid, cmd in left:
            self.violation(f"process {pid} still runs after the shop stopped: {cmd[:200]}")

    def _drive(self, started: float) -> None:
        """Advance every job's script, and the day's own moves, until all have ended."""
        shop = self.shop
        day_moves: list[tuple[float, str, Callable[[], None]]] = sorted([
            (0.15 * self.arrive_s, "pause rip2", lambda: self._expect(
                shop.api("POST", "/hotfolders/rip2/pause", "operator"), 200)),
            (0.35 * self.arrive_s, "resume rip2", lambda: self._expect(
                shop.api("POST", "/hotfolders/rip2/resume", "operator"), 200)),
            (0.25 * self.arrive_s, "sftp server goes away", shop.sshd.stop),
            (0.45 * self.arrive_s, "sftp server is back", lambda: shop.sshd.start() and None),
            (0.5 * self.arrive_s, "restart", self._restart),
            (0.6 * self.arrive_s, "reload", shop.reload),
            (0.4 * self.arrive_s, "the MIS goes away", lambda: setattr(shop.mis, "down", True)),
            (0.55 * self.arrive_s, "the MIS is back", lambda: setattr(shop.mis, "down", False)),
            (0.75 * self.arrive_s, "kill -9 and start again", self._crash),
        ], key=lambda move: move[0])
        running: dict[str, tuple[Iterator[Wait | Sleep], Wait | Sleep, float]] = {}
        pending = sorted(self.plans, key=lambda p: p.at)
        next_look = 0.0
        while pending or running or day_moves:
            now = time.monotonic() - started
            while day_moves and day_moves[0][0] <= now:
                _, what, move = day_moves.pop(0)
                print(f"shopday: {now:6.1f} s {what}", flush=True)
                move()
            while pending and pending[0].at <= now:
                plan = pending.pop(0)
                plan.started = time.time()
                script = SCRIPTS[plan.kind](shop, plan)
                running[plan.job_id] = (script, Sleep(0), time.monotonic())
            if time.monotonic() < next_look:
                time.sleep(0.05)
                continue
            next_look = time.monotonic() + 0.25
            seen = self.observer.statuses()
            for job_id in list(running):
                self._advance(running, job_id, seen)
            self.cpu.sample()
            self._watch_queue()

    def _advance(self, running: dict[str, Any], job_id: str,
                 seen: dict[str, tuple[str, int]]) -> None:
        script, waiting, since = running[job_id]
        plan = self.by_id[job_id]
        while True:
            if isinstance(waiting, Sleep):
                if time.monotonic() - since < waiting.seconds:
                    return
            else:
                status, delivered = seen.get(waiting.job_id or job_id,
                                             ("(not yet taken in)", 0))
                if status not in waiting.statuses or delivered < waiting.delivered:
                    if time.monotonic() - since > self.wait_s:
                        self.violation(f"{job_id} ({plan.kind}) stuck in {status} for "
                                       f"{self.wait_s:g} s, waiting for "
                                       f"{'/'.join(sorted(waiting.statuses))}")
                        del running[job_id]
                    return
            try:
                waiting = next(script)
            except StopIteration:
                del running[job_id]
                return
            except Exception as exc:  # a move that was refused or answered wrongly
                self.violation(f"{job_id} ({plan.kind}): {type(exc).__name__}: {exc}")
                del running[job_id]
                return
            since = time.monotonic()
            running[job_id] = (script, waiting, since)

    def _expect(self, answer: tuple[int, Any], status: int) -> None:
        if answer[0] != status:
            self.violation(f"expected {status}, got {answer}")

    def _restart(self) -> None:
        """Stop the last node with SIGTERM and start it again, mid-day."""
        node = self.shop.nodes[-1]
        self.quiet_until = time.monotonic() + 3600
        self.cpu.sample()
        self.shop.stop(node)
        self.shop.start(node)
        self.quiet_until = time.monotonic() + RESTART_QUIET_S

    def _crash(self) -> None:
        """Kill the last node outright (SIGKILL), as a power cut would, and start it
        again once the leases it held have run out."""
        node = self.shop.nodes[-1]
        self.quiet_until = time.monotonic() + 3600
        self.cpu.sample()
        self.shop.stop(node, signal.SIGKILL)
        self.shop.start(node)
        self.quiet_until = time.monotonic() + RESTART_QUIET_S + LEASE_S

    def _watch_queue(self) -> None:
        """While the day runs: no job in a resting status is due, and no due job waits
        long while a worker is free."""
        resting = sorted(states.RESTING)
        marks = ", ".join("?" * len(resting))
        due_resting = self.observer.rows(
            f"SELECT job_id, status FROM jobs WHERE due_at IS NOT NULL AND status IN ({marks})",
            tuple(resting))
        for job_id, status in due_resting:
            self.violation(f"{job_id} is due in the resting status {status}")
        if time.monotonic() < self.quiet_until:
            return
        now = time.time()
        overdue = self.observer.rows(
            "SELECT job_id, status, due_at FROM jobs WHERE due_at <= ? AND claimed_by IS NULL",
            (now - OVERDUE_S,))
        busy = self.observer.rows("SELECT COUNT(*) FROM jobs WHERE claimed_by IS NOT NULL")
        if overdue and int(busy[0][0]) < WORKERS * len(self.shop.nodes):
            job_id, status, due = overdue[0]
            self.violation(f"{job_id} ({status}) due {now - due:.0f} s ago and unclaimed "
                           f"while a worker was free")

    def _poll_faces(self) -> None:
        """People on the board and machines on the API, all day: the job list, a job,
        hot folders, status, and page previews."""
        from bench.board import log_in  # the board's login, as a browser does it

        shop = self.shop
        cookies = {node.name: "" for node in shop.nodes}
        while not self.stop_polling.wait(0.3):
            node = shop.node()
            try:
                if not cookies[node.name]:
                    cookies[node.name] = log_in(node.port, "floor")
                cookie = {"Cookie": cookies[node.name]}
                ids = [p.job_id for p in self.plans if p.started]
                pages = ["/", "/hotfolders", "/?status=InHotFolder"] + (
                    [f"/jobs/{random.choice(ids)}"] if ids else [])
                for page in pages:
                    status, _ = shop.http(node, "GET", page, headers=cookie)
                    if status == 303:  # the session went with a restart: log in again
                        cookies[node.name] = ""
                shop.http(node, "GET", "/api/v1/jobs?limit=50", shop.tokens["viewer"])
                shop.http(node, "GET", "/api/v1/status", shop.tokens["viewer"])
                if ids:
                    shop.http(node, "GET", f"/api/v1/jobs/{random.choice(ids)}/pages/1.png",
                              shop.tokens["viewer"])
            except OSError:
                cookies[node.name] = ""  # the node is restarting

    # -- the end of the day ----------------------------------------------------------

    def check(self) -> None:
        """Every job where its script says; the hot folders hold what the store says;
        claims bounded; every history entry says who and why; no 5xx answer."""
        obs = self.observer
        seen = obs.statuses()
        for plan in self.plans:
            status = seen.get(plan.job_id, ("(never taken in)", 0))[0]
            if status != plan.final:
                self.violation(f"{plan.job_id} ({plan.kind}) ended {status}, its script "
                               f"says {plan.final}")
        for job_id, at, status, message, by in obs.rows(
                "SELECT job_id, at, status, message, by FROM history"):
            if not (message or "").strip() or not (by or "").strip():
                self.violation(f"{job_id}: history entry {status} at {at} lacks who or why")
        rejected = self.shop.intake / "rejected"
        for reason in sorted(rejected.glob("*.error.json")) if rejected.exists() else []:
            self.violation(f"ticket set aside: {reason.read_text()[:300]}")
        self._check_hot_folders()
        self._check_claims()
        self._check_mis()
        for what, count in sorted(self.shop.requests.items()):
            if what.split()[-1].startswith("5"):
                self.violation(f"{count} answers {what}")

    def _check_hot_folders(self) -> None:
        delivered: dict[str, set[str]] = {}
        for hotfolder, path, state in self.observer.rows(
                "SELECT hotfolder, path, state FROM deliveries"):
            if state == states.DELIVERED:
                if Path(path).name in delivered.get(hotfolder, set()):
                    self.violation(f"two deliveries record {path} in {hotfolder}: one "
                                   "replaced the other")
                delivered.setdefault(hotfolder, set()).add(Path(path).name)
        cancelled = {row[0] for row in self.observer.rows(
            "SELECT job_id FROM jobs WHERE cancelled = 1")}
        for name, folder in self.shop.hot.items():
            present = {p.name for p in folder.iterdir()}
            if name == "rip2":  # the RIP took these: the store says InProduction
                present |= self.shop.rip.taken
            for extra in sorted(present - delivered.get(name, set())):
                self.violation(f"hot folder {name} holds {extra}, which the store does "
                               "not record as delivered there")
            for missing in sorted(delivered.get(name, set()) - present):
                self.violation(f"the store records {missing} delivered to {name}, "
                               "and it is not there")
            owners = Counter(m.group(1) for file in present
                             if (m := re.search(r"_([DLR]-[A-Z0-9]+)_", file)))
            for job_id, count in sorted(owners.items()):
                if job_id in cancelled:
                    self.violation(f"hot folder {name} holds a file of {job_id}, cancelled")
                if count > 1:
                    self.violation(f"hot folder {name} holds {count} files of {job_id}")
        self._check_order_of_history()

    def _check_order_of_history(self) -> None:
        """Nothing reaches a hot folder after its job was cancelled (unless reopened)."""
        cancelled_at: dict[str, bool] = {}
        for job_id, status in self.observer.rows(
                "SELECT job_id, status FROM history ORDER BY id"):
            if status == states.CANCELLED:
                cancelled_at[job_id] = True
            elif status == states.REOPENED:
                cancelled_at[job_id] = False
            elif status == states.IN_HOT_FOLDER and cancelled_at.get(job_id):
                self.violation(f"{job_id} reached a hot folder after it was cancelled")

    def _check_mis(self) -> None:
        """The MIS heard each job's status changes in order, signed, and last of all
        the job's status now (once the outbox has drained)."""
        mis = self.shop.mis
        self._outbox_drained()
        for body in mis.bad[:3]:
            self.violation(f"the MIS got a notification whose signature is wrong: {body}")
        history: dict[str, list[str]] = {}
        for job_id, status in self.observer.rows(
                "SELECT job_id, status FROM history ORDER BY id"):
            if status not in states.NOTES:
                history.setdefault(job_id, []).append(status)
        now = dict(self.observer.rows("SELECT job_id, status FROM jobs"))
        for job_id, statuses in sorted(history.items()):
            heard = mis.statuses(job_id)
            walk = iter(statuses)
            if not all(status in walk for status in heard):  # in order: a subsequence
                self.violation(f"{job_id}: the MIS heard {heard}, out of the order of its "
                               f"history {statuses}")
            elif not heard or heard[-1] != now[job_id]:
                self.violation(f"{job_id} is {now[job_id]} but the MIS last heard "
                               f"{heard[-1:] or 'nothing'}")

    def _settled(self) -> None:
        """Wait until nothing is claimed, due or waiting to be applied (a violation after
        120 s: the shop never went quiet)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = self.observer.rows(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE claimed_by IS NOT NULL"
                " OR due_at IS NOT NULL),"
                " (SELECT COUNT(*) FROM events WHERE applied_at IS NULL)")[0]
            if not any(int(n) for n in busy):
                return
            time.sleep(0.5)
        self.violation("the shop never went quiet: jobs still claimed, due or with events")

    def _outbox_drained(self) -> None:
        """Wait until every notification owed has been sent (a violation after 300 s)."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            pending = self.observer.rows("SELECT COUNT(*) FROM outbox WHERE state = ?",
                                         ("pending",))[0][0]
            if int(pending) == 0:
                return
            time.sleep(0.5)
        self.violation("the outbox still held notifications 300 s after the day")

    def _check_claims(self) -> None:
        """Claims per job: at most one a status change, delivery attempt, applied event
        or look for a late file, and a few for the restart."""
        obs = self.observer
        claims = dict(obs.rows("SELECT job_id, COUNT(*) FROM claim_log GROUP BY job_id"))
        changes = dict(obs.rows("SELECT job_id, COUNT(*) FROM history GROUP BY job_id"))
        attempts = dict(obs.rows("SELECT job_id, SUM(attempts) FROM deliveries"
                                 " GROUP BY job_id"))
        events = dict(obs.rows("SELECT job_id, COUNT(*) FROM events GROUP BY job_id"))
        for plan in self.plans:
            got = int(claims.get(plan.job_id, 0))
            bound = (int(changes.get(plan.job_id, 0)) + int(attempts.get(plan.job_id) or 0)
                     + int(events.get(plan.job_id, 0)) + plan.polls + 3)
            if got > bound:
                self.violation(f"{plan.job_id} ({plan.kind}) was claimed {got} times; "
                               f"its work bounds that at {bound}")
        counts = [int(claims.get(p.job_id, 0)) for p in self.plans]
        self.figures.claims_per_job = round(sum(counts) / max(len(counts), 1), 2)
        self.figures.claims_max = max(counts, default=0)

    def _bare_work_ms(self) -> float:
        """The baseline, in the same run: CPU ms a job's bare work takes (open each of
        the day's source PDFs with pikepdf, copy it to a temp name, fsync, rename, fsync
        the folder), in a process of its own."""
        sources = sorted(str(p) for p in (self.shop.root / "sources").rglob("*.pdf"))
        if not sources:
            return 0.0
        out = self.shop.root / "bare"
        out.mkdir(exist_ok=True)
        done = subprocess.run([sys.executable, "-c", _BARE_WORK, str(out), *sources],
                              capture_output=True, text=True, timeout=600, check=True)
        return float(done.stdout) * len(sources) / max(len(self.plans), 1)

    def _settle_figures(self) -> None:
        f = self.figures
        f.jobs = len(self.plans)
        f.jobs_per_hour = round(f.jobs / f.day_s * 3600) if f.day_s else 0
        f.daemon_cpu_ms_per_job = round(self.cpu.seconds("daemon") * 1000 / f.jobs, 1)
        f.bare_cpu_ms_per_job = round(self._bare_work_ms(), 2)
        f.daemon_vs_bare = round(f.daemon_cpu_ms_per_job / max(f.bare_cpu_ms_per_job, 0.01),
                                 1)
        f.web_cpu_ms_per_job = round(self.cpu.seconds("web") * 1000 / f.jobs, 1)
        f.requests = sum(self.shop.requests.values())
        f.web_cpu_ms_per_request = round(self.cpu.seconds("web") * 1000 / max(f.requests, 1),
                                         1)
        flowing = {p.job_id for p in self.plans if p.kind in _FLOWING}
        first: dict[str, float] = {}
        reached: dict[str, float] = {}
        for job_id, at, status in self.observer.rows(
                "SELECT job_id, at, status FROM history ORDER BY id"):
            if job_id in flowing:
                first.setdefault(job_id, at)
                if status == states.IN_HOT_FOLDER:
                    reached.setdefault(job_id, at)
        waits = sorted((reached[j] - first[j]) * 1000 for j in reached)
        if waits:
            f.latency_p50_ms = round(statistics.median(waits))
            f.latency_p99_ms = round(waits[min(len(waits) - 1, int(len(waits) * 0.99))])

    def _quiet(self) -> None:
        """The shop goes quiet: with `resting` more jobs resting at stations, the
        daemon's CPU over `idle_s` and the claim log's growth; then one new job must flow
        at its usual speed."""
        shop, f = self.shop, self.figures
        if self.resting:
            self._add_resting(self.resting)
        f.idle_jobs = int(self.observer.rows("SELECT COUNT(*) FROM jobs")[0][0])
        self._outbox_drained()  # the MIS hears of the resting jobs before the shop is quiet
        self._settled()
        rows_before = self.observer.claim_log_rows()
        self.cpu.sample()
        before = sum(t for k, t in self.cpu.seen.values() if k == "daemon")
        started = time.monotonic()
        time.sleep(self.idle_s)
        self.cpu.sample()
        used = (sum(t for k, t in self.cpu.seen.values() if k == "daemon") - before) / CLK
        f.idle_s = round(time.monotonic() - started, 1)
        f.idle_cpu_pct = round(used / f.idle_s / len(shop.nodes) * 100, 2)
        f.idle_claim_rows = self.observer.claim_log_rows() - rows_before
        if f.idle_claim_rows:
            self.violation(f"the claim log grew by {f.idle_claim_rows} rows while idle")
        if f.idle_cpu_pct > 5:
            self.violation(f"idle daemon CPU {f.idle_cpu_pct} % of a core per node")
        quiet = Plan("L-QUIET", "quick", 0.0, "acme", final=states.IN_HOT_FOLDER)
        sent = time.time()
        shop.submit(quiet)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            at = self.observer.rows("SELECT MIN(at) FROM history WHERE job_id = ? AND "
                                    "status = ?", (quiet.job_id, states.IN_HOT_FOLDER))[0][0]
            if at is not None:
                f.quiet_latency_ms = round((at - sent) * 1000)
                break
            time.sleep(0.05)
        else:
            self.violation("a new job did not reach its hot folder within 60 s of the "
                           "quiet shop")

    def _add_resting(self, count: int) -> None:
        """`count` jobs resting at a station, taken in through `outputd submit` and
        moved on by scans recorded straight in a batch (as a busy floor would)."""
        shop = self.shop
        for n in range(count):
            make_pdf(shop.intake / f"R-{n:05d}" / "a.pdf", pages=1)
            drop_ticket(shop.intake, job_ticket(f"R-{n:05d}", [f"R-{n:05d}/a.pdf"],
                                                order_id=f"9{n:05d}"))
        deadline = time.monotonic() + max(120.0, count * 0.5)
        while time.monotonic() < deadline:
            done = self.observer.rows("SELECT COUNT(*) FROM jobs WHERE job_id LIKE ?"
                                      " AND status = ?", ("R-%", states.IN_HOT_FOLDER))[0][0]
            if int(done) == count:
                break
            time.sleep(0.5)
        else:
            self.violation(f"the {count} resting jobs did not all reach a hot folder")
            return
        for n in range(count):
            shop.scan(f"R-{n:05d}", random.choice(STATIONS), by_cli=False)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            left = self.observer.rows("SELECT COUNT(*) FROM jobs WHERE job_id LIKE ?"
                                      " AND status = ?", ("R-%", states.IN_HOT_FOLDER))[0][0]
            if int(left) == 0:
                return
            time.sleep(0.5)
        self.violation("the resting jobs' scans were not all applied")

    def _check_logs(self) -> None:
        for node in self.shop.nodes:
            text = self.shop.log(node)
            for marker in ("job.idle_claim", "job.crashed", "Traceback", "web.exited"):
                count = text.count(marker)
                if count:
                    line = next(ln for ln in text.splitlines() if marker in ln)
                    self.violation(f"{node.name}'s log has {count} × {marker}: {line[:300]}")


# The bare work of delivering a job's files, for the CPU baseline: CPU ms per file.
_BARE_WORK = """
import os, resource, sys
import pikepdf
out, files = sys.argv[1], sys.argv[2:]
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
start = cpu()
folder = os.open(out, os.O_RDONLY)
for n, path in enumerate(files):
    with pikepdf.open(path) as pdf:
        len(pdf.pages)
    temp, final = os.path.join(out, f".{n}.part"), os.path.join(out, f"{n}.pdf")
    with open(path, "rb") as src, open(temp, "wb") as dst:
        dst.write(src.read())
        dst.flush()
        os.fsync(dst.fileno())
    os.rename(temp, final)
    os.fsync(folder)
print((cpu() - start) * 1000 / len(files))
"""

_FLOWING = frozenset({"floor", "collect", "multipart", "megaedit", "station_rest",
                      "cancel_delivered"})


def _plans(jobs: int, arrive_s: float) -> list[Plan]:
    """The day's jobs: every script at least once, the rest drawn by weight, arriving
    over the first `arrive_s` seconds (lateshop's after the reload)."""
    kinds = [kind for kind in SCRIPTS if kind not in ("quick", "lateshop")]
    weights = {"floor": 8, "station_rest": 4, "collect": 2, "multipart": 2, "megaedit": 2,
               "paused": 3, "sftp": 3, "late_payment": 2, "approval": 2}
    drawn = kinds + ["lateshop"] + random.choices(
        kinds, [weights.get(k, 1) for k in kinds], k=max(jobs - len(kinds) - 1, 0))
    plans = []
    for number, kind in enumerate(drawn):
        if kind == "lateshop":
            at = random.uniform(0.65, 0.8) * arrive_s
        elif kind == "cancel_after_reload":
            at = random.uniform(0.1, 0.4) * arrive_s  # delivered before the reload
        elif kind in ("paused", "proof_paused"):
            at = random.uniform(0.16, 0.3) * arrive_s  # while rip2 is paused
        elif kind == "sftp":
            at = random.uniform(0.0, 0.4) * arrive_s
        else:
            at = random.uniform(0, arrive_s)
        plans.append(Plan.of(kind, f"D-{number:04d}", at))
    return plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=120)
    parser.add_argument("--arrive-s", type=float, default=60.0)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--resting", type=int, default=1000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, help="run the day in this new folder, and "
                        "keep it (logs, store, hot folders) for a look afterwards")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopday-") as tmp:
        pg_url = _pg_database(args.pg_admin) if args.engine == "postgresql" else None
        figures = Day(args.keep or Path(tmp), jobs=args.jobs, arrive_s=args.arrive_s,
                      pg_url=pg_url, resting=args.resting, idle_s=args.idle_s).run()
    print("\n".join(figures.lines()))
    raise SystemExit(1 if figures.violations else 0)


def _pg_database(admin_url: str) -> str:
    import uuid

    import psycopg

    name = f"outputd_day_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


if __name__ == "__main__":
    main()
