"""A hostile or careless submitter against the real daemon: nothing it puts in the
intake folder can stop the intake, overwrite outputd's files or change what the RIP gets."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import Site
from tests.helpers import drop_ticket, job_ticket, make_pdf

NOBODY = 65534  # a user other than outputd's (the tests run as root, which may chown)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_tickets_that_are_not_regular_files_are_set_aside_and_the_intake_goes_on(
        site: Site, daemon_factory):
    daemon = daemon_factory()
    os.mkfifo(site.intake / "fifo.json")
    (site.intake / "zero.json").symlink_to("/dev/zero")
    (site.intake / "folder.json").mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(site.intake / "socket.json"))
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        site.wait_status("J-1", "InHotFolder", timeout=60)
        rejected = site.intake / "rejected"
        expected = {"fifo.json": "a FIFO", "zero.json": "a symlink",
                    "folder.json": "a folder", "socket.json": "a socket"}
        site.wait_for(lambda: all((rejected / f"{n}.error.json").exists() for n in expected),
                      timeout=30, what="every hostile ticket set aside")
        for name, what in expected.items():
            error = json.loads((rejected / f"{name}.error.json").read_text())
            assert error["ticket"] == name
            assert f"is {what}, not a regular file" in error["error"]
        assert (rejected / "zero.json").is_symlink()  # moved as it is, never followed
        assert sorted(p.name for p in site.intake.iterdir()) == ["rejected"]
        # the intake still takes tickets after all of them
        make_pdf(site.intake / "J-2" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-2", ["J-2/art.pdf"]))
        site.wait_status("J-2", "InHotFolder", timeout=60)
    finally:
        listener.close()
    assert daemon.stop() == 0


def test_a_rejected_folder_swapped_for_a_symlink_is_never_written_through(
        site: Site, daemon_factory, tmp_path: Path):
    daemon = daemon_factory()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "bad.json").write_text("outputd's own file\n")
    rejected = site.intake / "rejected"
    rejected.rmdir()
    rejected.symlink_to(victim)
    (site.intake / "bad.json").write_text("{ not json")
    site.wait_for(lambda: rejected.is_dir() and not rejected.is_symlink()
                  and (rejected / "bad.json.error.json").exists(), timeout=30,
                  what="a new rejected folder holding the bad ticket")
    assert (victim / "bad.json").read_text() == "outputd's own file\n"
    assert sorted(p.name for p in victim.iterdir()) == ["bad.json"]
    assert (rejected / "bad.json").read_text() == "{ not json"
    aside = [p for p in site.intake.iterdir() if p.name.startswith(".rejected.tampered-")]
    assert len(aside) == 1 and aside[0].is_symlink()
    assert "intake.rejected_replaced" in site.log.read_text()
    assert daemon.stop() == 0


def test_a_file_rewritten_through_a_kept_link_after_accept_does_not_reach_the_rip(
        site: Site, daemon_factory, tmp_path: Path):
    daemon = daemon_factory()
    art = make_pdf(site.intake / "J-1" / "art.pdf", label="the customer's art")
    original = sha(art)
    os.chown(art, NOBODY, NOBODY)  # a submitter's file, not outputd's user's
    kept_link = tmp_path / "held-by-submitter.pdf"
    os.link(art, kept_link)  # the submitter keeps a second name for the same file
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"], payment_status="Pending"))
    site.wait_status("J-1", "Ordered")
    site.wait_for(lambda: not art.exists(), what="the file taken in")
    size = kept_link.stat().st_size
    swapped = b"%!PS-Adobe-3.0\n" + b"%" * (size - 16) + b"\n"
    with open(kept_link, "r+b") as fh:  # same size, same inode, other bytes
        fh.write(swapped)
    site.cli("event", "J-1", "paid")
    job = site.wait_status("J-1", "InHotFolder", timeout=60)
    delivered = site.hot / "5001_J-1_FLYER-A5_q250.pdf"
    assert sha(delivered) == original
    assert job["outputs"][0]["sha256"] == original
    assert daemon.stop() == 0


def test_an_order_event_reaches_only_its_own_storefronts_jobs(site: Site, daemon_factory):
    daemon = daemon_factory()
    for job_id, shop in (("J-A", "acme"), ("J-B", "bravo")):
        make_pdf(site.intake / job_id / "art.pdf")
        drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"], order_id="7777",
                                            storefront=shop, payment_status="Pending"))
        site.wait_status(job_id, "Ordered")
    drop_ticket(site.intake, {"schema": "outputd.event/1", "order_id": "7777",
                              "storefront": "bravo", "event": "cancelled"}, "cancel.json")
    site.wait_status("J-B", "CleanUp")
    assert site.show("J-A")["status"] == "Ordered"
    refused = site.cli("event", "--order", "7777", "paid", check=False)
    assert refused.returncode != 0
    assert "order 7777 exists in several storefronts (acme, bravo)" in refused.stderr
    assert site.show("J-A")["status"] == "Ordered"
    site.cli("event", "--order", "7777", "--storefront", "acme", "paid")
    site.wait_status("J-A", "InHotFolder", timeout=60)
    drop_ticket(site.intake, {"schema": "outputd.event/1", "order_id": "7777",
                              "event": "shipped"}, "noshop.json")
    site.wait_for(lambda: (site.intake / "rejected" / "noshop.json.error.json").exists(),
                  what="the order event without a storefront set aside")
    assert site.show("J-A")["status"] == "InHotFolder"
    assert daemon.stop() == 0


def test_poison_tickets_are_set_aside_once_and_control_characters_never_reach_a_terminal(
        site: Site, daemon_factory):
    daemon = daemon_factory()
    (site.intake / "digits.json").write_bytes(
        b'{"schema": "outputd.job/1", "quantity": ' + b"9" * 5000 + b"}")
    ticket = json.dumps(job_ticket("J-S", ["J-S/art.pdf"])).replace(
        '"130gsm silk"', '"130gsm \\ud800 silk"')
    (site.intake / "surrogate.json").write_text(ticket)
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"], payment_status="Pending"))
    site.wait_status("J-1", "Ordered")
    drop_ticket(site.intake, {"schema": "outputd.event/1", "job_id": "J-1", "event": "paid",
                              "by": "\x1b[2K\rINFO job.status job=J-1 status=Shipped"}, "e.json")
    site.wait_status("J-1", "InHotFolder", timeout=60)
    rejected = site.intake / "rejected"
    for name, words in (("digits.json", "not valid JSON"), ("surrogate.json", "lone surrogate")):
        site.wait_for(lambda n=name: (rejected / f"{n}.error.json").exists(),
                      what=f"{name} set aside")
        assert words in json.loads((rejected / f"{name}.error.json").read_text())["error"]
    shown = site.cli("show", "J-1").stdout
    log = site.log.read_text()
    for text in (shown, log):
        assert "\x1b" not in text and "\r" not in text
    assert "\\x1b[2K\\rINFO job.status" in shown
    assert "job.crashed" not in log and "Traceback" not in log
    assert daemon.stop() == 0


def test_two_daemons_never_share_one_sqlite_store(site: Site, daemon_factory, tmp_path: Path):
    daemon = daemon_factory()
    other = Site(tmp_path / "other")  # its own intake folder, the first site's store
    db = site.state / "outputd.db"
    second = subprocess.run(
        [sys.executable, "-m", "outputd", "run", "--config", str(other.config)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "OUTPUTD_STORE__URL": f"sqlite:///{db}"})
    assert second.returncode != 0
    assert f"the store {db} is in use by another outputd" in second.stderr
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    site.wait_status("J-1", "InHotFolder", timeout=60)
    assert daemon.stop() == 0
