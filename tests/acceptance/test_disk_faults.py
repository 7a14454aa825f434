"""A hot folder that is full or read-only: the job fails with the reason and recovers
when the folder does. Uses a small tmpfs the test mounts (root only)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = mount_tmpfs(mount)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def mount_tmpfs(mount: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)


def remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


def site_on(tmp_path: Path, hot: Path) -> Site:
    folder = ('[hotfolders.rip1]\nkind = "local"\n'
              f'path = "{hot}"\nfilename = "{{job_id}}.pdf"\n')
    site = Site(tmp_path / "site", hotfolders=folder)
    site.config.write_text(site.config.read_text().replace("min_free_mb = 10",
                                                           "min_free_mb = 0"))
    return site


def site_with_sources_on(tmp_path: Path, disk: Path) -> Site:
    site = site_on(tmp_path, tmp_path / "hot")
    site.config.write_text(site.config.read_text().replace(
        'intake_dir = "intake"', f'intake_dir = "intake"\nsources_dir = "{disk}"'))
    return site


def test_a_full_hot_folder_fails_then_recovers(tmp_path: Path, small_disk: Path):
    hot = small_disk / "rip1"
    site = site_on(tmp_path, hot)
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-BIG" / "art.pdf", padding=6 << 20)
        drop_ticket(site.intake, job_ticket("J-BIG", ["J-BIG/art.pdf"]))
        job = site.wait_status("J-BIG", "CopyToHotFolderFailed")
        assert "no space left on the device" in job["deliveries"][0]["error"]
        assert job["due_at"] is not None  # retried with back-off
        assert os.listdir(hot) == []  # the partial temp file was removed
        remount(small_disk, "size=64m")
        site.wait_status("J-BIG", "InHotFolder", timeout=20)
        assert os.listdir(hot) == ["J-BIG.pdf"]
    finally:
        daemon.stop()


def test_a_read_only_hot_folder_waits_for_an_operator(tmp_path: Path, small_disk: Path):
    hot = small_disk / "rip1"
    hot.mkdir()
    remount(small_disk, "ro")
    site = site_on(tmp_path, hot)
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        job = site.wait_status("J-1", "CopyToHotFolderFailed")
        assert "Read-only file system" in job["deliveries"][0]["error"]
        assert job["due_at"] is None and "an operator must retry" in job["history"][-1][
            "message"]
        remount(small_disk, "rw")
        site.cli("retry", "J-1")
        site.wait_status("J-1", "InHotFolder", timeout=10)
    finally:
        daemon.stop()


def test_a_full_sources_folder_defers_the_ticket_and_others_go_on(tmp_path: Path,
                                                                   small_disk: Path):
    site = site_with_sources_on(tmp_path, small_disk)
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-BIG" / "art.pdf", padding=6 << 20)  # the disk holds 4 MB
        drop_ticket(site.intake, job_ticket("J-BIG", ["J-BIG/art.pdf"]))
        site.wait_for(lambda: "intake.deferred" in site.log.read_text(), what="deferral")
        make_pdf(site.intake / "J-SMALL" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-SMALL", ["J-SMALL/art.pdf"]))
        # The part copy of the big file was removed, so the small job fits.
        site.wait_status("J-SMALL", "InHotFolder")
        time.sleep(5)  # tried again meanwhile, and said once
        assert (site.intake / "J-BIG.json").exists()
        assert (site.intake / "J-BIG" / "art.pdf").exists()
        assert [p.name for p in small_disk.rglob("*") if p.is_file()
                and p.name.endswith(".part")] == []
        lines = [line for line in site.log.read_text().splitlines() if "J-BIG" in line]
        assert len(lines) == 1 and "no space left on the device" in lines[0], lines
        assert "intake.deferred job=J-BIG " in lines[0]
        assert site.cli("show", "J-BIG", check=False).returncode != 0  # not a job yet
        status = json.loads(site.cli("status", "--json").stdout)
        assert status["free_mb"]["sources_dir"] <= 4  # shown, but it does not stop work
        assert status["low_space"] is None
        remount(small_disk, "size=64m")
        site.wait_status("J-BIG", "InHotFolder", timeout=40)
        assert not (site.intake / "J-BIG.json").exists()
    finally:
        daemon.stop()


def test_a_hot_folder_whose_share_is_not_mounted_waits_for_it(tmp_path: Path,
                                                              small_disk: Path):
    site = site_on(tmp_path, small_disk / "in")
    site.config.write_text(site.config.read_text().replace(
        'kind = "local"\n', f'kind = "local"\nmount = "{small_disk}"\nwatch_pickup = true\n',
        1))
    subprocess.run(["umount", str(small_disk)], check=True)  # the share dropped
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        job = site.wait_status("J-1", "CopyToHotFolderFailed")
        assert f"its share {small_disk} is not mounted" in job["deliveries"][0]["error"]
        assert job["due_at"] is not None  # retried with back-off
        assert os.listdir(small_disk) == []  # nothing on the disk beneath the share
        assert "pickup.unwatched hotfolder=rip1" in site.log.read_text()
        mount_tmpfs(small_disk).check_returncode()
        site.wait_status("J-1", "InHotFolder", timeout=20)
        assert os.listdir(small_disk / "in") == ["J-1.pdf"]
    finally:
        daemon.stop()


@pytest.mark.slow
def test_a_late_file_that_does_not_fit_leaves_the_job_waiting(tmp_path: Path,
                                                              small_disk: Path):
    site = site_with_sources_on(tmp_path, small_disk)
    daemon = DaemonProcess(site)
    try:
        drop_ticket(site.intake, job_ticket("J-LATE", ["J-LATE/art.pdf"]))
        site.wait_status("J-LATE", "AwaitingData")
        make_pdf(site.intake / "J-LATE" / "art.pdf", padding=6 << 20)  # the disk holds 4 MB
        site.wait_for(lambda: "has arrived but cannot be kept" in site.log.read_text(),
                      what="the reason in the log")
        line = next(x for x in site.log.read_text().splitlines() if "cannot be kept" in x)
        assert "job.error job=J-LATE" in line and "no space left on the device" in line
        assert site.show("J-LATE")["status"] == "AwaitingData"
        assert [p for p in small_disk.rglob("*") if p.name.endswith(".part")] == []
        remount(small_disk, "size=64m")
        site.wait_status("J-LATE", "InHotFolder", timeout=45)  # tried again after 30 s
        text = site.log.read_text()
        assert "job.crashed" not in text and "Traceback" not in text
    finally:
        daemon.stop()


def test_after_an_outage_one_command_retries_every_job_the_hot_folder_failed(
        tmp_path: Path, small_disk: Path):
    hot = small_disk / "rip1"
    hot.mkdir()
    remount(small_disk, "ro")
    site = site_on(tmp_path, hot)
    daemon = DaemonProcess(site)
    try:
        for job_id in ("J-1", "J-2"):
            make_pdf(site.intake / job_id / "art.pdf")
            drop_ticket(site.intake, job_ticket(job_id, [f"{job_id}/art.pdf"]))
        for job_id in ("J-1", "J-2"):
            assert site.wait_status(job_id, "CopyToHotFolderFailed")["due_at"] is None
        remount(small_disk, "rw")
        assert site.cli("retry", check=False).returncode == 2  # a job or a hot folder
        done = site.cli("retry", "--hotfolder", "rip1")
        assert "retry recorded for 2 jobs: J-1, J-2" in done.stdout
        for job_id in ("J-1", "J-2"):
            job = site.wait_status(job_id, "InHotFolder", timeout=10)
            failed, retried = job["history"][-3:-1]
            assert failed["status"] == "CopyToHotFolderFailed"
            assert retried["message"] == "retry requested" and retried["by"] != "outputd"
        assert sorted(os.listdir(hot)) == ["J-1.pdf", "J-2.pdf"]
        again = site.cli("retry", "--hotfolder", "rip1", check=False)
        assert again.returncode == 1 and "no job has a failed delivery to rip1" in again.stderr
    finally:
        daemon.stop()


def test_a_file_taken_unseen_by_inotify_is_found_taken(tmp_path: Path, small_disk: Path):
    # As on a share a remote RIP empties: the file goes without an inotify event here.
    site = site_on(tmp_path, small_disk / "rip1")
    site.config.write_text(site.config.read_text().replace(
        'kind = "local"\n', 'kind = "local"\nwatch_pickup = true\n', 1))
    daemon = DaemonProcess(site)
    try:
        make_pdf(site.intake / "J-1" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-1", ["J-1/art.pdf"]))
        site.wait_status("J-1", "InHotFolder")
        subprocess.run(["umount", "-l", str(small_disk)], check=True)
        mount_tmpfs(small_disk).check_returncode()  # another file system there: the file is gone
        job = site.wait_status("J-1", "InProduction", timeout=25)
        assert "the RIP took" in job["history"][-1]["message"]
    finally:
        daemon.stop()
