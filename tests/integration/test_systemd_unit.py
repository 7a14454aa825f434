"""The unit file passes systemd's own checks: verify, and the security exposure score."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool

UNIT = Path(__file__).parents[2] / "systemd" / "outputd.service"
WEB_UNIT = UNIT.with_name("outputd-web.service")
BOTH = pytest.mark.parametrize("unit", [UNIT, WEB_UNIT], ids=["daemon", "web"])


@BOTH
def test_unit_verifies(tmp_path: Path, unit: Path):
    analyze = require_tool("systemd-analyze")
    # Verify a copy whose ExecStart names this checkout's outputd, which exists here.
    outputd = Path(sys.executable).parent / "outputd"
    assert outputd.exists()
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/outputd/bin/outputd", str(outputd)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@BOTH
def test_unit_exposure_is_low(unit: Path):
    analyze = require_tool("systemd-analyze")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=25", str(unit)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overall exposure level" in done.stdout


def test_unit_is_type_notify_with_watchdog_and_hardening():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=outputd",
                 "StateDirectory=outputd", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ProtectHome=yes", "SystemCallFilter=@system-service",
                 "ExecReload=/bin/kill -HUP $MAINPID", "UMask=0027", "MemoryMax=",
                 "TasksMax=", "StateDirectoryMode=0700"):
        assert line in text


def test_the_web_unit_runs_outputd_web_as_outputd_hardened_alike():
    web, daemon = WEB_UNIT.read_text(), UNIT.read_text()
    assert "ExecStart=/opt/outputd/bin/outputd web --config /etc/outputd/outputd.toml" in web
    hardening = [line for line in daemon.splitlines()
                 if line.startswith(("Protect", "Private", "Restrict", "SystemCall", "User=",
                                     "NoNewPrivileges", "Capability", "UMask"))]
    assert hardening and all(line in web.splitlines() for line in hardening)


def test_shared_folders_are_sticky_and_setgid_and_state_is_private():
    folders = {}
    for line in (UNIT.parent / "outputd.tmpfiles").read_text().splitlines():
        if line.startswith("d "):
            _, path, mode, user, group, _ = line.split()
            folders[path] = (int(mode, 8), user, group)
    intake_mode, _, intake_group = folders["/srv/outputd/intake"]
    assert intake_mode & 0o1000 and intake_mode & 0o2000  # sticky and setgid
    assert intake_mode & 0o007 == 0 and intake_group == "outputd-submit"
    hot_mode, _, hot_group = folders["/srv/outputd/hot"]
    assert hot_mode & 0o2000 and hot_mode & 0o007 == 0 and hot_group == "outputd-rip"
    groups = (UNIT.parent / "outputd.sysusers").read_text()
    assert "g outputd-submit" in groups and "g outputd-rip" in groups
