"""The checks print fails on (DESIGN §14), each with a passing and a failing side and the
pages at fault, on PDFs built here; what a page prints besides its own content (patterns,
annotations, Type 3 glyphs, soft masks); and profiles."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pikepdf
import pytest

from outputd.config import PreflightConfig, PreflightSettings
from outputd.pipeline import preflight
from outputd.pipeline.report import Check
from outputd.tickets import Product
from tests.conftest import require_tool
from tests.pdfs import font, form, image, new_page, output_intent, save

A5 = Product.model_validate({
    "type": "static", "sku": "A5", "name": "A5", "trim": {"width_mm": 148, "height_mm": 210},
    "bleed_mm": 3, "pages": {"min": 1, "max": 8}})


def resources(pdf: pikepdf.Pdf, **extra: Any) -> pikepdf.Dictionary:
    """A page's resources: font F1 (embedded), the overprinting state GO, and `extra`."""
    found = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font(pdf, "Body", True)),
                               ExtGState=pikepdf.Dictionary(
                                   GO=pikepdf.Dictionary(OP=True, op=True)))
    for key, value in extra.items():
        found[f"/{key}"] = value
    return found


def build(tmp_path: Path, pages: list[bytes], name: str = "t.pdf", **extra: Any) -> Path:
    pdf = pikepdf.new()
    for content in pages:
        new_page(pdf, content, resources(pdf, **extra))
    return save(pdf, tmp_path / name)


def found(path: Path, product: Product = A5, profile: str | None = None,
          **settings: Any) -> dict[str, Check]:
    report = preflight.run([(path, path.name)], product, 100 << 20,
                           PreflightConfig(**settings), profile)
    return {c.check: c for c in report.checks}


TEXT = b"BT /F1 12 Tf 20 20 Td (Hello) Tj ET"


def test_white_set_to_overprint_fails_on_its_pages_and_white_knocking_out_passes(
        tmp_path: Path):
    path = build(tmp_path, [
        b"1 g " + TEXT + b" /GO gs 0 g " + TEXT,  # white knocks out; black overprints
        b"/GO gs 1 g " + TEXT,  # white text set to overprint
        b"/GO gs 0 0 0 0 k 10 10 50 50 re f",  # a white CMYK box set to overprint
    ])
    check = found(path)["white_overprint"]
    assert (check.result, check.pages) == ("failed", (2, 3))
    assert "white text on page 2 are set to overprint" in check.message
    clean = build(tmp_path, [b"1 g " + TEXT + b" /GO gs 0 g " + TEXT], "clean.pdf")
    assert found(clean)["white_overprint"].result == "passed"


def test_overprint_warns_only_where_the_press_does_not_simulate_it(tmp_path: Path):
    path = build(tmp_path, [TEXT, b"/GO gs 0 0 0 1 k " + TEXT])
    assert found(path)["overprint"].result == "passed"  # the default press simulates it
    check = found(path, profile="digital-cutsheet")["overprint"]
    assert (check.result, check.pages) == ("warned", (2,))


def test_the_registration_colour_in_content(tmp_path: Path):
    spaces = pikepdf.Dictionary(Reg=pikepdf.Array([
        pikepdf.Name.Separation, pikepdf.Name.All, pikepdf.Name.DeviceCMYK,
        pikepdf.Dictionary(FunctionType=2, Domain=[0, 1], C0=[0, 0, 0, 0],
                           C1=[1, 1, 1, 1], N=1)]))
    path = build(tmp_path, [TEXT, b"/Reg cs 1 scn " + TEXT], ColorSpace=spaces)
    check = found(path)["registration"]
    assert (check.result, check.pages) == ("warned", (2,))
    assert found(path, profile="sheetfed-offset")["registration"].result == "failed"
    assert found(build(tmp_path, [TEXT], "clean.pdf"))["registration"].result == "passed"


def spot(name: str) -> pikepdf.Array:
    return pikepdf.Array([pikepdf.Name.Separation, pikepdf.Name("/" + name),
                          pikepdf.Name.DeviceCMYK, pikepdf.Dictionary(
                              FunctionType=2, Domain=[0, 1], C0=[0, 0, 0, 0],
                              C1=[0, 0.5, 1, 0], N=1)])


