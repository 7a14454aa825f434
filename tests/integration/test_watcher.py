"""The intake watcher against a real folder: a ticket the intake cannot take in yet is
tried again, less often each time, and the reason is said once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from outputd.errors import IntakeDeferred
from outputd.intake import watcher as watcher_module
from outputd.intake.accept import Outcome
from outputd.intake.watcher import IntakeWatcher


class FlakyIntake:
    """Fails with the given errors in turn, then accepts."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls: list[float] = []

    def handle(self, path: Path) -> Outcome:
        self.calls.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        path.unlink()
        return Outcome("accepted", path.stem)


def run_until_accepted(tmp_path: Path, intake: FlakyIntake, accepted: list[int]) -> list[int]:
    """Drop a ticket and scan until it is accepted; returns the deferred count seen at
    each scan, and once more at the end."""
    watcher = IntakeWatcher(intake, tmp_path, lambda: accepted.append(1))  # type: ignore[arg-type]
    watcher.start()
    waiting = []
    try:
        temp = tmp_path / ".J-1.json.tmp"
        temp.write_text('{"job_id": "J-1"}')
        temp.rename(tmp_path / "J-1.json")  # one event, as producers drop tickets
        deadline = time.monotonic() + 10
        while not accepted and time.monotonic() < deadline:
            watcher.scan()
            waiting.append(watcher.deferred_count())
            time.sleep(0.02)
        waiting.append(watcher.deferred_count())
    finally:
        watcher.stop()
    return waiting


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(watcher_module, "SCAN_INTERVAL_S", 0.1)


def test_a_deferred_ticket_is_tried_again_less_often_and_said_once(tmp_path: Path, quick,
                                                                   caplog):
    full = "job J-1: its files cannot be kept in /srv: no space left on the device"
    intake = FlakyIntake([IntakeDeferred(full) for _ in range(4)])
    accepted: list[int] = []
    with caplog.at_level(logging.ERROR, logger="outputd.intake.watcher"):
        waiting = run_until_accepted(tmp_path, intake, accepted)
    assert accepted == [1] and len(intake.calls) == 5
    assert max(waiting) == 1 and waiting[-1] == 0  # counted while it waited, not after
    gaps = [b - a for a, b in zip(intake.calls, intake.calls[1:], strict=False)]
    assert all(gap >= 0.1 * 2 ** n * 0.95 for n, gap in enumerate(gaps)), gaps  # doubling
    said = [r for r in caplog.records if r.getMessage() == "intake.deferred"]
    assert len(said) == 1 and said[0].fields["reason"] == full  # type: ignore[attr-defined]


def test_an_unexpected_error_is_said_with_its_traceback_once_per_reason(tmp_path: Path,
                                                                        quick, caplog):
    intake = FlakyIntake([RuntimeError("database or disk is full"),
                          RuntimeError("database or disk is full"),
                          RuntimeError("database is locked")])
    accepted: list[int] = []
    with caplog.at_level(logging.ERROR, logger="outputd.intake.watcher"):
        run_until_accepted(tmp_path, intake, accepted)
    assert accepted == [1] and len(intake.calls) == 4
    failed = [r for r in caplog.records if r.getMessage() == "intake.failed"]
    assert [str(r.exc_info[1]) for r in failed if r.exc_info] == [
        "database or disk is full", "database is locked"]


def test_the_watcher_says_whether_it_runs(tmp_path: Path):
    watcher = IntakeWatcher(FlakyIntake([]), tmp_path, lambda: None)  # type: ignore[arg-type]
    assert not watcher.alive()
    watcher.start()
    assert watcher.alive()
    watcher.stop()
    assert not watcher.alive()
