"""The real `outputd run` as a subprocess: intake to hot folder, rejects, clean-up, stop."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]


def test_twenty_static_jobs_reach_the_hot_folder_byte_identical(site: Site, daemon_factory):
    daemon = daemon_factory()
    expected = {}
    for n in range(20):
        job_id = f"J-{n:03d}"
        pdf = make_pdf(site.intake / job_id / "art.pdf", label=job_id)
        expected[f"5001_{job_id}_FLYER-A5_q250.pdf"] = sha(pdf)
    for n in range(20):
        drop_ticket(site.intake, job_ticket(f"J-{n:03d}", [f"J-{n:03d}/art.pdf"]))
    site.wait_for(lambda: len(site.jobs("--status", "InHotFolder")) == 20, timeout=60,
                  what="20 jobs InHotFolder")
    delivered = {p.name: sha(p) for p in site.hot.iterdir()}
    assert delivered == expected
    assert temp_files(site.hot) == []
    assert sorted(p.name for p in site.intake.iterdir()) == ["rejected"]
    job = site.show("J-007")
    assert [d["state"] for d in job["deliveries"]] == ["delivered"]
    assert job["outputs"][0]["sha256"] == expected["5001_J-007_FLYER-A5_q250.pdf"]
    assert [h["status"] for h in job["history"]] == [
        "Ordered", "ValidationFinished", "OutputCreationStarted", "OutputCreated", "InHotFolder"]
    assert daemon.stop() == 0


def test_wrong_size_pdf_fails_validation_and_reaches_no_hot_folder(site: Site, daemon_factory):
    daemon_factory()
    make_pdf(site.intake / "J-A4" / "art.pdf", width_mm=210, height_mm=297, bleed_mm=0)
    drop_ticket(site.intake, job_ticket("J-A4", ["J-A4/art.pdf"]))
    job = site.wait_status("J-A4", "ValidationFailed")
    failed = [c for c in job["preflight"]["checks"] if not c["ok"]]
    assert failed[0]["check"] == "page_size"
    assert "210.0 × 297.0 mm" in failed[0]["message"]
    assert "148.0 × 210.0 mm with 3.0 mm bleed" in failed[0]["message"]
    assert not site.hot.exists() or list(site.hot.iterdir()) == []
    shown = site.cli("show", "J-A4").stdout
    assert "    page_size [pages 1-2]: " in shown


def test_bad_tickets_are_set_aside_while_good_jobs_go_on(site: Site, daemon_factory):
    daemon = daemon_factory()
    (site.intake / "broken.json").write_text('{"schema": "outputd.job/1", ')
    unknown = job_ticket("J-U", ["J-U/art.pdf"], colour="blue")
    make_pdf(site.intake / "J-U" / "art.pdf")
    drop_ticket(site.intake, unknown)
    escape = job_ticket("J-E", ["../outside.pdf"])
    drop_ticket(site.intake, escape)
    make_pdf(site.intake / "J-OK" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-OK", ["J-OK/art.pdf"]))

    rejected = site.intake / "rejected"
    for name, words in (("broken.json", "not valid JSON"), ("J-U.json", "colour"),
                        ("J-E.json", "leaves the intake folder")):
        error_file = rejected / f"{name}.error.json"
        site.wait_for(error_file.exists, what=f"{error_file}")
        error = json.loads(error_file.read_text())
        assert set(error) == {"ticket", "error", "at"}
        assert error["ticket"] == name
        assert words in error["error"]
        assert (rejected / name).exists()
    assert (rejected / "J-U" / "art.pdf").exists()  # the files it names go with it
    site.wait_status("J-OK", "InHotFolder")
    assert daemon.proc.poll() is None
    assert sorted(p.name for p in site.intake.iterdir()) == ["rejected"]


def test_shipping_an_order_cleans_up_every_job_within_two_seconds(site: Site, daemon_factory):
    daemon_factory()
    for job_id, order in (("J-1", "7001"), ("J-2", "7001"), ("J-3", "7001"), ("J-4", "7002")):
        make_pdf(site.intake / job_id / "art.pdf")
        drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"], order_id=order))
    for job_id in ("J-1", "J-2", "J-3", "J-4"):
        site.wait_status(job_id, "InHotFolder")
    work = site.state / "work"
    assert (work / "J-1").exists()
    started = time.monotonic()
    site.cli("event", "--order", "7001", "shipped")
    for job_id in ("J-1", "J-2", "J-3"):
        site.wait_status(job_id, "CleanUp", timeout=2.0 - (time.monotonic() - started))
        assert not (work / job_id).exists()
    assert time.monotonic() - started < 2.0
    job = site.show("J-2")
    assert [h["status"] for h in job["history"]][-2:] == ["Shipped", "CleanUp"]
    assert job["history"][-2]["by"] not in ("", "outputd")  # who asked is recorded
    assert site.show("J-4")["status"] == "InHotFolder"
    assert (site.state / "sources" / "J-1" / "ticket.json").exists()  # kept for reopen


def test_event_ticket_in_the_intake_cleans_up_the_job(site: Site, daemon_factory):
    daemon_factory()
    make_pdf(site.intake / "J-9" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-9", ["J-9/art.pdf"]))
    site.wait_status("J-9", "InHotFolder")
    event = {"schema": "outputd.event/1", "job_id": "J-9", "event": "completed", "by": "mis"}
    drop_ticket(site.intake, event, name="done-J-9.json")
    job = site.wait_status("J-9", "CleanUp", timeout=5)
    assert job["history"][-2]["status"] == "Completed"
    assert job["history"][-2]["by"] == "mis"


def test_sigterm_stops_cleanly_and_a_restart_resumes(site: Site, daemon_factory):
    daemon = daemon_factory()
    make_pdf(site.intake / "J-T" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-T", ["J-T/art.pdf"]))
    site.wait_status("J-T", "InHotFolder")
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "daemon.stopped" in site.log.read_text()
    # Work dropped while it is down is picked up at the next start.
    make_pdf(site.intake / "J-U" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-U", ["J-U/art.pdf"]))
    daemon_factory()
    site.wait_status("J-U", "InHotFolder")


@pytest.mark.slow
def test_a_kill_mid_delivery_resumes_without_a_duplicate(site: Site, daemon_factory):
    big = 400 << 20
    site.config.write_text(site.config.read_text().replace(
        "[limits]\n", f"[limits]\nmax_file_bytes = {big * 2}\n"))
    pdf = make_pdf(site.intake / "J-BIG" / "art.pdf", padding=big)
    digest = sha(pdf)
    daemon = daemon_factory()
    drop_ticket(site.intake, job_ticket("J-BIG", ["J-BIG/art.pdf"]))
    part = site.hot / ".5001_J-BIG_FLYER-A5_q250.pdf.part"
    site.wait_for(part.exists, timeout=60, what="the delivery to start")
    daemon.kill()
    final = site.hot / "5001_J-BIG_FLYER-A5_q250.pdf"
    assert not final.exists() or sha(final) == digest  # never a partial final file
    daemon_factory()
    site.wait_status("J-BIG", "InHotFolder", timeout=60)
    assert sorted(os.listdir(site.hot)) == ["5001_J-BIG_FLYER-A5_q250.pdf"]
    assert sha(final) == digest
    history = [h["status"] for h in site.show("J-BIG")["history"]]
    assert history.count("InHotFolder") == 1


def test_a_second_daemon_with_its_own_store_is_refused_the_intake(site: Site, daemon_factory,
                                                                   tmp_path: Path):
    daemon = daemon_factory()
    # Another SQLite daemon (its own state folder, so its own store) on the same intake
    # would split orders between two stores: it must not start.
    other = Site(tmp_path / "other")
    other.config.write_text(other.config.read_text().replace(
        'intake_dir = "intake"', f'intake_dir = "{site.intake}"'))
    refused = subprocess.run(
        [sys.executable, "-m", "outputd", "run", "--config", str(other.config)],
        capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1
    assert f"the intake folder {site.intake} is in use by another outputd" in refused.stderr

    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))  # the first goes on
    site.wait_status("J-1", "InHotFolder")
    assert daemon.stop() == 0
    # Once the first has stopped, the intake is free again.
    second = DaemonProcess(other)
    try:
        assert second.proc.poll() is None
    finally:
        assert second.stop() == 0


def pdf_processes(parent: int) -> int:
    """PDF processes of `parent`, started or starting."""
    count = 0
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            count += (entry.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == parent
                      and b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes())
        except (OSError, ValueError, IndexError):
            continue
    return count


def test_ctrl_c_at_a_terminal_stops_every_process_quietly(site: Site):
    # Ctrl-C sends SIGINT to the whole foreground process group, PDF processes included,
    # also while they are still starting up (importing), right after READY.
    with open(site.log, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "outputd", "run", "--config", str(site.config)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        site.wait_for(lambda: "daemon.ready" in site.log.read_text(), timeout=30,
                      what="the daemon to be ready")
        assert pdf_processes(proc.pid) == 2  # the signal reaches them too
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = site.log.read_text()
    assert "daemon.stopped" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