def test_spot_colours_the_shop_does_not_print(tmp_path: Path):
    spaces = pikepdf.Dictionary(S1=spot("PANTONE 185 C"), S2=spot("Gold"))
    path = build(tmp_path, [b"/S1 cs 1 scn " + TEXT, b"/S2 cs 0.5 scn 1 1 9 9 re f"],
                 ColorSpace=spaces)
    assert "spot_names" not in found(path)  # no list: any spot colour
    check = found(path, spot_colours=["pantone 185 c"])["spot_names"]
    assert (check.result, check.pages) == ("failed", (2,))
    assert "spot colour Gold on page 2" in check.message
    assert found(path, spot_colours=["PANTONE 185 C", "Gold"])["spot_names"].ok


def test_hairlines_by_their_width_as_drawn(tmp_path: Path):
    path = build(tmp_path, [
        b"1 w 0 0 m 100 100 l S",
        b"q 0.5 0 0 0.5 0 0 cm 0.2 w 0 0 m 100 100 l S Q",  # 0.2 at half size: 0.1 pt
        b"0 w 0 0 m 100 100 l S",  # the thinnest line the device can draw
        b"0.1 w 0 0 100 100 re f",  # a thin width, but nothing stroked
    ])
    check = found(path)["hairlines"]
    assert (check.result, check.pages) == ("warned", (2, 3))
    assert "a line on page 2 is 0.10 pt wide" in check.message


def test_small_text_in_several_inks_or_a_spot(tmp_path: Path):
    spaces = pikepdf.Dictionary(S1=spot("PANTONE 185 C"))
    path = build(tmp_path, [
        b"0 0 0 1 k BT /F1 6 Tf (black only) Tj ET",
        b"0.6 0.5 0.4 1 k BT /F1 6 Tf (four colours) Tj ET",
        b"0.6 0.5 0.4 1 k BT /F1 12 Tf 0.5 0 0 0.5 0 0 Tm (shrunk to 6 pt) Tj ET",
        b"/S1 cs 1 scn BT /F1 5 Tf (spot) Tj ET",
        b"0.6 0.5 0.4 1 k BT /F1 10 Tf (big enough) Tj ET",
    ], ColorSpace=spaces)
    check = found(path)["small_text"]
    assert (check.result, check.pages) == ("warned", (2, 3, 4))
    assert "text on page 2 is 6.0 pt in 4 process colours" in check.message
    assert found(path, profile="sheetfed-offset")["small_text"].result == "failed"


def xmp(pdf: pikepdf.Pdf, version: str) -> None:
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["pdfxid:GTS_PDFXVersion"] = version


def test_pdfx_is_read_from_the_xmp_and_the_output_intent(tmp_path: Path):
    pdf = pikepdf.new()
    new_page(pdf, TEXT, resources(pdf))
    output_intent(pdf, "FOGRA39")
    xmp(pdf, "PDF/X-4")
    check = found(save(pdf, tmp_path / "x4.pdf"))["pdfx"]
    assert check.result == "passed" and "PDF/X-4 in its XMP" in check.message

    pdf = pikepdf.new()
    new_page(pdf, TEXT, resources(pdf))
    output_intent(pdf, "FOGRA39")
    pdf.docinfo["/GTS_PDFXVersion"] = "PDF/X-4"  # in Info only, where X-4 is not read
    check = found(save(pdf, tmp_path / "info.pdf"))["pdfx"]
    assert check.result == "warned" and "only in its Info dictionary" in check.message

    pdf = pikepdf.new()
    new_page(pdf, TEXT, resources(pdf))
    xmp(pdf, "PDF/X-4")  # declared, with no output intent
    path = save(pdf, tmp_path / "nointent.pdf")
    assert "no PDF/X output intent" in found(path)["pdfx"].message
    assert found(path, require_pdfx=True)["pdfx"].result == "failed"
    plain = build(tmp_path, [TEXT], "plain.pdf")
    assert found(plain)["pdfx"].ok
    assert found(plain, require_pdfx=True)["pdfx"].result == "failed"


