"""Preflight on real PDFs made with pikepdf."""

from __future__ import annotations

import itertools
from pathlib import Path

import pikepdf
import pytest

from outputd.pipeline import preflight
from outputd.tickets import Product
from tests.helpers import make_pdf

A5 = Product.model_validate({
    "type": "static", "sku": "A5", "name": "A5", "trim": {"width_mm": 148, "height_mm": 210},
    "bleed_mm": 3, "pages": {"min": 1, "max": 4},
})


def run(path: Path, product: Product = A5, limit: int = 10 << 20) -> preflight.Report:
    return preflight.run([(path, path.name)], product, limit)


def failed(report: preflight.Report) -> dict[str, str]:
    return {c.check: c.message for c in report.failures()}


def test_media_with_bleed_and_no_boxes_passes(tmp_path: Path):
    assert run(make_pdf(tmp_path / "a.pdf", width_mm=154, height_mm=216)).ok


def test_trimbox_is_read_raw_and_landscape_is_accepted(tmp_path: Path):
    pdf = make_pdf(tmp_path / "a.pdf", width_mm=216, height_mm=154, trim_mm=(210, 148))
    assert run(pdf).ok


def test_wrong_size_names_page_and_sizes_in_mm(tmp_path: Path):
    report = run(make_pdf(tmp_path / "a.pdf", pages=3, width_mm=210, height_mm=297))
    assert not report.ok
    assert failed(report)["page_size"] == (
        "a.pdf: page 1 is 210.0 × 297.0 mm; the product is 148.0 × 210.0 mm with 3.0 mm "
        "bleed (and 2 more pages)")


def test_missing_bleed_fails(tmp_path: Path):
    report = run(make_pdf(tmp_path / "a.pdf", width_mm=150, height_mm=212, trim_mm=(148, 210)))
    assert failed(report)["bleed"] == (
        "a.pdf: page 1 has 1.0 mm bleed; the product needs 3.0 mm (and 1 more page)")


def test_trim_size_without_bleed_fails_the_bleed_check(tmp_path: Path):
    report = run(make_pdf(tmp_path / "a.pdf", width_mm=148, height_mm=210))
    assert "0.0 mm bleed" in failed(report)["bleed"]


def test_page_count_rules(tmp_path: Path):
    exact = A5.model_copy(update={"pages": A5.pages.model_copy(update={"exact": 2})})
    assert run(make_pdf(tmp_path / "a.pdf", pages=2), exact).ok
    assert "needs exactly 2" in failed(run(make_pdf(tmp_path / "b.pdf", pages=3), exact))[
        "page_count"]
    multiple = A5.model_copy(update={"pages": A5.pages.model_copy(update={"multiple_of": 2})})
    assert "a multiple of 2" in failed(run(make_pdf(tmp_path / "c.pdf", pages=3), multiple))[
        "page_count"]
    assert "at most 4" in failed(run(make_pdf(tmp_path / "d.pdf", pages=5)))["page_count"]


def test_file_size_limit(tmp_path: Path):
    pdf = make_pdf(tmp_path / "a.pdf", padding=50_000)
    assert "the limit is 10000" in failed(run(pdf, limit=10_000))["file_size"]
    small = A5.model_copy(update={"max_file_bytes": 20_000})
    assert not run(pdf, small).ok


@pytest.mark.parametrize(("content", "words"), [
    (b"<html><body>not a pdf</body></html>", "is an HTML page"),
    (b"GIF89a....", "is not a PDF"),
    (b"", "is empty"),
    (b"%PDF-1.7\n1 0 obj\n<<", "ends without %%EOF: the file was cut short"),
    (b"%PDF-1.7\n1 0 obj\n<<\n%%EOF\n", "not a readable PDF"),
])
def test_files_that_are_not_pdfs_fail(tmp_path: Path, content: bytes, words: str):
    path = tmp_path / "x.pdf"
    path.write_bytes(content)
    report = run(path)
    assert not report.ok
    assert words in report.summary()


def test_a_password_protected_file_fails(tmp_path: Path):
    pdf = make_pdf(tmp_path / "plain.pdf")
    locked = tmp_path / "locked.pdf"
    with pikepdf.open(pdf) as doc:
        doc.save(locked, encryption=pikepdf.Encryption(user="secret", owner="owner"))
    assert "needs a password" in failed(run(locked))["encryption"]


