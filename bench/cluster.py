"""Throughput of 1, 2 and 3 daemons sharing one PostgreSQL queue.

Drops N small static jobs into a shared intake folder with the daemons already running,
and measures jobs per second from the first drop to the last InHotFolder. Alternates
1, 2 and 3 daemons for each round; prints the median per daemon count.

    python bench/cluster.py [--jobs 300] [--rounds 3] [--pg postgresql://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.acceptance.test_cluster import count, node_config, start  # noqa: E402
from tests.helpers import drop_ticket, job_ticket, make_pdf  # noqa: E402


def one_round(admin: str, daemons: int, jobs: int) -> float:
    name = f"outputd_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"{admin.rsplit('/', 1)[0]}/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            shared = root / "shared"
            (shared / "intake").mkdir(parents=True)
            configs = [node_config(root, shared, f"node{n}", url) for n in range(daemons)]
            subprocess.run([sys.executable, "-m", "outputd", "status", "--config",
                            str(configs[0])], check=True, capture_output=True)
            staging = root / "staging"
            for n in range(jobs):
                make_pdf(staging / f"B-{n}" / "art.pdf")
            procs = [start(c) for c in configs]
            time.sleep(2)
            started = time.perf_counter()
            for n in range(jobs):
                (staging / f"B-{n}").rename(shared / "intake" / f"B-{n}")
                drop_ticket(shared / "intake", job_ticket(f"B-{n}", [f"B-{n}/art.pdf"]))
            while count(url, "InHotFolder") < jobs:
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    results: dict[int, list[float]] = {1: [], 2: [], 3: []}
    for _ in range(args.rounds):
        for daemons in results:
            results[daemons].append(one_round(args.pg, daemons, args.jobs))
    base = statistics.median(results[1])
    print(f"{args.jobs} static jobs, {args.rounds} rounds, 2 workers per daemon, 2 cores")
    for daemons, rates in results.items():
        rate = statistics.median(rates)
        print(f"  {daemons} daemon(s): {rate:6.1f} jobs/s  ({rate / base:.2f}x one daemon; "
              "rounds: " + ", ".join(f"{r:.0f}" for r in rates) + ")")


if __name__ == "__main__":
    main()
