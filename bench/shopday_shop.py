"""The shop of a day in the shop (bench/shopday.py): its folders and config, its nodes,
the ways people reach outputd (CLI, API, board), and read-only looks at its store and
at its processes' CPU."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.shopday_scripts import Plan
from outputd import states
from tests.helpers import drop_ticket, job_ticket, make_pdf
from tests.sshd import Sshd, free_port
from tests.web import multipart

PASSWORD = "a long password 1"
CLK = os.sysconf("SC_CLK_TCK")
WORKERS = 2


# -- the shop: folders, config, nodes, and the ways people reach outputd ----------


@dataclass
class Node:
    """One `outputd run` of the shop, with its web child's port."""

    name: str
    config: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None


class Shop:
    """The site of one day: its folders, config, nodes, tokens and SFTP server."""

    def __init__(self, root: Path, pg_url: str | None = None) -> None:
        self.root = root
        self.intake = root / "intake"
        self.hot = {name: root / "hot" / name for name in ("rip1", "rip2", "rip3", "rip4")}
        for folder in (self.intake, *self.hot.values()):
            folder.mkdir(parents=True, exist_ok=True)
        self.sshd = Sshd(root / "sshd").start()
        (root / "webhook.secret").write_bytes(b"the shop's MIS secret")
        self.mis = Mis(b"the shop's MIS secret")
        self.rip = Rip(self.hot["rip2"])  # rip2's pickup is watched
        self.hot["press"] = self.sshd.dest
        self.pg_url = pg_url
        names = ("node-a", "node-b") if pg_url else ("node-a",)
        self.nodes = [Node(name, root / name / "outputd.toml", free_port()) for name in names]
        self.reloaded = False
        for node in self.nodes:
            node.config.parent.mkdir(parents=True, exist_ok=True)
            node.config.write_text(self.config_text(node))
        self.tokens: dict[str, str] = {}
        self.requests: Counter[str] = Counter()  # "GET /api/v1/jobs 200" → count
        self.lock = threading.Lock()

    # -- config ---------------------------------------------------------------

    def config_text(self, node: Node) -> str:
        store = (f'url = "{self.pg_url}"\n' if self.pg_url
                 else f'url = "sqlite:///{self.root / "outputd.db"}"\n')
        rip3 = ""
        late_route = ""
        if self.reloaded:  # what the SIGHUP brings: a new hot folder and its route
            rip3 = self._local("rip3")
            late_route = '[[routes]]\nmatch = {storefront = "lateshop"}\nto = ["rip3"]\n\n'
        return (
            f'[daemon]\nstate_dir = "{node.config.parent / "state"}"\n'
            f'intake_dir = "{self.intake}"\nsources_dir = "{self.root / "sources"}"\n'
            f'node_id = "{node.name}"\nworkers = {WORKERS}\nstop_grace_s = 10\n\n'
            f"[store]\n{store}lease_s = 10\n\n"
            "[retry]\nmax_attempts = 1000\ninitial_s = 0.5\nmax_s = 3\n\n"
            f'[metrics]\nlisten = ""\n\n[web]\nlisten = "127.0.0.1:{node.port}"\n\n'
            "[limits]\nmin_free_mb = 10\nawaiting_data_timeout_s = 600\n\n"
            f'[[notify.webhooks]]\nurl = "http://127.0.0.1:{self.mis.port}/outputd"\n'
            f'secret_file = "{self.root / "webhook.secret"}"\ntimeout_s = 5\n\n'
            + self._local("rip1", "_r" if self.reloaded else "")
            + self._local("rip2", watch="watch_pickup = true\n") + rip3
            + self._local("rip4").replace("{job_id}_", "")
            + self.sshd.hotfolder_toml("press", "").replace(
                'filename = "{order_id}_{job_id}.pdf"',
                'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"')
            + "\n[[routes]]\nmatch = {test_mode = true}\nskip = true\n\n"
            '[[routes]]\nmatch = {storefront = "proofs"}\nto = ["rip1"]\ncheckpoint = true\n\n'
            '[[routes]]\nmatch = {storefront = "proofs24"}\nto = ["rip2"]\ncheckpoint = true\n\n'
            '[[routes]]\nmatch = {storefront = "remote"}\nto = ["press"]\n\n'
            '[[routes]]\nmatch = {storefront = "print24"}\nto = ["rip2"]\n\n'
            '[[routes]]\nmatch = {storefront = "clashshop"}\nto = ["rip4"]\n\n'
            + late_route
            + '[[routes]]\nmatch = {}\nto = ["rip1"]\n'
        )

    def _local(self, name: str, suffix: str = "", watch: str = "") -> str:
        return (f'[hotfolders.{name}]\nkind = "local"\npath = "{self.hot[name]}"\n'
                f'filename = "{{order_id}}_{{job_id}}_{{sku}}_q{{quantity}}{suffix}.pdf"\n'
                f"{watch}\n")

    # -- the command line and the nodes ----------------------------------------

    def cli(self, *args: str, stdin: str = "", check: bool = True) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "outputd", *args, "--config", str(self.nodes[0].config)],
            capture_output=True, text=True, timeout=120, input=stdin)
        if check and done.returncode != 0:
            raise RuntimeError(f"outputd {' '.join(args)}: {done.stderr.strip()}")
        self.count(f"cli {args[0]} {done.returncode}")
        return done.stdout

    def prepare(self) -> None:
        """The people and machines of the shop: a token per storefront, a station, an
        operator, an approver and a viewer; a board user."""
        for shop in ("acme", "print24", "remote", "proofs", "proofs24", "lateshop",
                     "clashshop"):
            self.tokens[shop] = self.cli("token", "add", f"shop-{shop}", "--role",
                                         "submitter", "--storefront", shop).strip()
        for role in ("station", "operator", "approver", "viewer"):
            self.tokens[role] = self.cli("token", "add", f"{role}-1", "--role", role).strip()
        self.cli("user", "add", "floor", "--role", "viewer", "--password-stdin",
                 stdin=PASSWORD + "\n")

    def start(self, node: Node) -> None:
        log = open(node.config.parent / "daemon.log", "ab")  # noqa: SIM115 - the node's
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "outputd", "run", "--config", str(node.config)],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node.name} exited at start: {self.log(node)[-2000:]}")
            if self._answers(node):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{node.name}'s web child did not answer within 60 s")

    def stop(self, node: Node, sig: int = signal.SIGTERM) -> None:
        if node.proc is not None and node.proc.poll() is None:
            node.proc.send_signal(sig)
            try:
                node.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.proc.kill()
                node.proc.wait()
                raise RuntimeError(f"{node.name} did not stop within 60 s of SIGTERM") from None
        node.proc = None
        # Its board goes with it, even after SIGKILL: until it has, a new node's board
        # cannot have the port (and the old one would answer for it).
        deadline = time.monotonic() + 30
        while any("outputd web" in cmd and str(node.config) in cmd
                  for _, _, cmd in proc_table().values()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name}'s board still runs 30 s after it stopped")
            time.sleep(0.1)

    def log(self, node: Node) -> str:
        path = node.config.parent / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def reload(self) -> None:
        """Add hot folder rip3 and its route, change rip1's file names, and tell every
        node (SIGHUP)."""
        self.reloaded = True
        for node in self.nodes:
            node.config.write_text(self.config_text(node))
            if node.proc is not None:
                node.proc.send_signal(signal.SIGHUP)

    # -- the HTTP face ----------------------------------------------------------

    def _answers(self, node: Node) -> bool:
        try:
            self.http(node, "GET", "/api/v1/openapi.json", count=False)
        except OSError:
            return False
        return True

    def node(self) -> Node:
        """A running node to talk to (the storefronts spread over them)."""
        running = [n for n in self.nodes if n.proc is not None]
        return random.choice(running or self.nodes)

    def http(self, node: Node, method: str, path: str, token: str | None = None,
             body: bytes | None = None, headers: dict[str, str] | None = None,
             count: bool = True) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{node.port}{path}", data=body,
                                         method=method, headers=dict(headers or {}))
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        if count:
            self.count(f"{method} {_route(path)} {status}")
        return status, raw

    def api(self, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        status, raw = self.http(self.node(), method, f"/api/v1{path}", self.tokens[who], data,
                                {"Content-Type": "application/json"} if data else None)
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw

    def count(self, what: str) -> None:
        with self.lock:
            self.requests[what] += 1

    # -- moves --------------------------------------------------------------------

    def submit(self, plan: Plan) -> None:
        """The job's files and ticket, through the intake folder or the API."""
        staged = self.root / "staged" / plan.job_id
        files = []
        for name, pages, size in plan.files:
            path = make_pdf(staged / name, pages=pages, width_mm=size[0], height_mm=size[1],
                            label=f"{plan.job_id} {name}")
            files.append((f"{plan.job_id}/{name}", path))
        ticket = job_ticket(plan.job_id, [rel for rel, _ in files], **plan.ticket)
        ticket["storefront"] = plan.storefront
        for spec, (_, _) in zip(ticket["files"], files, strict=True):
            spec["role"] = plan.role
        late = {f"{plan.job_id}/{name}" for name in plan.late_files}
        if plan.via == "api":
            parts = [("ticket", None, json.dumps(ticket).encode())] + [
                (rel, Path(rel).name, path.read_bytes()) for rel, path in files
                if rel not in late]
            headers, body = multipart(*parts)
            status, raw = self.http(self.node(), "POST", "/api/v1/jobs",
                                    self.tokens[plan.storefront], body, headers)
            if status != 201:
                raise RuntimeError(f"{plan.job_id}: POST /api/v1/jobs answered {status}: "
                                   f"{raw[:300]!r}")
            return
        for rel, path in files:
            if rel not in late:
                target = self.intake / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        drop_ticket(self.intake, ticket)

    def late_file(self, plan: Plan) -> None:
        """The file the job waits for arrives in the intake folder (written aside, then
        renamed into place)."""
        for name in plan.late_files:
            staged = self.root / "staged" / plan.job_id / name
            target = self.intake / plan.job_id / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, target)

    def event(self, job_id: str, event: str, who: str, message: str = "") -> int:
        status, _ = self.api("POST", f"/jobs/{job_id}/events", who,
                             {"event": event, "message": message or f"{event} by {who}"})
        return status

    def history(self, job_id: str) -> list[dict[str, Any]]:
        """The job's history, as the API gives it."""
        status, answer = self.api("GET", f"/jobs/{job_id}", "viewer")
        if status != 200:
            raise RuntimeError(f"{job_id}: GET /api/v1/jobs/{job_id} answered {status}")
        return list(answer["history"])

    def scan(self, job_id: str, station: str, by_cli: bool) -> None:
        if by_cli:
            self.cli("scan", job_id, "--station", station)
            return
        status, answer = self.api("POST", "/scan", "station",
                                  {"code": job_id, "station": station})
        if status != 202:
            raise RuntimeError(f"{job_id}: scan at {station} answered {status}: {answer}")


