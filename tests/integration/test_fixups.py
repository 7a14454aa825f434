"""Fix-ups (DESIGN §14) read back from the mended file: a turned page rendered upright,
boxes of the right sizes, a scaled page within 0.1 mm; and a clean file left alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pikepdf

from outputd.config import PreflightConfig
from outputd.pipeline import preflight
from outputd.pipeline.report import Check
from outputd.tickets import Product
from tests.conftest import require_tool
from tests.helpers import make_pdf

A5 = Product.model_validate({
    "type": "static", "sku": "A5", "name": "A5", "trim": {"width_mm": 148, "height_mm": 210},
    "bleed_mm": 3, "pages": {"min": 1, "max": 8}})
PT = 72 / 25.4
ALL_FIXES = {"fix_rotate": True, "fix_boxes": True, "fix_scale": True}


def mend(path: Path, tmp_path: Path, **settings) -> tuple[dict[str, Check], Path | None]:
    report = preflight.run([(path, path.name)], A5, 100 << 20,
                           PreflightConfig(**settings), fix_dir=tmp_path / "fixed")
    copy = report.files[0].get("fixed")
    return ({c.check: c for c in report.checks if c.fixed},
            tmp_path / "fixed" / copy if copy else None)


def grey(pdf: Path, page: int = 1) -> list[list[int]]:
    """Page `page` rendered at 20 dpi, as rows of grey levels (PGM)."""
    out = subprocess.run([require_tool("pdftoppm"), "-gray", "-r", "20", "-f", str(page),
                          "-l", str(page), "-singlefile", str(pdf)], capture_output=True,
                         check=True).stdout
    magic, width, height, _, data = out.split(maxsplit=4)
    assert magic == b"P5"
    w, h = int(width), int(height)
    return [list(data[y * w:(y + 1) * w]) for y in range(h)]


def test_a_turned_page_is_turned_upright_and_renders_as_the_same_art_turned(
        tmp_path: Path):
    path = make_pdf(tmp_path / "landscape.pdf", pages=2, width_mm=216, height_mm=154,
                    trim_mm=(210, 148))
    fixed, copy = mend(path, tmp_path, fix_rotate=True)
    assert copy is not None and fixed["rotate"].pages == (1, 2)
    before, after = grey(path), grey(copy)
    assert len(after) > len(after[0])  # portrait now, as the product
    turned = [list(row) for row in zip(*before[::-1], strict=True)]  # clockwise
    assert len(turned) == len(after) and len(turned[0]) == len(after[0])
    differ = sum(abs(a - b) > 64 for ra, rb in zip(turned, after, strict=True)
                 for a, b in zip(ra, rb, strict=True))
    ink = sum(v < 128 for row in after for v in row)
    assert ink > 20 and differ <= ink // 10  # the same picture, turned clockwise
    with pikepdf.open(path) as original:  # the original stays as it came
        assert "/Rotate" not in original.pages[0].obj


def test_a_page_of_trim_and_bleed_gets_its_boxes(tmp_path: Path):
    path = make_pdf(tmp_path / "noboxes.pdf", pages=3, width_mm=154, height_mm=216)
    fixed, copy = mend(path, tmp_path, fix_boxes=True)
    assert copy is not None and fixed["boxes"].pages == (1, 2, 3)
    with pikepdf.open(copy) as pdf:
        for page in pdf.pages:
            trim = [float(v) / PT for v in page.obj.TrimBox]
            bleed = [float(v) / PT for v in page.obj.BleedBox]
            assert all(abs(a - b) < 0.01 for a, b in zip(trim, [3, 3, 151, 213], strict=True))
            assert all(abs(a - b) < 0.01 for a, b in zip(bleed, [0, 0, 154, 216],
                                                         strict=True))


def test_a_page_a_little_off_size_is_scaled_to_the_trim_within_a_tenth_of_a_mm(
        tmp_path: Path):
    path = make_pdf(tmp_path / "off.pdf", pages=2, width_mm=156, height_mm=217,
                    trim_mm=(150, 211))  # 1.4 % too wide, 0.5 % too tall
    checks = {c.check: c for c in preflight.run([(path, "off.pdf")], A5, 1 << 30).checks}
    assert checks["page_size"].result == "failed"  # without the fix-up
    fixed, copy = mend(path, tmp_path, fix_scale=True)
    assert copy is not None and fixed["scale"].pages == (1, 2)
    with pikepdf.open(copy) as pdf:
        page = pdf.pages[0]
        trim = [float(v) / PT for v in page.obj.TrimBox]
        assert abs(trim[2] - trim[0] - 148) <= 0.1 and abs(trim[3] - trim[1] - 210) <= 0.1
        assert [round(float(v) / PT, 1) for v in page.mediabox] == [0, 0, 154, 216]
        # the old trim's corners, through the content's new matrix, land on the new trim
        first = pikepdf.parse_content_stream(page)
        cm = next(op for op in first if str(op.operator) == "cm")
        a, _, _, d, e, f = (float(v) for v in cm.operands)
        x0, y0 = 3 * PT, 3 * PT  # the old trim began 3 mm in
        lows = [(a * x0 + e) / PT, (d * y0 + f) / PT]
        highs = [(a * (x0 + 150 * PT) + e) / PT, (d * (y0 + 211 * PT) + f) / PT]
        scale = min(148 / 150, 210 / 211)
        assert abs(a - scale) < 1e-4 and abs(d - scale) < 1e-4  # aspect kept
        assert abs((lows[0] + highs[0]) / 2 - (trim[0] + trim[2]) / 2) <= 0.1  # centred
        assert abs((lows[1] + highs[1]) / 2 - (trim[1] + trim[3]) / 2) <= 0.1
        assert abs(highs[0] - lows[0] - 148) <= 0.1  # the limiting side fills the trim
    checks = {c.check: c for c in preflight.run([(copy, "off.pdf")], A5, 1 << 30).checks}
    assert checks["page_size"].result == "passed" and checks["bleed"].result == "passed"


def test_a_page_far_off_size_is_not_scaled(tmp_path: Path):
    path = make_pdf(tmp_path / "a4.pdf", width_mm=216, height_mm=303, trim_mm=(210, 297))
    fixed, copy = mend(path, tmp_path, **ALL_FIXES)
    assert fixed == {} and copy is None


def test_a_clean_file_is_left_byte_for_byte(tmp_path: Path):
    path = make_pdf(tmp_path / "clean.pdf", trim_mm=(148, 210))
    fixed, copy = mend(path, tmp_path, **ALL_FIXES)
    assert fixed == {} and copy is None and not (tmp_path / "fixed").exists()
