"""A hot folder that is full or read-only: the job fails with the reason and recovers
when the folder does. Uses a small tmpfs the test mounts (root only)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IN_CI, DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs here: {done.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remount(mount: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount)], check=True)


def site_on(tmp_path: Path, hot: Path) -> Site:
    folder = ('[hotfolders.rip1]\nkind = "local"\n'
              f'path = "{hot}"\nfilename = "{{job_id}}.pdf"\n')
    site = Site(tmp_path / "site", hotfolders=folder)
    site.config.write_text(site.config.read_text().replace("min_free_mb = 10",
                                                           "min_free_mb = 0"))
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
