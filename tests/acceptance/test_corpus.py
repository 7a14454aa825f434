"""Every case of the bad-input corpus through one running daemon: each ends as expected
with a reason an operator understands; none crashes or stalls the daemon; no ticket is
lost."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, Site
from tests.corpus.cases import CASES, R, write_ticket
from tests.helpers import drop_ticket, job_ticket, make_pdf


@pytest.mark.slow
def test_the_bad_input_corpus(tmp_path: Path):
    assert len(CASES) >= 60
    site = Site(tmp_path / "site", limits="awaiting_data_timeout_s = 3")
    daemon = DaemonProcess(site)
    try:
        expected: dict[str, tuple[str, str, str]] = {}  # ticket name → (outcome, reason, job)
        for n, case in enumerate(CASES):
            job_id = f"K-{n:02d}"
            built = case.build(site.intake, job_id)
            name = f"{case.name}.json"
            write_ticket(site.intake, name, built if built is not None else b"")
            expected[name] = (case.outcome, case.reason, job_id)
        # A good job after all of them: the daemon still serves.
        make_pdf(site.intake / "GOOD" / "art.pdf")
        drop_ticket(site.intake, job_ticket("GOOD", ["GOOD/art.pdf"]))
        site.wait_status("GOOD", "InHotFolder", timeout=60)

        rejected = site.intake / "rejected"
        deadline = time.monotonic() + 60
        problems: list[str] = []
        for name, (outcome, reason, job_id) in expected.items():
            if outcome == R:
                error_file = rejected / f"{name}.error.json"
                while not error_file.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                if not error_file.exists():
                    problems.append(f"{name}: not rejected")
                    continue
                error = json.loads(error_file.read_text())
                if reason not in error["error"]:
                    problems.append(f"{name}: reason {error['error']!r} lacks {reason!r}")
                if not (rejected / name).exists():
                    problems.append(f"{name}: the ticket itself was not kept")
            else:
                try:
                    job = site.wait_status(job_id, outcome, timeout=max(
                        deadline - time.monotonic(), 1))
                except AssertionError:
                    problems.append(f"{name}: {job_id} is {site.show(job_id)['status']}, "
                                    f"not {outcome}")
                    continue
                said = " ".join([job["history"][-1]["message"]] + [
                    c["message"] for c in (job["preflight"] or {}).get("checks", [])])
                if reason not in said:
                    problems.append(f"{name}: {reason!r} not in {said[:300]!r}")
        assert problems == []
        assert daemon.proc.poll() is None
        assert "job.crashed" not in site.log.read_text()
        # Nothing lost: every ticket was accepted or kept in rejected/; what stays in the
        # intake are only the folders of rejected tickets that did not name their files.
        rejected_jobs = {job for outcome, _, job in expected.values() if outcome == R}
        leftovers = {p.name for p in site.intake.iterdir() if p.name != "rejected"}
        assert leftovers <= rejected_jobs
        assert not [p for p in site.intake.glob("*.json")]
    finally:
        daemon.stop()
