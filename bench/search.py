"""How fast `outputd jobs --search` and `outputd show` answer with 100,000 jobs in SQLite.

Builds a store of N jobs (5 history entries, one output and one delivery each), then
times, alternating, the real commands and a baseline process that runs the same query
with nothing but Python's sqlite3 module. Reports medians and the ratio.

    python bench/search.py [--jobs 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from outputd.config import load_config
from outputd.model import JobFilter
from outputd.ops.view import job_object
from outputd.store import open_store

CONFIG = """
[daemon]
state_dir = "state"
intake_dir = "intake"
[hotfolders.rip1]
kind = "local"
path = "hot"
filename = "{job_id}.pdf"
[[routes]]
to = ["rip1"]
"""
STATUSES = ["Ordered", "ValidationFinished", "OutputCreationStarted", "OutputCreated",
            "InHotFolder"]


def build(root: Path, count: int) -> Path:
    config_path = root / "outputd.toml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    store = open_store(config.store.url)
    base = json.loads((Path(__file__).parent / "ticket.json").read_text())
    now = time.time()
    with store.engine.transaction() as cur:
        for n in range(count):
            job_id = f"J-{n:06d}"
            email = f"user{n}@shop{n % 97}.example"
            ticket = dict(base, job_id=job_id, order_id=str(500000 + n // 3),
                          customer={"username": f"user{n}", "email": email})
            at = now - (count - n)
            cur.execute(
                "INSERT INTO jobs (job_id, order_id, storefront, test_mode, product_type, sku,"
                " quantity, username, email, status, payment_status, approval, priority,"
                " ticket, ticket_sha256, due_at, created_at, updated_at)"
                " VALUES (?, ?, 'acme', 0, 'static', 'FLYER-A5', 250, ?, ?, 'InHotFolder',"
                " 'Paid', 'NotRequired', 0, ?, '', NULL, ?, ?)",
                (job_id, ticket["order_id"], f"user{n}", ticket["customer"]["email"],
                 json.dumps(ticket), at, at),
            )
            for i, status in enumerate(STATUSES):
                cur.execute("INSERT INTO history (job_id, at, status, message, by)"
                            " VALUES (?, ?, ?, 'bench', 'outputd')", (job_id, at + i, status))
            cur.execute("INSERT INTO outputs (job_id, name, path, bytes, sha256, pages)"
                        " VALUES (?, ?, '/x', 1000, 'ab', 2)", (job_id, f"{job_id}.pdf"))
            cur.execute("INSERT INTO deliveries (job_id, hotfolder, output, path, state)"
                        " VALUES (?, 'rip1', ?, '/hot/x.pdf', 'delivered')",
                        (job_id, f"{job_id}.pdf"))
    store.close()
    return config_path


BASELINE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
like = "%" + sys.argv[2] + "%"
rows = db.execute("SELECT * FROM jobs WHERE job_id LIKE ? OR order_id LIKE ? OR username LIKE ?"
                  " OR email LIKE ? ORDER BY created_at DESC LIMIT 500",
                  (like, like, like, like)).fetchall()
for r in rows:
    db.execute("SELECT * FROM history WHERE job_id = ? ORDER BY id", (r[0],)).fetchall()
print(len(rows))
"""

BASELINE_SHOW = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
job = db.execute("SELECT * FROM jobs WHERE job_id = ?", (sys.argv[2],)).fetchone()
for table in ("history", "outputs", "deliveries"):
    db.execute(f"SELECT * FROM {table} WHERE job_id = ?", (sys.argv[2],)).fetchall()
print(job[0])
"""


def wall(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        config_path = build(root, args.jobs)
        print(f"built a store of {args.jobs} jobs in {time.perf_counter() - started:.1f} s")
        config = load_config(config_path)
        db = str(config.sqlite_path)
        email = f"user{args.jobs // 2}@shop{(args.jobs // 2) % 97}.example"
        job_id = f"J-{args.jobs // 2:06d}"
        store = open_store(config.store.url)
        in_process = {"search": [], "show": []}
        commands = {"search": [], "show": [], "baseline": [], "baseline_show": []}
        cli = [sys.executable, "-m", "outputd", "--config", str(config_path)]
        for _ in range(args.rounds):
            t = time.perf_counter()
            found = store.jobs.matching(JobFilter(search=email, limit=500))
            [job_object(store, j) for j in found]
            in_process["search"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            job_object(store, store.jobs.get(job_id))
            in_process["show"].append((time.perf_counter() - t) * 1000)
            commands["search"].append(wall(cli + ["jobs", "--search", email, "--json"]))
            commands["show"].append(wall(cli + ["show", job_id, "--json"]))
            commands["baseline"].append(wall([sys.executable, "-c", BASELINE, db, email]))
            commands["baseline_show"].append(
                wall([sys.executable, "-c", BASELINE_SHOW, db, job_id]))
        med = {k: statistics.median(v) for k, v in {**commands,
               "search_query": in_process["search"], "show_query": in_process["show"]}.items()}
        print(f"jobs={args.jobs} rounds={args.rounds} (medians, ms)")
        print(f"  outputd jobs --search (command)   {med['search']:8.1f}")
        print(f"  outputd show (command)            {med['show']:8.1f}")
        print(f"  baseline: python+sqlite3 search  {med['baseline']:8.1f}")
        print(f"  baseline: python+sqlite3 show    {med['baseline_show']:8.1f}")
        print(f"  ratio search/baseline             {med['search'] / med['baseline']:8.2f}")
        print(f"  ratio show/baseline               {med['show'] / med['baseline_show']:8.2f}")
        print(f"  store search + job objects        {med['search_query']:8.1f}")
        print(f"  store show + job object           {med['show_query']:8.1f}")
        startup = wall([sys.executable, "-c", "import outputd.cli.main"])
        print(f"  import outputd.cli.main alone     {startup:8.1f}")


if __name__ == "__main__":
    main()
