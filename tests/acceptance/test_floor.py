"""The production floor (DESIGN §15) through the real daemon, the CLI and the HTTP API:
station scans, and due dates."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import DaemonProcess, Site
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