# -- what a page prints besides its own content -----------------------------------


def test_the_colour_of_a_shading_drawn_through_a_pattern(tmp_path: Path):
    pdf = pikepdf.new()
    shading = pikepdf.Dictionary(ShadingType=2, ColorSpace=pikepdf.Name.DeviceRGB,
                                 Coords=[0, 0, 100, 0], Function=pikepdf.Dictionary(
                                     FunctionType=2, Domain=[0, 1], C0=[1, 0, 0],
                                     C1=[0, 0, 1], N=1))
    pattern = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Pattern, PatternType=2,
                                                   Shading=shading))
    new_page(pdf, TEXT, resources(pdf))
    new_page(pdf, b"/Pattern cs /P1 scn 0 0 100 100 re f",
             resources(pdf, Pattern=pikepdf.Dictionary(P1=pattern)))
    check = found(save(pdf, tmp_path / "shading.pdf"))["colour"]
    assert (check.result, check.pages) == ("warned", (2,))
    assert "shadings" in check.message


def test_images_and_fonts_inside_a_tiling_pattern_and_a_soft_mask(tmp_path: Path):
    pdf = pikepdf.new()
    low = image(pdf, 20, 20, "/DeviceRGB")  # 20 px on 72 pt: 20 ppi
    cell = form(pdf, b"q 72 0 0 72 0 0 cm /Im1 Do Q",
                pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=low)))
    cell.PatternType, cell.PaintType, cell.TilingType = 1, 1, 1
    cell.XStep, cell.YStep = 100, 100
    cell.Type = pikepdf.Name.Pattern
    del cell["/Subtype"]
    group = form(pdf, b"BT /F9 12 Tf (mask) Tj ET", pikepdf.Dictionary(
        Font=pikepdf.Dictionary(F9=font(pdf, "Unembedded", False))))
    group.Group = pikepdf.Dictionary(S=pikepdf.Name.Transparency,
                                     CS=pikepdf.Name.DeviceGray)
    masked = pikepdf.Dictionary(SMask=pikepdf.Dictionary(S=pikepdf.Name.Luminosity,
                                                         G=group))
    new_page(pdf, TEXT, resources(pdf))
    new_page(pdf, b"/Pattern cs /P1 scn 0 0 200 200 re f",
             resources(pdf, Pattern=pikepdf.Dictionary(P1=pdf.make_indirect(cell))))
    new_page(pdf, b"/SM gs 0 0 100 100 re f",
             resources(pdf, ExtGState=pikepdf.Dictionary(SM=masked)))
    checks = found(save(pdf, tmp_path / "hidden.pdf"))
    assert (checks["image_resolution"].result, checks["image_resolution"].pages) == (
        "failed", (2,))
    assert "(in patterns)" in checks["image_resolution"].message
    assert checks["colour"].pages == (2,)
    assert (checks["fonts"].result, checks["fonts"].pages) == ("failed", (3,))


def annotation(pdf: pikepdf.Pdf, flags: int) -> pikepdf.Dictionary:
    look = form(pdf, b"BT /Helv 9 Tf 2 2 Td (field) Tj ET", pikepdf.Dictionary(
        Font=pikepdf.Dictionary(Helv=font(pdf, "Helvetica", False))))
    look.BBox = [0, 0, 100, 20]
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FreeText, Rect=[50, 50, 150, 70],
        F=flags, AP=pikepdf.Dictionary(N=look)))


def test_fonts_in_a_printing_annotation_count_and_a_screen_only_one_does_not(
        tmp_path: Path):
    pdf = pikepdf.new()
    new_page(pdf, TEXT, resources(pdf)).obj.Annots = pikepdf.Array([annotation(pdf, 0)])
    new_page(pdf, TEXT, resources(pdf)).obj.Annots = pikepdf.Array([annotation(pdf, 4)])
    new_page(pdf, TEXT, resources(pdf)).obj.Annots = pikepdf.Array([annotation(pdf, 4 | 2)])
    check = found(save(pdf, tmp_path / "annots.pdf"))["fonts"]
    assert (check.result, check.pages) == ("failed", (2,))
    assert "Helvetica" in check.message


