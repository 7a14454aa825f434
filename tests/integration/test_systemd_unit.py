"""The unit file passes systemd's own checks: verify, and the security exposure score."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool

UNIT = Path(__file__).parents[2] / "systemd" / "outputd.service"


def test_unit_verifies(tmp_path: Path):
    analyze = require_tool("systemd-analyze")
    # Verify a copy whose ExecStart names this checkout's outputd, which exists here.
    outputd = Path(sys.executable).parent / "outputd"
    assert outputd.exists()
    copy = tmp_path / "outputd.service"
    copy.write_text(UNIT.read_text().replace("/usr/local/bin/outputd", str(outputd)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


def test_unit_exposure_is_low():
    analyze = require_tool("systemd-analyze")
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--threshold=25", str(UNIT)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert "Overall exposure level" in done.stdout


def test_unit_is_type_notify_with_watchdog_and_hardening():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=outputd",
                 "StateDirectory=outputd", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "ProtectHome=yes", "SystemCallFilter=@system-service",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text
