"""The print operations board's figures, side by side with their baselines in one run.

1. The jobs page with a large store (default view, and a search), p50 and p99 from a
   logged-in client on loopback and the server's own time (its `web.request ms=`), and
   the HTML's size; beside them `GET /api/v1/jobs` with the same page size.
2. A status change to an open job page in headless Chromium: from the daemon's history
   entry to the page showing the new status, p50 and p99.
3. A page-1 thumbnail of a 200-page, 100 MB PDF: the time and peak memory of the
   renderer, pdftoppm (what outputd uses) beside pypdfium2 when it is installed.

    python bench/board.py [--store-jobs 100000] [--requests 200] [--changes 20]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pikepdf  # noqa: E402
from api import answers, cli, pct, start, wait_for, with_web  # noqa: E402
from search import build  # noqa: E402

PASSWORD = "a long password 1"


def log_in(port: int, user: str) -> str:
    """The Cookie header of a new board session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/login")
    answer = conn.getresponse()
    page = answer.read().decode()
    login_cookie = answer.getheader("Set-Cookie", "").split(";")[0]
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    conn.request("POST", "/login", urlencode({"username": user, "password": PASSWORD,
                                              "csrf_token": csrf}),
                 {"Content-Type": "application/x-www-form-urlencoded",
                  "Cookie": login_cookie})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 303, answer.status
    return answer.getheader("Set-Cookie", "").split(";")[0]


def server_ms(log: Path, path: str) -> list[float]:
    pattern = re.compile(rf"web\.request .*ms=(\d+).*path={re.escape(path)}( |$)")
    return [float(m.group(1)) for line in log.read_text().splitlines()
            if (m := pattern.search(line))]


def jobs_page(root: Path, store_jobs: int, requests: int) -> None:
    (root / "page").mkdir()
    config = build(root / "page", store_jobs)
    port = with_web(config)
    cli(config, "user", "add", "ann", "--role", "operator", "--password-stdin",
        input_=PASSWORD + "\n")
    token = cli(config, "token", "add", "bench", "--role", "viewer")
    log = root / "page" / "web.log"
    proc = start(config, "web", log)
    try:
        wait_for(lambda: answers(port), 60, "outputd web")
        cookie = log_in(port, "ann")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def get(path: str, headers: dict[str, str]) -> tuple[float, int]:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            answer = conn.getresponse()
            body = answer.read()
            assert answer.status == 200, (answer.status, body[:200])
            return (time.perf_counter() - started) * 1000, len(body)

        print(f"the jobs page with {store_jobs} jobs in the store, {requests} requests each")
        for name, path, headers in (
                ("/ (default view)", "/", {"Cookie": cookie}),
                ("/?search=user4242", "/?search=user4242", {"Cookie": cookie}),
                ("GET /api/v1/jobs?limit=50", "/api/v1/jobs?limit=50",
                 {"Authorization": f"Bearer {token}"})):
            get(path, headers)
            timed = [get(path, headers) for _ in range(requests)]
            ms = [t for t, _ in timed]
            server = server_ms(log, path.split("?")[0])[-requests:]
            print(f"  {name:<28} client p50 {pct(ms, .5):6.1f} p99 {pct(ms, .99):6.1f} ms; "
                  f"server p50 {pct(server, .5):5.0f} p99 {pct(server, .99):5.0f} ms; "
                  f"{timed[0][1] / 1024:.0f} KB")
    finally:
        proc.terminate()
        proc.wait()


def live_changes(root: Path, changes: int) -> None:
    from playwright.sync_api import sync_playwright

    from tests.conftest import DaemonProcess, Site
    from tests.web import Web, submit

    site = Site(root / "live")
    web = Web(site)
    daemon = DaemonProcess(site)
    site.cli("user", "add", "ann", "--role", "operator", "--password-stdin",
             stdin=PASSWORD + "\n")
    latencies = []
    try:
        submit(site, "J-1", payment_status="Pending")  # it waits: hold and release it
        site.wait_for(lambda: "payment" in (site.show("J-1")["waiting"] or ""), timeout=60)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--no-sandbox"])
            page = browser.new_page()
            base = f"http://127.0.0.1:{web.port}"
            page.goto(base + "/login")
            page.fill("input[name=username]", "ann")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Log in')")
            page.goto(base + "/jobs/J-1")
            for n in range(changes):
                event, status = ("hold", "Blocked") if n % 2 == 0 else ("release",
                                                                        "Ordered")
                site.cli("event", "J-1", event)
                page.wait_for_selector(f"h1 .status:has-text('{status}')", timeout=30_000)
                seen = time.time()
                entry = [h for h in site.show("J-1")["history"] if h["status"] == status][-1]
                at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
                latencies.append(seen - at)
            browser.close()
    finally:
        daemon.stop()
        web.stop()
    print(f"a status change to the open job page, {changes} changes (s, from the "
          f"history entry to the page): p50 {pct(latencies, .5):.2f}, "
          f"p99 {pct(latencies, .99):.2f}, max {max(latencies):.2f}")


PDFIUM = """
import sys, resource, time
import pypdfium2 as pdfium
started = time.perf_counter()
pdf = pdfium.PdfDocument(sys.argv[1])
page = pdf[0]
scale = 300 / page.get_width()
page.render(scale=scale).to_pil().save(sys.argv[2])
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

MEASURED = """
import resource, subprocess, sys, time
started = time.perf_counter()
subprocess.run(sys.argv[1:], check=True)
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def thumbnail(root: Path) -> None:
    path = root / "big.pdf"
    pdf = pikepdf.new()
    for _ in range(200):  # each page an incompressible 500 KB CMYK image
        data = os.urandom(500 * 1024 - 500 * 1024 % 4)
        side = int((len(data) // 4) ** 0.5)
        image = pdf.make_stream(data[:side * side * 4])
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width = image.Height = side
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceCMYK, 8
        page = pdf.add_blank_page(page_size=(420, 595))
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.obj.Contents = pdf.make_stream(b"q 420 0 0 595 0 0 cm /Im0 Do Q")
    pdf.save(path)
    size_mb = path.stat().st_size / (1 << 20)
    out = root / "thumb"
    runs = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", MEASURED, "pdftoppm", "-png", "-f", "1", "-l", "1",
             "-scale-to-x", "300", "-scale-to-y", "-1", "-singlefile", str(path), str(out)],
            capture_output=True, text=True, check=True)
        seconds, kb = done.stdout.split()
        runs.append((float(seconds), int(kb)))
    print(f"page-1 thumbnail (300 px) of a 200-page {size_mb:.0f} MB PDF:")
    print(f"  pdftoppm   {min(r[0] for r in runs) * 1000:6.0f} ms, peak RSS "
          f"{max(r[1] for r in runs) / 1024:.0f} MB (best of 3)")
    try:
        import pypdfium2  # noqa: F401
    except ImportError:
        print("  pypdfium2  not installed (pip install pypdfium2 pillow to compare)")
        return
    runs = []
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", PDFIUM, str(path), str(out) + ".png"],
                              capture_output=True, text=True, check=True)
        seconds, kb = done.stdout.split()
        runs.append((float(seconds), int(kb)))
    print(f"  pypdfium2  {min(r[0] for r in runs) * 1000:6.0f} ms, peak RSS "
          f"{max(r[1] for r in runs) / 1024:.0f} MB (best of 3; the whole Python process)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store-jobs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        root = Path(tmp)
        jobs_page(root, args.store_jobs, args.requests)
        live_changes(root, args.changes)
        thumbnail(root)


if __name__ == "__main__":
    main()
