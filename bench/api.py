"""The HTTP API against its baselines, side by side in one run.

1. Reads with a large store: `GET /api/v1/jobs` (the default view: 100 jobs, each a
   full job object) and `GET /api/v1/jobs/{id}` from a keep-alive client on loopback,
   p50 and p99, beside the same queries run with the bare `sqlite3` module.
2. Submitting: N jobs of 1 MB over `POST /api/v1/jobs` (8 client threads) until every
   one is InHotFolder, against dropping the same jobs into the intake folder (writing
   each file there, then its ticket, as a storefront does), each twice, alternating.
   And the intake folder's round again with 20 API clients polling the list each second.
3. One large upload (default 2 GB): the web process's peak RSS.

    python bench/api.py [--store-jobs 100000] [--requests 300] [--jobs 500] [--mb 1]
                        [--upload-gb 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search import build  # noqa: E402

from tests.helpers import job_ticket, make_pdf, write_config  # noqa: E402
from tests.sshd import free_port  # noqa: E402

BOUNDARY = "----outputd-bench"
CLIENTS = 8  # uploads at once, as a storefront sending a batch would
POLLERS = 20  # screens and scripts watching the job list


def cli(config: Path, *args: str, input_: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "outputd", *args, "--config", str(config)],
                          capture_output=True, text=True, check=True, input=input_)
    return done.stdout.strip()


def start(config: Path, command: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "outputd", command, "--config",
                                 str(config)], stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/v1/openapi.json")
        conn.getresponse().read()
        return True
    except OSError:
        return False


def with_web(config: Path) -> int:
    port = free_port()
    with config.open("a") as fh:
        fh.write(f'\n[web]\nlisten = "127.0.0.1:{port}"\n')
    return port


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(int(len(values) * p), len(values) - 1)]


# -- 1. reads ------------------------------------------------------------------


def reads(root: Path, store_jobs: int, requests: int) -> None:
    config = build(root / "reads", store_jobs)
    port = with_web(config)
    token = cli(config, "token", "add", "bench", "--role", "viewer")
    proc = start(config, "web", root / "reads" / "web.log")
    try:
        wait_for(lambda: answers(port), 60, "outputd web")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}

        def get(path: str) -> float:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
            return (time.perf_counter() - started) * 1000

        ids = [f"J-{random.randrange(store_jobs):06d}" for _ in range(requests)]
        get("/api/v1/jobs")  # warm
        api_list = [get("/api/v1/jobs") for _ in range(requests)]
        api_one = [get(f"/api/v1/jobs/{i}") for i in ids]
    finally:
        proc.terminate()
        proc.wait()
    db = sqlite3.connect(root / "reads" / "state" / "outputd.db")

    def job_queries(cur: sqlite3.Cursor, job_id: str) -> None:
        cur.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        for table in ("deliveries", "outputs", "history"):
            cur.execute(f"SELECT * FROM {table} WHERE job_id = ?", (job_id,)).fetchall()

    def base_list() -> float:
        started = time.perf_counter()
        cur = db.cursor()
        rows = cur.execute("SELECT job_id FROM jobs WHERE cancelled = 0"
                           " ORDER BY created_at DESC, job_id LIMIT 100").fetchall()
        for (job_id,) in rows:
            job_queries(cur, job_id)
        return (time.perf_counter() - started) * 1000

    def base_one(job_id: str) -> float:
        started = time.perf_counter()
        job_queries(db.cursor(), job_id)
        return (time.perf_counter() - started) * 1000

    sql_list = [base_list() for _ in range(requests)]
    sql_one = [base_one(i) for i in ids]
    print(f"reads with {store_jobs} jobs in the store, {requests} requests each (ms)")
    for name, api, sql in (("GET /api/v1/jobs (100 jobs)", api_list, sql_list),
                           ("GET /api/v1/jobs/{id}", api_one, sql_one)):
        print(f"  {name:<28} p50 {pct(api, .5):6.1f}  p99 {pct(api, .99):6.1f}   "
              f"sqlite3 p50 {pct(sql, .5):6.1f}  p99 {pct(sql, .99):6.1f}")


# -- 2. submitting -------------------------------------------------------------


def multipart(ticket: bytes, name: str, pdf: Path) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"ticket\"\r\n\r\n"
            ).encode() + ticket + (
        f"\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; "
        f"filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode()
    return head + pdf.read_bytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


def site(root: Path) -> tuple[Path, Path]:
    config = write_config(root, workers=None,
                          hotfolders='[hotfolders.rip1]\nkind = "local"\npath = "hot"\n'
                          'filename = "{job_id}.pdf"\n', limits=f"max_file_bytes = {1 << 33}")
    (root / "hot").mkdir(parents=True, exist_ok=True)
    (root / "intake").mkdir(parents=True, exist_ok=True)
    return config, root / "hot"


def submitting(root: Path, jobs: int, mb: int) -> None:
    staged = [make_pdf(root / "staged" / f"S-{n}" / "a.pdf", pages=2, padding=mb << 20,
                       label=f"S-{n}") for n in range(jobs)]
    timings = {}
    for how in ("intake", "api", "polled", "intake-again", "api-again", "polled-again"):
        config, hot = site(root / how)
        port = with_web(config)
        token = cli(config, "token", "add", "bench", "--role", "submitter")
        proc = start(config, "run", root / how / "daemon.log")
        try:
            wait_for(lambda: answers(port), 60, "the daemon and its API")  # noqa: B023
            stop_polling = threading.Event()
            if how.startswith("polled"):
                poll(port, cli(config, "token", "add", "screens", "--role", "viewer"),
                     stop_polling)
            started = time.monotonic()
            if how.startswith(("intake", "polled")):
                for n, pdf in enumerate(staged):
                    job_id = f"B-{n}"
                    (root / how / "intake" / job_id).mkdir()
                    # as a storefront drops a file: it writes the bytes, then the ticket
                    shutil.copyfile(pdf, root / how / "intake" / job_id / "a.pdf")
                    temp = root / how / "intake" / f".{job_id}.json.tmp"
                    temp.write_text(json.dumps(job_ticket(
                        job_id, [f"{job_id}/a.pdf"], product={"pages": {"min": 1, "max": 4}})))
                    os.replace(temp, root / how / "intake" / f"{job_id}.json")
            else:
                post_all(port, token, staged)
            wait_for(lambda: len(os.listdir(hot)) >= jobs, 1800,  # noqa: B023
                     "every job delivered")
            timings[how] = time.monotonic() - started
        finally:
            stop_polling.set()
            proc.terminate()
            proc.wait()
    intake = statistics.mean([timings["intake"], timings["intake-again"]])
    api = statistics.mean([timings["api"], timings["api-again"]])
    print(f"{jobs} jobs of {mb} MB until InHotFolder (two rounds each, alternating)")
    print(f"  intake folder  {intake:6.1f} s  ({timings['intake']:.1f}, "
          f"{timings['intake-again']:.1f})")
    print(f"  POST /jobs     {api:6.1f} s  ({timings['api']:.1f}, {timings['api-again']:.1f})")
    print(f"  ratio          {api / intake:6.2f}   (target <= 1.3)")
    polled = statistics.mean([timings["polled"], timings["polled-again"]])
    print(f"  intake folder with {POLLERS} API clients polling the list every second: "
          f"{polled:.1f} s ({timings['polled']:.1f}, {timings['polled-again']:.1f}); "
          f"throughput {intake / polled:.2f}x of without (target >= 0.9)")


POLLER = """
import http.client, sys, threading, time
port, token, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def client():
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while True:
        conn.request("GET", "/api/v1/jobs", headers={"Authorization": "Bearer " + token})
        conn.getresponse().read()
        time.sleep(1.0)
