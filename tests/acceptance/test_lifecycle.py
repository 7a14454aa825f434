"""The order lifecycle through the real daemon: gates, future orders, late files,
hold and pause, reopen and recreate, RIP pickup, test data."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import Site
from tests.helpers import drop_ticket, job_ticket, make_pdf

FINAL = "5001_{}_FLYER-A5_q250.pdf"


def drop(site: Site, job_id: str, **changes) -> None:
    make_pdf(site.intake / job_id / "art.pdf", label=job_id)
    drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"], **changes))


def statuses(site: Site, job_id: str) -> list[str]:
    return [h["status"] for h in site.show(job_id)["history"]]


def test_an_unpaid_job_produces_nothing_until_paid(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", payment_status="Pending")
    site.wait_for(lambda: site.jobs("--status", "Ordered"), what="J-1 accepted")
    time.sleep(1.5)
    assert not (site.hot / FINAL.format("J-1")).exists()
    assert "waiting     for payment" in site.cli("show", "J-1").stdout
    site.cli("event", "J-1", "paid")
    job = site.wait_status("J-1", "InHotFolder", timeout=5)
    assert job["payment_status"] == "Paid"
    assert statuses(site, "J-1")[:2] == ["Ordered", "Paid"]


def test_approval_releases_and_rejection_never_delivers(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-A", approval="AwaitingApproval")
    drop(site, "J-R", approval="AwaitingApproval")
    site.wait_status("J-A", "UnapprovedOrder")
    site.wait_status("J-R", "UnapprovedOrder")
    queue = sorted(j["job_id"] for j in site.jobs("--status", "UnapprovedOrder"))
    assert queue == ["J-A", "J-R"]
    site.cli("event", "J-A", "approved")
    site.cli("event", "J-R", "rejected", "--message", "artwork has a typo")
    site.wait_status("J-A", "InHotFolder", timeout=5)
    rejected = site.wait_status("J-R", "Rejected", timeout=5)
    assert rejected["history"][-1]["message"] == "artwork has a typo"
    time.sleep(1)
    assert sorted(os.listdir(site.hot)) == [FINAL.format("J-A")]
    assert site.cli("event", "J-R", "approved", check=False).returncode == 1


@pytest.mark.parametrize("restart", [False, True])
def test_a_future_order_is_delivered_when_due(site: Site, daemon_factory, restart: bool):
    daemon = daemon_factory()
    due = time.time() + 3
    drop(site, "J-F", process_after=datetime.fromtimestamp(due, UTC).isoformat())
    site.wait_status("J-F", "FutureOrder")
    if restart:
        assert daemon.stop() == 0
        daemon_factory()
    final = site.hot / FINAL.format("J-F")
    site.wait_for(final.exists, timeout=8, what="the future order to be delivered")
    arrived = time.time()
    assert due <= arrived <= due + 2.0


def test_a_late_file_completes_the_job_and_a_missing_one_times_out(site: Site, daemon_factory):
    site.config.write_text(site.config.read_text().replace(
        "[limits]\n", "[limits]\nawaiting_data_timeout_s = 4\n"))
    daemon_factory()
    drop_ticket(site.intake, job_ticket("J-L", ["J-L/art.pdf"]))
    drop_ticket(site.intake, job_ticket("J-M", ["J-M/never.pdf"]))
    site.wait_status("J-L", "AwaitingData")
    make_pdf(site.intake / "J-L" / "art.pdf")
    site.wait_status("J-L", "InHotFolder", timeout=6)
    failed = site.wait_status("J-M", "ValidationFailed", timeout=10)
    assert "J-M/never.pdf" in failed["history"][-1]["message"]
    assert sorted(os.listdir(site.intake)) == ["rejected"]


def test_recreate_and_reopen_deliver_again(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    final = site.hot / FINAL.format("J-1")
    site.cli("recreate", "J-1")
    site.wait_for(lambda: statuses(site, "J-1").count("InHotFolder") == 2, timeout=5,
                  what="a second delivery")
    assert "RecreationRequested" in statuses(site, "J-1")
    removed = next(h for h in site.show("J-1")["history"] if h["status"] == "OutputDelete")
    # the old file was taken back before the new one was made: never two, never printed
    # while its output is made again
    assert removed["message"] == f"old output removed; withdrawn from rip1:{final}"
    assert os.listdir(site.hot) == [FINAL.format("J-1")]

    site.cli("event", "J-1", "shipped")
    site.wait_status("J-1", "CleanUp")
    final.unlink()  # the RIP has long taken it
    site.cli("reopen", "J-1")
    job = site.wait_status("J-1", "InHotFolder", timeout=5)
    assert final.exists()
    assert [h["status"] for h in job["history"]][-5:] == [
        "Reopened", "ValidationFinished", "OutputCreationStarted", "OutputCreated",
        "InHotFolder"]


def test_a_cancel_after_recreate_or_reopen_leaves_nothing_for_the_rip(site: Site,
                                                                       daemon_factory):
    daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    kept = site.state / "sources" / "J-1" / "files" / "J-1" / "art.pdf"
    good = kept.read_bytes()
    make_pdf(site.root / "small.pdf", width_mm=100, height_mm=100)
    os.replace(site.root / "small.pdf", kept)  # a new upload that fails preflight
    site.cli("recreate", "J-1")
    site.wait_status("J-1", "ValidationFailed")
    assert os.listdir(site.hot) == []  # taken back: its output is being made again
    site.cli("event", "J-1", "cancelled")
    site.wait_status("J-1", "CleanUp")
    assert os.listdir(site.hot) == []
    kept.write_bytes(good)
    site.cli("reopen", "J-1")  # the cancel was a mistake: the job is live again
    job = site.wait_status("J-1", "InHotFolder")
    assert job["cancelled"] is False
    assert [j["job_id"] for j in site.jobs()] == ["J-1"]  # listed again by default
    site.cli("event", "J-1", "cancelled")  # recorded, not "already so"
    job = site.wait_status("J-1", "CleanUp")
    assert job["cancelled"] is True
    assert os.listdir(site.hot) == []


def test_reopen_is_refused_once_sources_are_gone(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    site.cli("event", "J-1", "completed")
    site.wait_status("J-1", "CleanUp")
    shutil.rmtree(site.state / "sources" / "J-1")
    refused = site.cli("reopen", "J-1", check=False)
    assert refused.returncode == 1
    assert "sources are no longer kept" in refused.stderr


def test_hold_and_release(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", payment_status="Pending")
    site.wait_status("J-1", "Ordered")
    site.cli("event", "J-1", "hold", "--message", "customer called")
    held = site.wait_status("J-1", "Blocked", timeout=3)
    assert held["history"][-1]["message"] == "customer called"
    assert site.cli("event", "J-1", "recreate", check=False).returncode == 1
    site.cli("event", "J-1", "paid")  # recorded, but the hold stands
    site.wait_for(lambda: statuses(site, "J-1")[-1] == "Paid", timeout=3, what="Paid noted")
    time.sleep(1)
    job = site.show("J-1")
    assert job["status"] == "Blocked" and job["payment_status"] == "Paid"
    assert not site.hot.exists()
    site.cli("event", "J-1", "release")
    site.wait_status("J-1", "InHotFolder", timeout=5)


def test_an_approval_given_while_held_takes_effect_on_release(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", approval="AwaitingApproval")
    site.wait_status("J-1", "UnapprovedOrder")
    site.cli("event", "J-1", "hold")
    site.wait_status("J-1", "Blocked")
    site.cli("event", "J-1", "approved")  # recorded, but the hold stands
    site.wait_for(lambda: statuses(site, "J-1")[-1] == "Approved", what="Approved noted")
    assert site.show("J-1")["status"] == "Blocked"
    site.cli("event", "J-1", "release")
    job = site.wait_status("J-1", "InHotFolder")
    assert [h["status"] for h in job["history"]][-7:] == [
        "Blocked", "Approved", "Approved", "ValidationFinished", "OutputCreationStarted",
        "OutputCreated", "InHotFolder"]  # noted while held, then released to Approved


def test_pause_holds_deliveries_and_resume_sends_them(site: Site, daemon_factory):
    daemon_factory()
    site.cli("pause", "rip1")
    drop(site, "J-1")
    drop(site, "J-2", priority=5)
    site.wait_status("J-1", "OutputCreated")
    site.wait_status("J-2", "OutputCreated")
    time.sleep(1)
    assert not site.hot.exists() or os.listdir(site.hot) == []
    assert '"paused": true' in site.cli("status", "--json").stdout
    site.cli("resume", "rip1")
    site.wait_status("J-1", "InHotFolder", timeout=5)
    site.wait_status("J-2", "InHotFolder", timeout=5)
    assert site.cli("pause", "nope", check=False).returncode == 1


def test_a_cancelled_job_that_was_not_produced_never_is(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", payment_status="Pending")
    site.wait_status("J-1", "Ordered")
    site.cli("event", "J-1", "cancelled")
    job = site.wait_status("J-1", "CleanUp", timeout=3)
    assert job["cancelled"] is True
    assert site.cli("event", "J-1", "paid", check=False).returncode == 1
    assert not site.hot.exists()


def test_ready_for_collection_only_records(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    site.cli("event", "J-1", "ready_for_collection")
    site.wait_status("J-1", "ReadyForCollection", timeout=3)
    assert (site.state / "work" / "J-1").exists()
    site.cli("event", "J-1", "completed")
    site.wait_status("J-1", "CleanUp", timeout=3)


def test_rip_pickup_records_in_production(site: Site, daemon_factory):
    site.config.write_text(site.config.read_text().replace(
        'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\n',
        'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\nwatch_pickup = true\n'
        "stale_after_s = 1\n"))
    daemon_factory()
    drop(site, "J-1")
    drop(site, "J-2")
    site.wait_status("J-1", "InHotFolder")
    site.wait_status("J-2", "InHotFolder")
    time.sleep(1.2)
    stale = json.loads(site.cli("status", "--json").stdout)["stale_files"]
    assert sorted(f["job_id"] for f in stale) == ["J-1", "J-2"]
    os.rename(site.hot / FINAL.format("J-1"), site.root / "taken.pdf")
    job = site.wait_status("J-1", "InProduction", timeout=3)
    assert "the RIP took" in job["history"][-1]["message"]
    assert site.show("J-2")["status"] == "InHotFolder"


def test_pickup_turned_on_by_a_reload_watches_at_once(site: Site, daemon_factory):
    daemon = daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    site.config.write_text(site.config.read_text().replace(
        'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\n',
        'filename = "{order_id}_{job_id}_{sku}_q{quantity}.pdf"\nwatch_pickup = true\n'))
    daemon.signal(signal.SIGHUP)
    site.wait_for(lambda: "config.reloaded" in site.log.read_text(), timeout=5)
    os.rename(site.hot / FINAL.format("J-1"), site.root / "taken.pdf")
    site.wait_status("J-1", "InProduction", timeout=3)  # inotify, not the 10 s check


def test_clear_test_data_exports_then_removes_only_test_jobs(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "T-1", storefront="demo", test_mode=True)
    drop(site, "T-2", storefront="demo", test_mode=True)
    drop(site, "L-1", storefront="demo")
    drop(site, "O-1", storefront="other", test_mode=True)
    for job_id in ("T-1", "T-2", "O-1"):
        site.wait_status(job_id, "CopyToHotFolderSkipped")
    site.wait_status("L-1", "InHotFolder")
    refused = site.cli("clear-test-data", "demo", check=False)
    assert refused.returncode == 1 and "--export" in refused.stderr
    export = site.root / "demo-test.json"
    site.cli("clear-test-data", "demo", "--export", str(export))
    exported = json.loads(export.read_text())
    assert sorted(j["job_id"] for j in exported) == ["T-1", "T-2"]
    for job in exported:
        assert job["history"][0]["status"] == "Ordered"
        assert job["history"][-1]["status"] == "JobDataDeleted"
    assert sorted(j["job_id"] for j in site.jobs()) == ["L-1", "O-1"]
    assert not (site.state / "sources" / "T-1").exists()
    assert (site.state / "sources" / "L-1").exists()
    # a second run never replaces the only record of the first, and writes through no link
    before = export.read_text()
    again = site.cli("clear-test-data", "demo", "--export", str(export), check=False)
    assert again.returncode == 2
    assert again.stderr.strip().endswith("exists; clear-test-data never replaces an export, "
                                         "so name a new file")
    assert export.read_text() == before
    victim = site.root / "victim.txt"
    victim.write_text("not outputd's\n")
    (site.root / ".other.json.part").symlink_to(victim)
    site.cli("clear-test-data", "other", "--export", str(site.root / "other.json"))
    assert victim.read_text() == "not outputd's\n"
    assert [j["job_id"] for j in json.loads((site.root / "other.json").read_text())] == ["O-1"]


def test_a_job_list_survives_cleanup_with_full_history(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", customer={"username": "zed", "email": "zed@q.example"})
    site.wait_status("J-1", "InHotFolder")
    site.cli("event", "J-1", "shipped")
    site.wait_status("J-1", "CleanUp")
    found = site.jobs("--search", "zed@q.example")
    assert [j["job_id"] for j in found] == ["J-1"]
    assert [h["status"] for h in found[0]["history"]][-2:] == ["Shipped", "CleanUp"]



def test_an_event_for_what_is_already_so_succeeds_and_changes_nothing(site: Site,
                                                                       daemon_factory):
    daemon_factory()
    drop(site, "J-1", payment_status="Pending")
    site.wait_status("J-1", "Ordered")
    first = site.cli("event", "J-1", "paid")
    second = site.cli("event", "J-1", "paid")  # a storefront that retries
    assert "paid recorded for J-1" in first.stdout
    assert "already so for J-1" in second.stdout or "paid recorded for J-1" in second.stdout
    site.wait_status("J-1", "InHotFolder")
    third = site.cli("event", "J-1", "paid")
    assert third.stdout.strip() == "already so for J-1 (nothing to do)"
    drop_ticket(site.intake, {"schema": "outputd.event/1", "job_id": "J-1", "event": "paid"},
                "again.json")
    site.wait_for(lambda: not (site.intake / "again.json").exists(), what="the ticket taken")
    assert not (site.intake / "rejected" / "again.json").exists()
    site.cli("event", "J-1", "shipped")
    site.wait_status("J-1", "CleanUp")
    assert site.cli("event", "J-1", "shipped").returncode == 0
    history = [h["status"] for h in site.show("J-1")["history"]]
    assert history.count("Paid") == 1 and history.count("Shipped") == 1
    assert site.cli("event", "J-1", "approved", check=False).returncode == 1


def test_show_jobs_and_status_say_why_a_job_waits(site: Site, daemon_factory):
    daemon_factory()
    drop(site, "J-1", payment_status="Pending")
    site.wait_status("J-1", "Ordered")
    assert "waiting     for payment (outputd event J-1 paid)" in site.cli("show", "J-1").stdout
    row = [line for line in site.cli("jobs").stdout.splitlines() if line.startswith("J-1 ")]
    assert row[0].endswith("for payment (outputd event J-1 paid)")
    assert site.jobs()[0]["waiting"] == "for payment (outputd event J-1 paid)"
    site.cli("pause", "rip1")
    site.wait_for(lambda: "hotfolder.paused hotfolder=rip1" in site.log.read_text(),
                  what="the pause in the daemon's log")
    site.cli("event", "J-1", "paid")
    site.wait_for(lambda: site.show("J-1")["waiting"] == (
        "hot folder rip1 is paused (outputd resume rip1)"), what="the paused hot folder named")
    assert "1 job waiting for it (outputd resume rip1)" in site.cli("status").stdout
    site.cli("resume", "rip1")
    site.wait_status("J-1", "InHotFolder")
    assert site.show("J-1")["waiting"] is None
    site.wait_for(lambda: "hotfolder.resumed hotfolder=rip1" in site.log.read_text(),
                  what="the resume in the daemon's log")


def test_fetch_copies_a_jobs_outputs_and_refuses_after_clean_up(site: Site, daemon_factory,
                                                                  tmp_path):
    daemon_factory()
    drop(site, "J-1")
    site.wait_status("J-1", "InHotFolder")
    folder = tmp_path / "by-hand"
    folder.mkdir()
    done = site.cli("fetch", "J-1", str(folder))
    assert done.stdout.strip() == str(folder / "J-1.pdf")
    assert (folder / "J-1.pdf").read_bytes() == (
        site.hot / "5001_J-1_FLYER-A5_q250.pdf").read_bytes()
    again = site.cli("fetch", "J-1", str(folder), check=False)
    assert again.returncode == 1 and "exists; fetch never replaces a file" in again.stderr
    site.cli("event", "J-1", "shipped")
    site.wait_status("J-1", "CleanUp")
    late = site.cli("fetch", "J-1", str(tmp_path), check=False)
    assert late.returncode == 1
    assert "job J-1 is CleanUp: its output was removed" in late.stderr
