"""The production floor (DESIGN §15) through the real daemon, the CLI and the HTTP API:
station scans, and due dates."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pikepdf

from tests.conftest import DaemonProcess, Site, require_tool
from tests.helpers import job_ticket, make_pdf
from tests.web import Web, submit, token


def test_stations_are_scanned_in_any_order_until_the_order_ships(site: Site, web: Web):
    daemon = DaemonProcess(site)
    try:
        submit(site, "J-1")
        submit(site, "J-2", payment_status="Pending")  # waits: no station may scan it
        site.wait_status("J-1", "InHotFolder", timeout=60)
        # what a reader types: an AIM prefix, the code, a line end
        done = site.cli("scan", "]C0J-1\r\n", "--station", "printed")
        assert done.stdout.strip() == "printed recorded for J-1"
        site.wait_status("J-1", "Printed", timeout=30)
        again = site.cli("scan", "J-1", "--station", "printed")
        assert "already" in again.stdout and again.returncode == 0
        for station, status in (("packing", "InPacking"), ("finishing", "InFinishing")):
            site.cli("scan", "*J-1*", "--station", station)
            site.wait_status("J-1", status, timeout=30)
        refused = site.cli("scan", "J-404", "--station", "printed", check=False)
        assert refused.returncode == 1 and "no job has the code 'J-404'" in refused.stderr
        refused = site.cli("scan", "J-1", "--station", "laminating", check=False)
        assert refused.returncode == 1 and "unknown station 'laminating'" in refused.stderr
        refused = site.cli("scan", "J-2", "--station", "printed", check=False)
        assert refused.returncode == 1 and "J-2 is Ordered" in refused.stderr
        # the station's own token: it scans, and nothing else
        tablet = token(site, "cutting-table", "station")
        status, answer = web.json("POST", "/api/v1/scan", tablet,
                                  {"code": "J-1", "station": "awaiting_parts"})
        assert status == 202 and answer["recorded"] == ["J-1"]
        site.wait_status("J-1", "AwaitingParts", timeout=30)
        assert web.json("POST", "/api/v1/jobs/J-1/events", tablet,
                        {"event": "shipped"})[0] == 403
        assert web.json("POST", "/api/v1/scan", tablet,
                        {"code": "nothing", "station": "printed"})[0] == 404
        site.cli("event", "J-1", "shipped")
        job = site.wait_status("J-1", "CleanUp", timeout=30)
        walked = [h["status"] for h in job["history"]]
        assert walked[walked.index("InHotFolder"):] == [
            "InHotFolder", "Printed", "InPacking", "InFinishing", "AwaitingParts",
            "Shipped", "CleanUp"]
        assert [h["message"] for h in job["history"] if h["status"] == "Printed"] == [
            "scanned at printed"]
        assert site.cli("scan", "J-1", "--station", "printed", check=False).returncode == 1
    finally:
        daemon.stop()


def test_among_equal_priorities_the_order_due_first_is_worked_first(tmp_path: Path):
    site = Site(tmp_path / "site", workers=1)  # one worker: the order of picks shows
    for job_id, due in (("J-LATER", "2031-01-01T00:00:00Z"), ("J-NONE", None),
                        ("J-SOON", "2030-01-01T00:00:00+01:00")):
        submit(site, job_id, due_at=due)
    daemon = DaemonProcess(site)
    try:
        for job_id in ("J-LATER", "J-NONE", "J-SOON"):
            site.wait_status(job_id, "InHotFolder", timeout=60)
    finally:
        daemon.stop()
    order = json.loads(site.cli("jobs", "--json").stdout)
    firsts = {j["job_id"]: min(h["at"] for h in j["history"] if h["status"] ==
                               "ValidationFinished") for j in (site.show(o["job_id"])
                                                               for o in order)}
    assert sorted(firsts, key=firsts.__getitem__) == ["J-SOON", "J-LATER", "J-NONE"]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _lates(site: Site, job_id: str) -> list[dict[str, Any]]:
    return [h for h in site.show(job_id)["history"] if h["status"] == "Late"]


def test_a_job_is_noted_late_once_on_time_and_never_when_delivered_in_time(site: Site):
    now = time.time()
    submit(site, "J-WAITS", payment_status="Pending", due_at=_iso(now + 5))
    submit(site, "J-IN-TIME", due_at=_iso(now + 25))
    daemon = DaemonProcess(site)
    try:
        site.wait_status("J-IN-TIME", "InHotFolder", timeout=20)  # before its due time
        [late] = site.wait_for(lambda: _lates(site, "J-WAITS"), timeout=30,
                               what="the Late note")
        at = datetime.fromisoformat(late["at"].replace("Z", "+00:00")).timestamp()
        assert now + 5 <= at < now + 5 + 5, at - now  # on time, give or take the machine
        assert late["by"] == "outputd" and "not yet in a hot folder" in late["message"]
        assert site.show("J-WAITS")["status"] == "Ordered"  # a note: the status stays
        status = json.loads(site.cli("status", "--json").stdout)
        assert status["late"] == 1
        assert [j["job_id"] for j in site.jobs("--late")] == ["J-WAITS"]
    finally:
        daemon.stop()
    # due while no daemon runs: noted when one starts, and the first note not again
    submit(site, "J-DOWN", payment_status="Pending", due_at=_iso(time.time() + 1))
    site.wait_for(lambda: time.time() > now + 27, timeout=40, what="J-IN-TIME's due time")
    daemon = DaemonProcess(site)
    try:
        site.wait_for(lambda: _lates(site, "J-DOWN"), timeout=30, what="J-DOWN's Late note")
        # a job due later is noted by a later check: the earlier ones are not noted again
        submit(site, "J-MARK", payment_status="Pending", due_at=_iso(time.time() + 1))
        site.wait_for(lambda: _lates(site, "J-MARK"), timeout=30, what="a later check")
    finally:
        daemon.stop()
    assert len(_lates(site, "J-WAITS")) == 1 and len(_lates(site, "J-DOWN")) == 1
    assert _lates(site, "J-IN-TIME") == []


SHEETS = (
    '[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\nfilename = "{order_id}_{job_id}.pdf"\n'
    'ticket = "json"\njob_sheet = "prepend"\n\n'
    '[hotfolders.rip2]\nkind = "local"\npath = "hot/rip2"\nfilename = "{order_id}_{job_id}.pdf"\n'
    'job_sheet = "separate"\n')
BOTH = '[[routes]]\nmatch = {}\nto = ["rip1", "rip2"]\n'


def _scanned(pdf: Path, tmp: Path) -> str:
    """What a barcode reader reads off page 1 printed at 300 dpi."""
    image = tmp / f"{pdf.stem}-scan"
    subprocess.run([require_tool("pdftoppm"), "-png", "-r", "300", "-f", "1", "-l", "1",
                    "-singlefile", str(pdf), str(image)], check=True)
    done = subprocess.run([require_tool("zbarimg"), "--raw", "-q", "-Sdisable",
                           "-Scode128.enable", f"{image}.png"], capture_output=True, text=True)
    return done.stdout.strip()


def _text(pdf: Path, page: int = 1) -> str:
    return subprocess.run([require_tool("pdftotext"), "-f", str(page), "-l", str(page),
                           str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_job_sheets_go_before_the_output_or_beside_it_as_each_hot_folder_asks(
        tmp_path: Path):
    site = Site(tmp_path / "site", hotfolders=SHEETS, routes=BOTH)
    submit(site, "J-1", due_at="2030-01-02T15:00:00Z")
    card = job_ticket("J-CARD", ["J-CARD/a.pdf"], product={
        "sku": "CARD", "name": "Business card", "trim": {"width_mm": 85, "height_mm": 55},
        "bleed_mm": 3})
    make_pdf(site.intake / "J-CARD" / "a.pdf", pages=2, width_mm=91, height_mm=61)
    (site.root / "card.json").write_text(json.dumps(card))
    site.cli("submit", str(site.root / "card.json"))
    daemon = DaemonProcess(site)
    try:
        job = site.wait_status("J-1", "InHotFolder", timeout=90)
        site.wait_status("J-CARD", "InHotFolder", timeout=90)
    finally:
        daemon.stop()
    rip1, rip2 = site.root / "hot" / "rip1", site.root / "hot" / "rip2"
    assert sorted(p.name for p in rip1.iterdir()) == [
        "5001_J-1.json", "5001_J-1.pdf", "5001_J-CARD.json", "5001_J-CARD.pdf",
        "5001_J-CARD_sheet.pdf"]  # a card is too small for a sheet before it
    assert sorted(p.name for p in rip2.iterdir()) == [
        "5001_J-1.pdf", "5001_J-1_sheet.pdf", "5001_J-CARD.pdf", "5001_J-CARD_sheet.pdf"]
    output = rip2 / "5001_J-1.pdf"  # separate: the output as made
    assert [o["sha256"] for o in job["outputs"]] == [hashlib.sha256(output.read_bytes())
                                                     .hexdigest()]
    # prepend: one page more, the sheet first, at the output's page size and boxes
    with pikepdf.open(rip1 / "5001_J-1.pdf") as sent, pikepdf.open(output) as made:
        assert len(sent.pages) == len(made.pages) + 1
        for box in ("mediabox", "trimbox", "bleedbox"):
            assert [float(v) for v in getattr(sent.pages[0], box)] == \
                [float(v) for v in getattr(made.pages[0], box)], box
        assert sent.pages[1].Contents.read_bytes() == made.pages[0].Contents.read_bytes()
    assert _scanned(rip1 / "5001_J-1.pdf", tmp_path) == "J-1"
    page1 = _text(rip1 / "5001_J-1.pdf")
    for value in ("J-1", "5001", "acme", "jdoe@example.com", "A5 flyer", "FLYER-A5", "250",
                  "2030-01-02 15:00 UTC", "130gsm silk"):
        assert value in page1, value
    # separate: an A4 sheet beside the output
    with pikepdf.open(rip2 / "5001_J-1_sheet.pdf") as sheet:
        assert len(sheet.pages) == 1
        assert [round(float(v)) for v in sheet.pages[0].mediabox] == [0, 0, 595, 842]
    assert _scanned(rip2 / "5001_J-1_sheet.pdf", tmp_path) == "J-1"
    assert _scanned(rip1 / "5001_J-CARD_sheet.pdf", tmp_path) == "J-CARD"
    with pikepdf.open(rip1 / "5001_J-CARD.pdf") as sent:
        assert len(sent.pages) == 2
    delivered = {(d["hotfolder"], Path(d["path"]).name): d["state"]
                 for d in site.show("J-1")["deliveries"]}
    assert delivered == {("rip1", "5001_J-1.pdf"): "delivered",
                         ("rip1", "5001_J-1.json"): "delivered",
                         ("rip2", "5001_J-1.pdf"): "delivered",
                         ("rip2", "5001_J-1_sheet.pdf"): "delivered"}
    # the sidecar names the file the RIP gets
    assert json.loads((rip1 / "5001_J-1.json").read_text())["files"] == ["5001_J-1.pdf"]