def test_what_a_type3_glyph_draws(tmp_path: Path):
    pdf = pikepdf.new()
    glyph = pdf.make_stream(b"1000 0 0 0 1000 1000 d1 0.2 0.4 0.6 rg 0 0 1000 1000 re f")
    type3 = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type3, FontBBox=[0, 0, 1000, 1000],
        FontMatrix=[0.001, 0, 0, 0.001, 0, 0], CharProcs=pikepdf.Dictionary(a=glyph),
        Encoding=pikepdf.Dictionary(Differences=[97, pikepdf.Name.a]), FirstChar=97,
        LastChar=97, Widths=[1000], Resources=pikepdf.Dictionary()))
    new_page(pdf, TEXT, resources(pdf))
    new_page(pdf, b"BT /T3 12 Tf (a) Tj ET",
             resources(pdf, Font=pikepdf.Dictionary(T3=type3)))
    check = found(save(pdf, tmp_path / "type3.pdf"))["colour"]
    assert (check.result, check.pages) == ("warned", (2,))


# -- profiles -------------------------------------------------------------------------


def test_a_profile_sets_severities_and_settings_and_the_product_has_the_last_word(
        tmp_path: Path):
    path = build(tmp_path, [b"q 0.5 0 0 0.5 0 0 cm 0.2 w 0 0 m 100 100 l S Q"])
    config = PreflightConfig(profiles={
        "strict": PreflightSettings(min_line_pt=0.05, severity={"hairlines": "error"}),
        "quiet": PreflightSettings(severity={"hairlines": "off"}),
        "digital-cutsheet": PreflightSettings(min_line_pt=0.5)})
    run = lambda product, route=None: {  # noqa: E731
        c.check: c for c in preflight.run([(path, "t.pdf")], product, 1 << 30, config,
                                          route).checks}
    assert run(A5)["hairlines"].result == "warned"
    assert run(A5, "strict")["hairlines"].result == "passed"  # 0.1 pt is above 0.05
    assert "hairlines" not in run(A5, "quiet")
    bundled = run(A5, "digital-cutsheet")["hairlines"]  # the shop's key over the bundle's
    assert "at least 0.5 pt" in bundled.message
    own = Product.model_validate({**A5.model_dump(), "preflight": {"profile": "strict"}})
    assert run(own, "quiet")["hairlines"].result == "passed"  # the product's profile wins
    finer = Product.model_validate({**A5.model_dump(), "preflight": {
        "profile": "strict", "min_ppi_fail": 100}})
    config.profiles["strict"] = PreflightSettings(min_line_pt=0.2,
                                                  severity={"hairlines": "error"})
    assert run(finer)["hairlines"].result == "failed"
    unknown = Product.model_validate({**A5.model_dump(), "preflight": {"profile": "nope"}})
    assert [c.message for c in preflight.run([(path, "t.pdf")], unknown, 1 << 30,
                                             config).failures()] == [
        "the product names preflight profile 'nope', which this shop does not have"]


@pytest.mark.parametrize("name", ["digital-cutsheet", "sheetfed-offset"])
def test_bundled_profiles_pass_a_clean_file(tmp_path: Path, name: str):
    require_tool("gs")  # sheetfed-offset measures coverage
    path = build(tmp_path, [b"0 0 0 1 k " + TEXT])
    checks = found(path, profile=name)
    assert all(c.ok for c in checks.values()), [c.message for c in checks.values()
                                                if not c.ok]


def box_mm(x0: float, y0: float, x1: float, y1: float) -> bytes:
    pt = 72 / 25.4
    return f"{x0 * pt:.2f} {y0 * pt:.2f} {(x1 - x0) * pt:.2f} {(y1 - y0) * pt:.2f} re f".encode()


