"""outputd as a service: notify protocol, watchdog, reload, graceful stop, metrics,
health, disk guard and backup, all against the real `outputd run`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Site
from tests.helpers import drop_ticket, job_ticket, make_pdf


@pytest.fixture
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    yield sock, str(path)
    sock.close()


def messages(sock: socket.socket, until: str, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
        if until in got[-1]:
            break
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_notify_ready_watchdog_stopping_in_order(site: Site, daemon_factory, notify_socket):
    sock, path = notify_socket
    daemon = daemon_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    got = messages(sock, "never", timeout=1.5)
    daemon.signal(signal.SIGTERM)
    got += messages(sock, "STOPPING=1", timeout=10)
    assert daemon.proc.wait(timeout=10) == 0
    kinds = [m.split("=")[0] for m in got]
    assert kinds[0] == "READY" and "STATUS=" in got[0]
    assert kinds.count("WATCHDOG") >= 3  # every 0.2 s for 1.5 s, on a loaded machine too
    assert kinds[-1] == "STOPPING"
    assert kinds.index("READY") < kinds.index("WATCHDOG") < kinds.index("STOPPING")


def test_watchdog_is_not_for_another_pid(site: Site, daemon_factory, notify_socket):
    sock, path = notify_socket
    daemon = daemon_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000",
                                 "WATCHDOG_PID": "1"})
    got = messages(sock, "never", timeout=1.0)
    daemon.stop()
    assert not any(m.startswith("WATCHDOG") for m in got)


def test_sighup_adds_a_hot_folder_and_refuses_a_bad_config(site: Site, daemon_factory,
                                                           notify_socket):
    sock, path = notify_socket
    daemon = daemon_factory(env={"NOTIFY_SOCKET": path})
    messages(sock, "READY=1", timeout=2)
    text = site.config.read_text()
    site.config.write_text(text.replace(
        "[[routes]]\nmatch = {test_mode = true}",
        '[hotfolders.rip2]\nkind = "local"\npath = "hot/rip2"\nfilename = "{job_id}.pdf"\n\n'
        '[[routes]]\nmatch = {sku = "POSTER-*"}\nto = ["rip2"]\n\n'
        "[[routes]]\nmatch = {test_mode = true}"))
    daemon.signal(signal.SIGHUP)
    got = [m for m in messages(sock, "READY=1", timeout=5) if not m.startswith("STATUS=")]
    assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC=")  # periodic STATUS= aside
    assert got[-1].startswith("READY=1")
    drop_job = job_ticket("J-P", ["J-P/art.pdf"], product={"sku": "POSTER-A2"})
    make_pdf(site.intake / "J-P" / "art.pdf")
    drop_ticket(site.intake, drop_job)
    site.wait_status("J-P", "InHotFolder")
    assert (site.root / "hot" / "rip2" / "J-P.pdf").exists()

    site.config.write_text(site.config.read_text() + "\n[bogus]\n")
    daemon.signal(signal.SIGHUP)
    site.wait_for(lambda: "config.reload_refused" in site.log.read_text(), timeout=5)
    assert "bogus is not a known key" in site.log.read_text()
    make_pdf(site.intake / "J-Q" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-Q", ["J-Q/art.pdf"], product={"sku": "POSTER-A1"}))
    # The old config is still in force (the CLI cannot read the broken file, so look).
    site.wait_for((site.root / "hot" / "rip2" / "J-Q.pdf").exists, timeout=10)
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sigterm_during_a_large_delivery_exits_cleanly_and_resumes(site: Site, daemon_factory):
    big = 500 << 20
    site.config.write_text(site.config.read_text()
                           .replace("stop_grace_s = 5", "stop_grace_s = 0")
                           .replace("[limits]\n", f"[limits]\nmax_file_bytes = {big * 2}\n"))
    pdf = make_pdf(site.intake / "J-BIG" / "art.pdf", padding=big)
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    daemon = daemon_factory()
    drop_ticket(site.intake, job_ticket("J-BIG", ["J-BIG/art.pdf"]))
    part = site.hot / ".5001_J-BIG_FLYER-A5_q250.pdf.part"
    site.wait_for(part.exists, timeout=60, what="the delivery to start")
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 10
    daemon.log.close()
    assert not part.exists()
    final = site.hot / "5001_J-BIG_FLYER-A5_q250.pdf"
    if "delivery.interrupted" in site.log.read_text():
        assert not final.exists()
    daemon_factory()
    job = site.wait_status("J-BIG", "InHotFolder", timeout=60)
    assert os.listdir(site.hot) == [final.name]
    assert hashlib.sha256(final.read_bytes()).hexdigest() == digest
    assert "CopyToHotFolderFailed" not in [h["status"] for h in job["history"]]


def test_metrics_count_deliveries_and_healthz_follows_the_store(tmp_path: Path, daemon_factory):
    port = free_port()
    site = Site(tmp_path / "m", metrics=f"127.0.0.1:{port}")
    from tests.conftest import DaemonProcess
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        site.wait_status("J-1", "InHotFolder")
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        assert 'outputd_deliveries_total{hotfolder="rip1",outcome="delivered"} 1.0' in body
        assert 'outputd_job_status_changes_total{status="InHotFolder"} 1.0' in body
        assert 'outputd_jobs{status="InHotFolder"} 1.0' in body
        assert "outputd_delivered_bytes_total" in body and "J-1" not in body
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
        assert health.status == 200 and json.loads(health.read())["ok"] is True
        db = site.state / "outputd.db"
        db.rename(site.state / "moved.db")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
        assert caught.value.code == 503
        assert "store does not answer" in json.loads(caught.value.read())["reasons"][0]
        (site.state / "moved.db").rename(db)
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").status == 200
    finally:
        assert daemon.stop() == 0


def test_low_disk_space_stops_claiming_until_it_returns(site: Site, daemon_factory):
    site.config.write_text(site.config.read_text().replace(
        "min_free_mb = 10", "min_free_mb = 999999999"))
    daemon = daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    site.wait_for(lambda: site.jobs(), what="J-1 accepted")
    time.sleep(1.5)
    assert site.show("J-1")["status"] == "Ordered"
    assert "disk.low" in site.log.read_text()
    status = json.loads(site.cli("status", "--json").stdout)
    assert "not claiming new work" in status["low_space"]
    site.config.write_text(site.config.read_text().replace(
        "min_free_mb = 999999999", "min_free_mb = 10"))
    daemon.signal(signal.SIGHUP)
    site.wait_status("J-1", "InHotFolder", timeout=10)
    assert "disk.ok" in site.log.read_text()


def test_backup_while_running(site: Site, daemon_factory):
    daemon_factory()
    for n in range(3):
        make_pdf(site.intake / f"J-{n}" / "art.pdf")
        drop_ticket(site.intake, job_ticket(f"J-{n}", [f"J-{n}/art.pdf"]))
    site.wait_for(lambda: len(site.jobs("--status", "InHotFolder")) == 3)
    target = site.root / "backup.db"
    victim = site.root / "victim.db"
    victim.write_bytes(b"not outputd's")
    (site.root / ".backup.db.part").symlink_to(victim)  # a planted temp name
    site.cli("backup", str(target))
    assert victim.read_bytes() == b"not outputd's"
    copy = sqlite3.connect(target)
    assert copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3
    assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
