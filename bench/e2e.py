"""End-to-end speed: static jobs through a running daemon into a local hot folder,
against a baseline doing only the unavoidable work in one Python process.

For each round: (outputd) N tickets are dropped into the intake of a running daemon;
throughput is first drop to last InHotFolder, latency is each ticket's rename into the
intake to its final file's appearance in the hot folder (inotify), and the daemon's CPU
seconds and peak RSS are read from /proc. (baseline) the same N files are opened and
checked with pikepdf, copied to a temp name, fsynced and renamed, one after another.
Rounds alternate; the ratio is outputd/baseline throughput.

Also: single-job latency into an idle daemon, idle CPU, and start-up to READY with a
large store.

    python bench/e2e.py [--jobs 2000] [--kb 1024] [--rounds 3] [--idle-jobs 50]
                        [--store-jobs 100000] [--foreign]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pikepdf
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import job_ticket, make_pdf, write_config  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
NOBODY = 65534


class Arrivals(FileSystemEventHandler):
    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.lock = threading.Lock()

    def on_moved(self, event: FileSystemEvent) -> None:
        name = os.path.basename(os.fsdecode(event.dest_path))
        if not name.startswith("."):
            with self.lock:
                self.times.setdefault(name, time.monotonic())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_daemon(config: Path, notify: str) -> tuple[subprocess.Popen[bytes], float]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify)
    sock.settimeout(60)
    started = time.monotonic()
    log = open(config.parent / "daemon.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "outputd", "run", "--config", str(config)],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "NOTIFY_SOCKET": notify})
    while b"READY=1" not in sock.recv(4096):
        pass
    ready = time.monotonic() - started
    sock.close()
    return proc, ready


def prepare(root: Path, jobs: int, kb: int) -> list[Path]:
    staging = root / "staging"
    files = []
    for n in range(jobs):
        files.append(make_pdf(staging / f"E-{n}" / "art.pdf", pages=2, padding=kb << 10,
                              label=f"E-{n}"))
    return files


def outputd_round(root: Path, jobs: int, files: list[Path], tag: str) -> dict[str, float]:
    """Each file is dropped as a hard link to a staged file. Staged files are the
    bench's user's (outputd's, not group-writable): outputd moves them into its sources.
    With --foreign they belong to another user: outputd copies them."""
    site = root / f"site-{tag}"
    config = write_config(site, workers=None,  # the shipped default
                          hotfolders='[hotfolders.rip1]\nkind = "local"\n'
                          'path = "hot"\nfilename = "{job_id}.pdf"\n',
                          limits=f"max_file_bytes = {1 << 32}")
    (site / "intake").mkdir(parents=True, exist_ok=True)
    (site / "hot").mkdir(parents=True, exist_ok=True)
    proc, _ = start_daemon(config, str(site / "notify.sock"))
    arrivals = Arrivals()
    observer = Observer()
    observer.schedule(arrivals, str(site / "hot"))
    observer.start()
    cpu_before = cpu_seconds(proc.pid)
    dropped: dict[str, float] = {}
    started = time.monotonic()
    for n, pdf in enumerate(files):
        job_id = f"E-{n}"
        folder = site / "intake" / job_id
        folder.mkdir()
        os.link(pdf, folder / "art.pdf")
        ticket = job_ticket(job_id, [f"{job_id}/art.pdf"],
                            product={"pages": {"min": 1, "max": 4}})
        temp = site / "intake" / f".{job_id}.json.tmp"
        temp.write_text(json.dumps(ticket))
        os.replace(temp, site / "intake" / f"{job_id}.json")
        dropped[f"{job_id}.pdf"] = time.monotonic()
    while len(arrivals.times) < jobs:
        time.sleep(0.01)
    elapsed = max(arrivals.times.values()) - started
    cpu = cpu_seconds(proc.pid) - cpu_before
    rss = peak_rss_mb(proc.pid)
    observer.stop()
    proc.terminate()
    proc.wait()
    latencies = sorted(arrivals.times[k] - dropped[k] for k in dropped)
    return {"jobs_s": jobs / elapsed, "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000, "cpu_s": cpu,
            "rss_mb": rss}


def baseline_round(root: Path, files: list[Path], tag: str) -> float:
    hot = root / f"base-{tag}"
    hot.mkdir()
    started = time.monotonic()
    for n, pdf in enumerate(files):
        with pikepdf.open(pdf) as doc:
            assert len(doc.pages) == 2
            _ = [page.mediabox for page in doc.pages]
        temp = hot / f".E-{n}.pdf.part"
        with open(pdf, "rb") as src, open(temp, "wb") as dst:
            size = os.fstat(src.fileno()).st_size
            done = 0
            while done < size:
                done += os.copy_file_range(src.fileno(), dst.fileno(), size - done)
            os.fsync(dst.fileno())
        os.replace(temp, hot / f"E-{n}.pdf")
        fd = os.open(hot, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(fd)
        os.close(fd)
    return len(files) / (time.monotonic() - started)


def idle_latency(root: Path, count: int) -> dict[str, float]:
    site = root / "idle"
    config = write_config(site, workers=None,
                          hotfolders='[hotfolders.rip1]\nkind = "local"\n'
                          'path = "hot"\nfilename = "{job_id}.pdf"\n')
    (site / "hot").mkdir(parents=True)
    proc, _ = start_daemon(config, str(site / "notify.sock"))
    arrivals = Arrivals()
    observer = Observer()
    observer.schedule(arrivals, str(site / "hot"))
    observer.start()
    time.sleep(2)
    latencies = []
    for n in range(count):
        job_id = f"I-{n}"
        make_pdf(site / "intake" / job_id / "art.pdf")
        temp = site / "intake" / f".{job_id}.json.tmp"
        temp.write_text(json.dumps(job_ticket(job_id, [f"{job_id}/art.pdf"])))
        time.sleep(0.3)  # idle again before each drop
        dropped = time.monotonic()
        os.replace(temp, site / "intake" / f"{job_id}.json")
        while f"{job_id}.pdf" not in arrivals.times:
            time.sleep(0.001)
        latencies.append((arrivals.times[f"{job_id}.pdf"] - dropped) * 1000)
    cpu0 = cpu_seconds(proc.pid)
    time.sleep(10)
    idle_cpu = (cpu_seconds(proc.pid) - cpu0) / 10 * 100
    observer.stop()
    proc.terminate()
    proc.wait()
    latencies.sort()
    return {"p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)],
            "idle_cpu_pct": idle_cpu}


def startup_with_store(root: Path, jobs: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from search import build

    (root / "big").mkdir()
    config = build(root / "big", jobs)
    text = config.read_text().replace('[hotfolders.rip1]', '[metrics]\nlisten = ""\n\n'
                                      '[hotfolders.rip1]')
    config.write_text(text)
    _proc, ready = start_daemon(config, str(root / "big" / "notify.sock"))
    _proc.terminate()
    _proc.wait()
    return ready


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=1024, help="size of each job's PDF")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-jobs", type=int, default=50)
    parser.add_argument("--store-jobs", type=int, default=100_000)
    parser.add_argument("--foreign", action="store_true",
                        help="drop files another user owns (needs root): outputd copies "
                        "them into its sources instead of moving them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        files = prepare(root, args.jobs, args.kb)
        if args.foreign:
            for pdf in files:
                os.chown(pdf, NOBODY, NOBODY)
        ours, theirs = [], []
        for r in range(args.rounds):
            ours.append(outputd_round(root, args.jobs, files, str(r)))
            theirs.append(baseline_round(root, files, str(r)))
        idle = idle_latency(root, args.idle_jobs)
        ready = startup_with_store(root, args.store_jobs)

    def med(key: str) -> float:
        return statistics.median(o[key] for o in ours)

    base = statistics.median(theirs)
    how = "copied (another user's files)" if args.foreign else "moved (outputd's user's files)"
    print(f"{args.jobs} static jobs × {args.kb} KB, sources {how}, {args.rounds} rounds "
          "(medians)")
    print(f"  outputd   {med('jobs_s'):7.1f} jobs/s  (rounds: "
          + ", ".join(f"{o['jobs_s']:.0f}" for o in ours) + ")")
    print(f"  baseline  {base:7.1f} jobs/s  (rounds: " + ", ".join(f"{t:.0f}" for t in theirs)
          + ")")
    print(f"  ratio     {med('jobs_s') / base:7.2f}")
    print(f"  latency under load p50 {med('p50_ms'):.0f} ms, p99 {med('p99_ms'):.0f} ms; "
          f"daemon CPU {med('cpu_s'):.1f} s ({med('cpu_s') / args.jobs * 1000:.1f} ms a job), "
          f"peak RSS {med('rss_mb'):.0f} MB")
    print(f"single job into an idle daemon ({args.idle_jobs} jobs): p50 {idle['p50_ms']:.0f} ms,"
          f" p99 {idle['p99_ms']:.0f} ms; idle CPU {idle['idle_cpu_pct']:.2f} %")
    print(f"start to READY with {args.store_jobs} jobs in the store: {ready * 1000:.0f} ms")


if __name__ == "__main__":
    main()