def test_combined_page_count_applies_to_multipart(tmp_path: Path):
    booklet = A5.model_copy(update={
        "type": "multipart", "pages": A5.pages.model_copy(update={"min": 4, "max": 8})})
    cover = make_pdf(tmp_path / "cover.pdf", pages=2)
    body = make_pdf(tmp_path / "body.pdf", pages=2)
    assert preflight.run([(cover, "cover.pdf"), (body, "body.pdf")], booklet, 10 << 20).ok
    report = preflight.run([(cover, "cover.pdf")], booklet, 10 << 20)
    assert "the combined document has 2 pages" in report.summary()


def _page_contents(path: Path) -> list[bytes]:
    with pikepdf.open(path) as pdf:
        return [b"".join(c.read_bytes() for c in (
            page.obj.Contents if isinstance(page.obj.Contents, pikepdf.Array)
            else [page.obj.Contents])) for page in pdf.pages]


def _generated(tmp_path: Path) -> list[Path]:
    files = [make_pdf(tmp_path / "two.pdf", pages=2, label="two"),
             make_pdf(tmp_path / "four.pdf", pages=4, label="four" * 50),
             make_pdf(tmp_path / "padded.pdf", pages=3, padding=20_000, label="padded")]
    compressed = tmp_path / "compressed.pdf"
    with pikepdf.open(files[1]) as pdf:
        for page in pdf.pages:
            page.obj.Contents = pdf.make_stream(page.obj.Contents.read_bytes() * 40)
        pdf.save(compressed, compress_streams=True)
    return [*files, compressed]


def test_a_truncated_upload_either_fails_or_is_complete(tmp_path: Path):
    """Cut at 10 % … 95 % of several files (and the same with a `%%EOF` added after the
    cut): no cut passes with a page whose content is gone (qpdf's repair drops what
    points at nothing, which a RIP would print as a blank page)."""
    passed_incomplete = []
    for original in _generated(tmp_path):
        data = original.read_bytes()
        whole = _page_contents(original)
        for percent, ending in itertools.product(range(10, 100, 5), (b"", b"\n%%EOF\n")):
            cut = tmp_path / f"{original.stem}-{percent}{'-eof' if ending else ''}.pdf"
            cut.write_bytes(data[: len(data) * percent // 100] + ending)
            if not run(cut).ok:
                continue
            try:
                complete = _page_contents(cut) == whole
            except Exception:  # noqa: BLE001 - not readable is not complete
                complete = False
            if not complete:
                passed_incomplete.append(cut.name)
    assert passed_incomplete == []


def test_a_repaired_file_is_marked_to_be_saved_again(tmp_path: Path):
    """Not passed through byte for byte: its repair is what a RIP must get."""
    path = make_pdf(tmp_path / "a.pdf")
    data = path.read_bytes()
    cut = data.rfind(b"xref")
    path.write_bytes(data[:cut] + b"xref\n0 9\ngarbage\ntrailer\n<<>>\n%%EOF\n")
    report = run(path)
    assert report.ok
    assert [c.severity for c in report.checks if c.check == "structure"] == ["warning"]
    assert report.files[0]["resave"] is True


def test_the_summary_names_each_failed_check_and_no_check_passes_that_did_not_apply(
        tmp_path: Path):
    two_pages = A5.model_copy(update={"pages": A5.pages.model_copy(update={"max": 2})})
    report = run(make_pdf(tmp_path / "art.pdf", pages=3, width_mm=210, height_mm=297,
                          bleed_mm=0), two_pages)
    summary = report.summary()
    assert summary.startswith("art.pdf has 3 pages; the product needs at most 2; "
                              "art.pdf: page 1 is 210.0 × 297.0 mm")
    assert "(and 2 more pages)" in summary
    bleed = [c.message for c in report.checks if c.check == "bleed"]
    assert bleed == ["art.pdf: the bleed was not checked on pages of the wrong size"]


def test_every_check_carries_its_result_and_the_pages_it_found(tmp_path: Path):
    """DESIGN §5: `result` and `pages` on every check; only the pages at fault."""
    path = make_pdf(tmp_path / "a.pdf", pages=4)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        for number in (2, 4):  # trim size with no bleed on pages 2 and 4
            pdf.pages[number - 1].mediabox = [0, 0, 148 * 72 / 25.4, 210 * 72 / 25.4]
        pdf.save(path)
    report = run(path).as_json()
    results = {c["check"]: (c["result"], c["pages"]) for c in report["checks"]}
    assert results["bleed"] == ("failed", [2, 4])
    assert results["page_count"] == ("passed", [])
    assert all(c["result"] in ("passed", "warned", "failed", "fixed")
               and isinstance(c["pages"], list) for c in report["checks"])