def test_total_area_coverage_is_measured_on_a_rendering_and_placed(tmp_path: Path):
    require_tool("gs")
    path = build(tmp_path, [
        b"0 0 0 1 k " + box_mm(10, 10, 100, 100),
        b"0 0 0 1 k " + box_mm(10, 10, 100, 100) + b" 1 1 1 1 k " + box_mm(20, 100, 40, 120),
        b"0.6 0.6 0.6 1 k " + box_mm(10, 10, 140, 200),  # 280 %
    ])
    assert "tac" not in found(path)  # no profile turns it on: no page is rendered
    check = found(path, severity={"tac": "error"})["tac"]
    assert (check.result, check.pages) == ("failed", (2,))
    numbers = [float(n) for n in re.findall(r"(\d+)–(\d+) mm", check.message)[0]
               + re.findall(r"(\d+)–(\d+) mm from the top", check.message)[0]]
    # the box is 20–40 mm from the left, and 216 - 120 = 96 to 116 mm from the top
    assert all(abs(a - b) <= 1.5 for a, b in zip(numbers, [20, 40, 96, 116], strict=True))
    assert "carries 400 % ink" in check.message
    assert found(path, profile="sheetfed-offset")["tac"].result == "failed"
    assert "tac" not in found(path, profile="digital-cutsheet")
    lower = found(path, severity={"tac": "warn"}, max_tac_pct=400)["tac"]
    assert lower.result == "passed" and "at most 400 % ink anywhere" in lower.message


def test_empty_pages_courier_and_a_spot_colour_defined_two_ways(tmp_path: Path):
    pdf = pikepdf.new()
    gold = spot("Gold")
    other_gold = spot("Gold")
    other_gold[3] = pikepdf.Dictionary(FunctionType=2, Domain=[0, 1], C0=[0, 0, 0, 0],
                                       C1=[0, 0.3, 0.9, 0.1], N=1)  # another look
    courier = font(pdf, "ABCDEF+CourierNewPSMT", True)
    new_page(pdf, b"/S1 cs 1 scn " + TEXT, resources(pdf, ColorSpace=pikepdf.Dictionary(
        S1=gold)))
    new_page(pdf, b"/S1 cs 1 scn 0 0 9 9 re f BT /C1 9 Tf (x) Tj ET", resources(
        pdf, ColorSpace=pikepdf.Dictionary(S1=other_gold),
        Font=pikepdf.Dictionary(C1=courier)))
    new_page(pdf, b"")
    new_page(pdf, b"q 1 0 0 1 5 5 cm Q")
    checks = found(save(pdf, tmp_path / "mixed.pdf"))
    assert (checks["empty_pages"].result, checks["empty_pages"].pages) == ("warned", (3, 4))
    assert (checks["font_courier"].result, checks["font_courier"].pages) == ("warned", (2,))
    assert "CourierNewPSMT" in checks["font_courier"].message
    ambiguous = checks["spot_ambiguous"]
    assert (ambiguous.result, ambiguous.pages) == ("warned", (1, 2))
    assert "spot colour Gold is defined 2 ways" in ambiguous.message
    same = build(tmp_path, [b"/S1 cs 1 scn " + TEXT, b"/S1 cs 0.5 scn 0 0 9 9 re f"],
                 "same.pdf", ColorSpace=pikepdf.Dictionary(S1=spot("Gold")))
    checks = found(same)
    assert checks["spot_ambiguous"].ok and checks["empty_pages"].ok
    assert checks["font_courier"].ok


def test_small_black_text_that_knocks_out(tmp_path: Path):
    path = build(tmp_path, [
        b"0 0 0 1 k BT /F1 8 Tf (knocks out) Tj ET",
        b"/GO gs 0 0 0 1 k BT /F1 8 Tf (overprints) Tj ET",
        b"0 g BT /F1 14 Tf (large enough) Tj ET",
        b"0.5 0 0 1 k BT /F1 8 Tf (rich black, not 100 % black) Tj ET",
    ])
    assert "black_overprint" not in found(path)  # off unless a profile asks
    check = found(path, profile="sheetfed-offset")["black_overprint"]
    assert (check.result, check.pages) == ("warned", (1,))
    assert "100 % black text of 8.0 pt on page 1 knocks out" in check.message