def _route(path: str) -> str:
    """A request path with its ids taken out, to count requests by route."""
    parts = path.split("?")[0].split("/")
    return "/".join("{id}" if p[:2] in ("D-", "L-") or p.endswith(".png") else p
                    for p in parts)


# -- the store, read as the day's observer ----------------------------------------


class Observer:
    """Read-only queries on the shop's store (SQLite or PostgreSQL)."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.shop.pg_url:
            import psycopg

            with psycopg.connect(self.shop.pg_url) as conn:
                return list(conn.execute(sql.replace("?", "%s"), params).fetchall())
        import sqlite3

        conn = sqlite3.connect(f"file:{self.shop.root / 'outputd.db'}?mode=ro", uri=True,
                               timeout=30)
        try:
            return list(conn.execute(sql, params).fetchall())
        finally:
            conn.close()

    def statuses(self) -> dict[str, tuple[str, int]]:
        """Each job's status and how many times it reached a hot folder."""
        found = {row[0]: (row[1], 0) for row in self.rows("SELECT job_id, status FROM jobs")}
        for job_id, count in self.rows("SELECT job_id, COUNT(*) FROM history WHERE status = ?"
                                       " GROUP BY job_id", (states.IN_HOT_FOLDER,)):
            if job_id in found:
                found[job_id] = (found[job_id][0], int(count))
        return found

    def claim_log_rows(self) -> int:
        return int(self.rows("SELECT COUNT(*) FROM claim_log")[0][0])