for _ in range(count):
    threading.Thread(target=client, daemon=True).start()
time.sleep(3600)
"""


def poll(port: int, token: str, stop: threading.Event) -> None:
    """POLLERS clients in a process of their own (not competing with this one's drops),
    each asking for the job list once a second until `stop`."""
    proc = subprocess.Popen([sys.executable, "-c", POLLER, str(port), token, str(POLLERS)])
    threading.Thread(target=lambda: (stop.wait(), proc.kill(), proc.wait()),
                     daemon=True).start()


def post_all(port: int, token: str, staged: list[Path]) -> None:
    work = iter(enumerate(staged))
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                return
            n, pdf = item
            job_id = f"B-{n}"
            ticket = json.dumps(job_ticket(job_id, [f"{job_id}/a.pdf"],
                                           product={"pages": {"min": 1, "max": 4}})).encode()
            conn.request("POST", "/api/v1/jobs", multipart(ticket, f"{job_id}/a.pdf", pdf),
                         {"Authorization": f"Bearer {token}",
                          "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 201, answer.status

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# -- 3. one large upload -------------------------------------------------------


def large_upload(root: Path, gb: float) -> None:
    config, _ = site(root / "large")
    port = with_web(config)
    token = cli(config, "token", "add", "bench", "--role", "submitter")
    proc = start(config, "web", root / "large" / "web.log")
    size = int(gb * (1 << 30))
    pdf = make_pdf(root / "large" / "small.pdf")
    try:
        wait_for(lambda: answers(port), 60, "outputd web")
        idle = peak_rss_mb(proc.pid)
        ticket = json.dumps(job_ticket("L-1", ["L-1/a.pdf"])).encode()
        head = multipart(ticket, "L-1/a.pdf", pdf).rsplit(pdf.read_bytes(), 1)[0]
        tail = f"\r\n--{BOUNDARY}--\r\n".encode()

        def body() -> Iterator[bytes]:
            yield head
            chunk = b"%PDF-1.7\n" + b"%" * ((1 << 20) - 9)
            sent = 0
            while sent < size:
                piece = chunk[: min(len(chunk), size - sent)]
                sent += len(piece)
                yield piece
            yield tail

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        started = time.monotonic()
        conn.request("POST", "/api/v1/jobs", body(),
                     {"Authorization": f"Bearer {token}",
                      "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                      "Content-Length": str(len(head) + size + len(tail))})
        answer = conn.getresponse()
        answer.read()
        seconds = time.monotonic() - started
        peak = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    print(f"one upload of {gb:g} GB: {answer.status} in {seconds:.1f} s "
          f"({size / seconds / (1 << 20):.0f} MB/s); web process peak RSS {peak:.0f} MB "
          f"(idle {idle:.0f} MB; target < 150 MB)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store-jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--mb", type=int, default=1)
    parser.add_argument("--upload-gb", type=float, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        (root / "reads").mkdir()
        reads(root, args.store_jobs, args.requests)
        submitting(root, args.jobs, args.mb)
        large_upload(root, args.upload_gb)


if __name__ == "__main__":
    main()
