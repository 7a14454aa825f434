"""The job sheet read back as a person and a barcode reader would: rendered at 300 dpi
with pdftoppm and decoded with zbar, its text read with pdftotext, and checked by
outputd's own preflight."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from outputd.pipeline import jobsheet, preflight
from outputd.tickets import Product
from tests.conftest import require_tool
from tests.helpers import make_pdf

FACTS = jobsheet.SheetFacts(
    job_id="J-1001", order_id="5001", storefront="acme", customer="jdoe <jdoe@example.com>",
    product="A5 flyer", sku="FLYER-A5", quantity=250, pages=2,
    due="2026-12-01 15:00 UTC", attributes={"stock": "130gsm silk"})


def thumbnail(tmp_path: Path) -> bytes:
    pdf = make_pdf(tmp_path / "art.pdf")
    subprocess.run([require_tool("pdftoppm"), "-png", "-singlefile", "-scale-to-x", "300",
                    "-scale-to-y", "-1", str(pdf), str(tmp_path / "thumb")], check=True)
    return (tmp_path / "thumb.png").read_bytes()


def scanned(pdf: Path) -> str:
    """What a barcode reader reads off the sheet printed at 300 dpi."""
    subprocess.run([require_tool("pdftoppm"), "-png", "-r", "300", "-singlefile", str(pdf),
                    str(pdf.with_suffix(""))], check=True)
    done = subprocess.run([require_tool("zbarimg"), "--raw", "-q", "-Sdisable",
                           "-Scode128.enable", str(pdf.with_suffix(".png"))],
                          capture_output=True, text=True)
    return done.stdout.strip()


@pytest.mark.parametrize(("size", "name"), [(jobsheet.A4, "a4"),
                                            ((148 * 2.8346, 210 * 2.8346), "a5")])
def test_the_sheet_reads_as_its_job_for_a_person_and_a_reader(tmp_path: Path, size, name):
    path = tmp_path / f"sheet-{name}.pdf"
    path.write_bytes(jobsheet.sheet(FACTS, size, thumbnail(tmp_path)))
    assert scanned(path) == "J-1001"
    text = subprocess.run([require_tool("pdftotext"), str(path), "-"], capture_output=True,
                          text=True, check=True).stdout
    for value in ("J-1001", "5001", "acme", "jdoe@example.com", "A5 flyer", "FLYER-A5",
                  "250", "2026-12-01 15:00 UTC", "130gsm silk"):
        assert value in text, value


def test_our_own_preflight_passes_the_sheet(tmp_path: Path):
    path = tmp_path / "sheet.pdf"
    path.write_bytes(jobsheet.sheet(FACTS, jobsheet.A4, thumbnail(tmp_path)))
    a4 = Product.model_validate({
        "type": "static", "sku": "SHEET", "name": "job sheet", "bleed_mm": 0,
        "trim": {"width_mm": 210, "height_mm": 297}, "pages": {"min": 1, "max": 1}})
    report = preflight.run([(path, path.name)], a4, 10 << 20)
    assert report.ok, [c.message for c in report.failures()]
    assert [c.ok for c in report.checks if c.check == "fonts"] == [True]


def test_a_small_page_takes_a_separate_sheet():
    assert jobsheet.fits(*jobsheet.A4)
    assert not jobsheet.fits(85 * 2.8346, 55 * 2.8346)  # a business card