# -- CPU of the nodes' processes, from /proc ----------------------------------------


def proc_table() -> dict[int, tuple[int, int, str]]:
    """pid → (parent pid, CPU ticks used, command line) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmd)
    return table


class CpuMeter:
    """CPU seconds of the nodes' daemons (with their PDF processes) and web children,
    summed over every process seen (a restart starts new ones)."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.seen: dict[int, tuple[str, int]] = {}  # pid → (kind, ticks at last look)

    def sample(self) -> None:
        table = proc_table()
        roots = {n.proc.pid for n in self.shop.nodes if n.proc is not None}
        for pid, (_, ticks, cmd) in table.items():
            top = pid
            while top in table and top not in roots and table[top][0] > 1:
                top = table[top][0]
            if top in roots:
                kind = "web" if " outputd web" in cmd else "daemon"
                self.seen[pid] = (kind, ticks)

    def seconds(self, kind: str) -> float:
        return sum(ticks for k, ticks in self.seen.values() if k == kind) / CLK


# -- the shop's other machines: the MIS that hears webhooks, a RIP that takes files ---


class Mis:
    """The shop's MIS: hears outputd's webhooks, checks each signature, and keeps what
    it heard per job in arrival order; `down` makes it answer 503 (the MIS is away)."""

    def __init__(self, secret: bytes) -> None:
        import hashlib
        import hmac
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.heard: dict[str, list[tuple[str, str]]] = {}  # job → [(event id, status)]
        self.bad: list[str] = []
        self.down = False
        self.lock = threading.Lock()
        mis = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if mis.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, self.headers.get("X-Outputd-Signature", "")):
                    mis.bad.append(body[:200].decode(errors="replace"))
                else:
                    note = json.loads(body)
                    with mis.lock:
                        mis.heard.setdefault(note["job_id"], []).append(
                            (str(note["event_id"]), note["status"]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="mis", daemon=True).start()

    def statuses(self, job_id: str) -> list[str]:
        """What the MIS heard of a job, each notification once, in the order it came."""
        seen: set[str] = set()
        found = []
        with self.lock:
            for event_id, status in self.heard.get(job_id, []):
                if event_id not in seen:
                    seen.add(event_id)
                    found.append(status)
        return found

    def close(self) -> None:
        self.server.shutdown()


class Rip:
    """A RIP that watches one hot folder and takes each finished file a moment after it
    lands (never a temp file); what it took is kept by name."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: set[str] = set()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rip", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        first_seen: dict[str, float] = {}
        while not self.stopping.wait(0.2):
            for entry in os.scandir(self.folder):
                if entry.name.startswith(".") or not entry.name.endswith(".pdf"):
                    continue
                seen = first_seen.setdefault(entry.name, time.monotonic())
                if time.monotonic() - seen > 1.0:
                    os.unlink(entry.path)
                    self.taken.add(entry.name)
                    first_seen.pop(entry.name)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
