"""PDF work in a pre-started process under time and memory limits."""

from __future__ import annotations

import time
from pathlib import Path

import pikepdf
import pytest

from outputd.config import PreflightConfig
from outputd.pipeline.sandbox import LimitBroken, PdfProcess
from outputd.tickets import Product
from tests.helpers import make_pdf
from tests.pdfs import flate_bomb, new_page, save

A5 = Product.model_validate({
    "type": "static", "sku": "A5", "name": "A5", "trim": {"width_mm": 148, "height_mm": 210},
    "bleed_mm": 3, "pages": {"min": 1, "max": 8},
})


def preflight(process: PdfProcess, path: Path):
    return process.call("preflight", [(path, path.name)], A5, 1 << 40, PreflightConfig())


@pytest.fixture
def process():
    proc = PdfProcess(memory_mb=1024, timeout_s=2)
    yield proc
    proc.close()


def test_work_runs_in_the_process(process: PdfProcess, tmp_path: Path):
    report = preflight(process, make_pdf(tmp_path / "ok.pdf"))
    assert report.ok
    assert process._proc.pid != __import__("os").getpid()


def test_a_slow_file_breaks_the_time_limit_and_the_process_is_replaced(tmp_path: Path):
    process = PdfProcess(memory_mb=1024, timeout_s=0.5)
    try:
        pdf = pikepdf.new()
        new_page(pdf, b"0 0 m 1 1 l S\n" * 2_000_000)  # millions of operators to parse
        slow = save(pdf, tmp_path / "slow.pdf")
        first = process._proc.pid
        started = time.monotonic()
        with pytest.raises(LimitBroken, match="took longer than limits.job_timeout_s = 0.5 s"):
            preflight(process, slow)
        assert time.monotonic() - started < 2
        assert process._proc.pid != first  # replaced
        assert preflight(process, make_pdf(tmp_path / "ok.pdf")).ok  # and working
    finally:
        process.close()


def test_a_file_that_needs_too_much_memory_fails(tmp_path: Path):
    pdf = pikepdf.new()
    page = new_page(pdf, b"")
    page.obj.Contents = flate_bomb(pdf, 250 << 20)  # 250 MB of blanks: under qpdf's limit
    big = save(pdf, tmp_path / "big.pdf")
    roomy = PdfProcess(memory_mb=2048, timeout_s=20)
    tight = PdfProcess(memory_mb=400, timeout_s=20)
    try:
        assert preflight(roomy, big).ok  # it is only big
        report = preflight(tight, big)  # the allocation fails inside qpdf, not the worker
        assert not report.ok and "cannot be read" in report.summary()
        assert preflight(tight, make_pdf(tmp_path / "ok.pdf")).ok
    finally:
        roomy.close()
        tight.close()


def test_a_process_that_dies_is_replaced(process: PdfProcess, tmp_path: Path):
    process._proc.kill()
    process._proc.join()
    assert preflight(process, make_pdf(tmp_path / "ok.pdf")).ok


def test_stage_errors_come_back_as_they_are(process: PdfProcess, tmp_path: Path):
    from outputd.errors import OutputFailed
    from outputd.tickets import JobTicket
    from tests.helpers import job_ticket

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7 nothing else")
    ticket = JobTicket.model_validate(job_ticket("J-1", ["a.pdf", "b.pdf"],
                                                 product_type="multipart"))
    with pytest.raises(OutputFailed, match="J-1"):
        process.call("assemble", ticket, [(broken, "a"), (broken, "b")], tmp_path / "out")
