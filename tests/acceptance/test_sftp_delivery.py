"""SFTP hot folders through the real daemon and a real sshd, watched as a RIP would."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pikepdf
import pytest
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from tests.conftest import DaemonProcess, Site, require_tool
from tests.helpers import drop_ticket, job_ticket, make_pdf
from tests.sshd import Sshd


class RipEye(FileSystemEventHandler):
    """Records every file that appears under a final name, with its size at that moment."""

    def __init__(self, folder: Path, expected: dict[str, int]) -> None:
        self.folder = folder
        self.expected = expected
        self.violations: list[str] = []
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.observer = Observer()
        self.observer.schedule(self, str(folder), recursive=False)

    def _check(self, raw: str | bytes) -> None:
        path = Path(os.fsdecode(raw))
        if path.name.startswith(".") or path.suffix != ".pdf":
            return
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return
        with self.lock:
            self.seen.append(path.name)
            want = self.expected.get(path.name)
            if want is not None and size != want:
                self.violations.append(f"{path.name}: {size} of {want} bytes")

    def on_created(self, event: FileSystemEvent) -> None:
        self._check(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        self._check(event.dest_path)

    def on_modified(self, event: FileSystemEvent) -> None:
        self._check(event.src_path)

    def __enter__(self) -> RipEye:
        self.observer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.observer.stop()
        self.observer.join()


@pytest.fixture
def sshd(tmp_path: Path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def sftp_site(tmp_path: Path, sshd: Sshd, *, extra: str = "", routes: str | None = None) -> Site:
    local = ('[hotfolders.rip1]\nkind = "local"\npath = "hot/rip1"\n'
             'filename = "{order_id}_{job_id}.pdf"\n')
    return Site(tmp_path / "site", hotfolders=local + sshd.hotfolder_toml(extra=extra),
                routes=routes or '[[routes]]\nmatch = {}\nto = ["press"]\n')


def test_delivery_to_sftp_is_complete_at_every_instant(tmp_path: Path, sshd: Sshd,
                                                       daemon_factory):
    site = sftp_site(tmp_path, sshd)
    expected = {}
    for n in range(6):
        pdf = make_pdf(site.intake / f"J-{n}" / "art.pdf", padding=(n + 1) << 20)
        expected[f"5001_J-{n}.pdf"] = pdf.stat().st_size
    with RipEye(sshd.dest, expected) as eye:
        daemon = DaemonProcess(site)
        for n in range(6):
            drop_ticket(site.intake, job_ticket(f"J-{n}", [f"J-{n}/art.pdf"]))
        site.wait_for(lambda: len(site.jobs("--status", "InHotFolder")) == 6, timeout=60)
        daemon.stop()
    assert eye.violations == []
    assert sorted(set(eye.seen)) == sorted(expected)
    assert sorted(os.listdir(sshd.dest)) == sorted(expected)
    assert (site.state / "work" / "J-3" / "out" / "J-3.pdf").read_bytes() == (
        sshd.dest / "5001_J-3.pdf").read_bytes()


def test_unknown_and_changed_host_keys_fail_the_delivery_naming_the_key(tmp_path: Path,
                                                                       sshd: Sshd,
                                                                       daemon_factory):
    site = sftp_site(tmp_path, sshd)
    original = sshd.known_hosts.read_text()
    sshd.known_hosts.write_text("")
    daemon = daemon_factory()
    make_pdf(site.intake / "J-U" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-U", ["J-U/art.pdf"]))
    job = site.wait_status("J-U", "CopyToHotFolderFailed")
    assert "is not in known_hosts" in job["deliveries"][0]["error"]
    assert job["deliveries"][0]["attempts"] == 1
    other = tmp_path / "other"
    subprocess.run([require_tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f",
                    str(other)], check=True)
    kind, key = Path(f"{other}.pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {kind} {key}\n")
    make_pdf(site.intake / "J-C" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-C", ["J-C/art.pdf"]))
    job = site.wait_status("J-C", "CopyToHotFolderFailed")
    assert "has CHANGED" in job["deliveries"][0]["error"]
    assert os.listdir(sshd.dest) == []
    sshd.known_hosts.write_text(original)
    site.cli("retry", "J-U")
    site.wait_status("J-U", "InHotFolder", timeout=10)
    daemon.stop()


def test_a_server_down_at_delivery_time_is_retried_until_it_returns(tmp_path: Path,
                                                                     sshd: Sshd,
                                                                     daemon_factory):
    site = sftp_site(tmp_path, sshd)
    sshd.stop()
    daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    job = site.wait_status("J-1", "CopyToHotFolderFailed")
    assert "cannot connect" in job["deliveries"][0]["error"]
    assert job["due_at"] is not None  # a retry is scheduled
    sshd.start()
    job = site.wait_status("J-1", "InHotFolder", timeout=15)
    assert job["deliveries"][0]["attempts"] >= 2
    assert os.listdir(sshd.dest) == ["5001_J-1.pdf"]


def test_a_server_killed_mid_upload(tmp_path: Path, sshd: Sshd, daemon_factory):
    site = sftp_site(tmp_path, sshd)
    site.config.write_text(site.config.read_text().replace(
        "[limits]\n", f"[limits]\nmax_file_bytes = {400 << 20}\n"))
    pdf = make_pdf(site.intake / "J-BIG" / "art.pdf", padding=200 << 20)
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    daemon_factory()
    drop_ticket(site.intake, job_ticket("J-BIG", ["J-BIG/art.pdf"]))
    part = sshd.dest / ".5001_J-BIG.pdf.part"
    site.wait_for(lambda: part.exists() and part.stat().st_size > (20 << 20), timeout=60,
                  what="the upload to be under way")
    sshd.kill()
    final = sshd.dest / "5001_J-BIG.pdf"
    assert not final.exists()
    job = site.wait_status("J-BIG", "CopyToHotFolderFailed", timeout=30)
    assert not final.exists()
    sshd.start()
    job = site.wait_status("J-BIG", "InHotFolder", timeout=60)
    assert os.listdir(sshd.dest) == ["5001_J-BIG.pdf"]  # the .part was overwritten, renamed
    assert hashlib.sha256(final.read_bytes()).hexdigest() == digest
    assert job["deliveries"][0]["attempts"] >= 2


def test_a_read_only_destination_is_not_retried_blindly(tmp_path: Path):
    server = Sshd(tmp_path / "ro", read_only=True).start()
    try:
        site = sftp_site(tmp_path, server)
        daemon = DaemonProcess(site)
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        job = site.wait_status("J-1", "CopyToHotFolderFailed")
        time.sleep(2)  # longer than the back-off: nothing more may happen
        job = site.show("J-1")
        assert job["deliveries"][0]["attempts"] == 1
        assert "permission denied" in job["deliveries"][0]["error"]
        assert "an operator must retry" in job["history"][-1]["message"]
        assert job["due_at"] is None
        daemon.stop()
    finally:
        server.stop()


def test_only_the_failed_hot_folder_is_retried(tmp_path: Path, sshd: Sshd, daemon_factory):
    site = sftp_site(tmp_path, sshd, routes='[[routes]]\nmatch = {}\nto = ["rip1", "press"]\n')
    sshd.stop()
    daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    job = site.wait_status("J-1", "CopyToHotFolderFailed")
    by_folder = {d["hotfolder"]: d for d in job["deliveries"]}
    assert by_folder["rip1"]["state"] == "delivered"
    assert by_folder["press"]["state"] == "failed"
    local = site.root / "hot" / "rip1" / "5001_J-1.pdf"
    mtime = local.stat().st_mtime_ns
    sshd.start()
    job = site.wait_status("J-1", "InHotFolder", timeout=15)
    by_folder = {d["hotfolder"]: d for d in job["deliveries"]}
    assert by_folder["rip1"]["attempts"] == 1
    assert by_folder["press"]["attempts"] >= 2
    assert local.stat().st_mtime_ns == mtime


def test_sidecar_tickets_follow_the_pdf(tmp_path: Path, sshd: Sshd, daemon_factory):
    site = sftp_site(tmp_path, sshd, extra='ticket = "xml"',
                     routes='[[routes]]\nmatch = {}\nto = ["rip1", "press"]\n')
    site.config.write_text(site.config.read_text().replace(
        'filename = "{order_id}_{job_id}.pdf"\n', 'filename = "{order_id}_{job_id}.pdf"\n'
        'ticket = "json"\n', 1))
    daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"], attributes={"stock": "silk"}))
    site.wait_status("J-1", "InHotFolder")
    local = site.root / "hot" / "rip1"
    assert sorted(os.listdir(local)) == ["5001_J-1.json", "5001_J-1.pdf"]
    body = json.loads((local / "5001_J-1.json").read_text())
    assert body["files"] == ["5001_J-1.pdf"] and body["quantity"] == 250
    assert body["attributes"] == {"stock": "silk"} and body["product"]["sku"] == "FLYER-A5"
    assert sorted(os.listdir(sshd.dest)) == ["5001_J-1.pdf", "5001_J-1.xml"]
    xml = sshd.dest / "5001_J-1.xml"
    subprocess.run([require_tool("xmllint"), "--noout", str(xml)], check=True)
    text = xml.read_text()
    assert 'URL="5001_J-1.pdf"' in text and 'Amount="250"' in text
    assert (sshd.dest / "5001_J-1.pdf").stat().st_mtime_ns <= xml.stat().st_mtime_ns


def test_job_sheets_reach_an_sftp_hot_folder_before_and_beside_the_output(
        tmp_path: Path, sshd: Sshd, daemon_factory):
    site = Site(tmp_path / "site", hotfolders=(
        sshd.hotfolder_toml("front", 'job_sheet = "prepend"')
        + sshd.hotfolder_toml("beside", 'job_sheet = "separate"').replace(
            "{order_id}_{job_id}.pdf", "beside_{job_id}.pdf")),
        routes='[[routes]]\nmatch = {}\nto = ["front", "beside"]\n')
    daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf", pages=3)
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    site.wait_status("J-1", "InHotFolder")
    assert sorted(os.listdir(sshd.dest)) == ["5001_J-1.pdf", "beside_J-1.pdf",
                                             "beside_J-1_sheet.pdf"]
    with pikepdf.open(sshd.dest / "5001_J-1.pdf") as front, \
            pikepdf.open(sshd.dest / "beside_J-1.pdf") as output, \
            pikepdf.open(sshd.dest / "beside_J-1_sheet.pdf") as sheet:
        assert (len(front.pages), len(output.pages), len(sheet.pages)) == (4, 3, 1)
    assert (sshd.dest / "beside_J-1.pdf").stat().st_mtime_ns <= (
        sshd.dest / "beside_J-1_sheet.pdf").stat().st_mtime_ns


def test_reload_with_a_fixed_hot_folder_retries_its_permanent_failures(tmp_path: Path,
                                                                       sshd: Sshd,
                                                                       daemon_factory):
    site = sftp_site(tmp_path, sshd)
    good = site.config.read_text()
    site.config.write_text(good.replace(f'path = "{sshd.dest}"', f'path = "{sshd.dest}/nope"'))
    daemon = daemon_factory()
    make_pdf(site.intake / "J-1" / "art.pdf")
    drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
    job = site.wait_status("J-1", "CopyToHotFolderFailed")
    assert job["due_at"] is None
    site.config.write_text(good)
    daemon.signal(signal.SIGHUP)
    site.wait_status("J-1", "InHotFolder", timeout=10)


def test_check_config_probes_every_hot_folder(tmp_path: Path, sshd: Sshd):
    site = sftp_site(tmp_path, sshd)
    site.hot.mkdir(parents=True)  # as root, check-config makes no missing folder
    done = site.cli("check-config")
    assert done.stdout.startswith(f"config {site.config.resolve()} is valid")
    assert "press: ok" in done.stdout and "rip1: ok" in done.stdout
    sshd.stop()
    failed = site.cli("check-config", check=False)
    assert failed.returncode == 1
    assert "press: FAILED: " in failed.stdout and "cannot connect" in failed.stdout


def test_cancelling_withdraws_what_the_rip_has_not_taken(tmp_path: Path, sshd: Sshd,
                                                         daemon_factory):
    site = sftp_site(tmp_path, sshd, routes='[[routes]]\nmatch = {}\nto = ["rip1", "press"]\n')
    site.config.write_text(site.config.read_text().replace(
        'filename = "{order_id}_{job_id}.pdf"\n',
        'filename = "{order_id}_{job_id}.pdf"\nticket = "json"\n'))
    daemon_factory()
    for job_id in ("J-1", "J-2"):
        make_pdf(site.intake / job_id / "art.pdf")
        drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"]))
        site.wait_status(job_id, "InHotFolder")
    (site.hot / "5001_J-2.pdf").unlink()  # the RIPs took J-2's files
    (sshd.dest / "5001_J-2.pdf").unlink()
    for job_id in ("J-1", "J-2"):
        site.cli("event", job_id, "cancelled")
    one = site.wait_status("J-1", "CleanUp")
    two = site.wait_status("J-2", "CleanUp")
    assert os.listdir(site.hot) == []  # J-2's sidecar, not taken, is withdrawn too
    assert os.listdir(sshd.dest) == []
    assert [d["state"] for d in one["deliveries"]] == ["withdrawn"] * 4  # PDFs and sidecars
    message = one["history"][-1]["message"]
    assert "withdrawn from" in message and "rip1:" in message and "press:" in message
    states_two = {Path(d["path"]).name + "@" + d["hotfolder"]: d["state"]
                  for d in two["deliveries"]}
    assert states_two == {"5001_J-2.pdf@rip1": "delivered", "5001_J-2.json@rip1": "withdrawn",
                          "5001_J-2.pdf@press": "delivered", "5001_J-2.json@press": "withdrawn"}
    assert "already taken by the RIP from" in two["history"][-1]["message"]
