"""A file that breaks the time limit fails on its own; the daemon carries on."""

from __future__ import annotations

from pathlib import Path

import pikepdf

from tests.conftest import DaemonProcess, Site
from tests.helpers import drop_ticket, job_ticket, make_pdf
from tests.pdfs import new_page, save


def test_a_slow_file_fails_with_the_time_limit_and_others_go_on(tmp_path: Path):
    site = Site(tmp_path / "site", limits="job_timeout_s = 1")
    daemon = DaemonProcess(site)
    try:
        pdf = pikepdf.new()
        new_page(pdf, b"0 0 m 1 1 l S\n" * 3_000_000)
        save(pdf, site.intake / "J-SLOW" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-SLOW", ["J-SLOW/art.pdf"]))
        make_pdf(site.intake / "J-OK" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-OK", ["J-OK/art.pdf"]))
        job = site.wait_status("J-SLOW", "ValidationFailed", timeout=30)
        assert "took longer than limits.job_timeout_s = 1 s" in job["history"][-1]["message"]
        assert job["preflight"]["checks"][0]["check"] == "limits"
        site.wait_status("J-OK", "InHotFolder", timeout=30)
        assert "pdf.timeout" in site.log.read_text()
        make_pdf(site.intake / "J-AFTER" / "art.pdf")
        drop_ticket(site.intake, job_ticket("J-AFTER", ["J-AFTER/art.pdf"]))
        site.wait_status("J-AFTER", "InHotFolder", timeout=30)  # the replaced process works
    finally:
        assert daemon.stop() == 0
