"""Preflight of content: fonts, effective image resolution, colour, encryption, layers,
output intents and safety limits, on PDFs the tests build."""

from __future__ import annotations

import resource
import subprocess
import time
from pathlib import Path

import pikepdf

from outputd.config import PreflightConfig
from outputd.pipeline import preflight
from outputd.pipeline.assemble import assemble
from outputd.tickets import JobTicket, Product
from tests.conftest import require_tool
from tests.helpers import job_ticket, make_pdf
from tests.pdfs import (
    PT_PER_MM,
    flate_bomb,
    font,
    form,
    image,
    new_page,
    output_intent,
    save,
)

A5 = Product.model_validate({
    "type": "static", "sku": "A5", "name": "A5", "trim": {"width_mm": 148, "height_mm": 210},
    "bleed_mm": 3, "pages": {"min": 1, "max": 8},
})


def checks(path: Path, product: Product = A5, **settings) -> dict[str, preflight.Check]:
    report = preflight.run([(path, path.name)], product, 100 << 20,
                           PreflightConfig(**settings))
    return {c.check: c for c in report.checks}


def test_effective_ppi_of_a_rotated_placement(tmp_path: Path):
    pdf = pikepdf.new()
    img = image(pdf, 300, 600)
    # 1 × 2 inches, rotated 90°: x axis of the image runs up the page.
    content = b"q 0 72 -144 0 300 100 cm /Im1 Do Q"
    new_page(pdf, content, pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)))
    found = checks(save(pdf, tmp_path / "rot.pdf"))
    assert found["image_resolution"].ok
    assert "lowest 300 ppi" in found["image_resolution"].message


def test_ppi_through_a_form_xobject_with_its_matrix(tmp_path: Path):
    pdf = pikepdf.new()
    img = image(pdf, 100, 100)
    inner = form(pdf, b"q 72 0 0 72 0 0 cm /Im1 Do Q",
                 pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)),
                 matrix=(2, 0, 0, 2, 0, 0))  # the form doubles it: 2 inches wide
    new_page(pdf, b"/Fm1 Do", pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fm1=inner)))
    found = checks(save(pdf, tmp_path / "form.pdf"))
    check = found["image_resolution"]
    assert not check.ok and check.severity == "error"
    assert "image Im1 on page 1 is 50 ppi" in check.message


def test_inline_images_are_measured(tmp_path: Path):
    pdf = pikepdf.new()
    data = bytes(range(256)) * 4  # 32 × 32 gray
    content = (b"q 144 0 0 144 50 50 cm BI /W 32 /H 32 /CS /G /BPC 8 ID " + data +
               b" EI Q")
    new_page(pdf, content)
    found = checks(save(pdf, tmp_path / "inline.pdf"))
    assert "inline image on page 1 is 16 ppi" in found["image_resolution"].message


def test_ppi_between_the_limits_warns(tmp_path: Path):
    pdf = pikepdf.new()
    img = image(pdf, 150, 150)
    new_page(pdf, b"q 72 0 0 72 10 10 cm /Im1 Do Q",
             pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)))
    path = save(pdf, tmp_path / "warn.pdf")
    check = checks(path)["image_resolution"]
    assert not check.ok and check.severity == "warning"
    report = preflight.run([(path, "warn.pdf")], A5, 100 << 20)
    assert report.ok  # warnings do not block
    per_product = Product.model_validate({**A5.model_dump(),
                                          "preflight": {"min_ppi_fail": 160}})
    assert not preflight.run([(path, "warn.pdf")], per_product, 100 << 20).ok


def test_a_non_embedded_font_inside_a_form_fails_naming_it(tmp_path: Path):
    pdf = pikepdf.new()
    good = font(pdf, "Embedded-Bold", embedded=True)
    bad = font(pdf, "Helvetica", embedded=False)
    inner = form(pdf, b"BT /F2 12 Tf 10 10 Td (x) Tj ET",
                 pikepdf.Dictionary(Font=pikepdf.Dictionary(F2=bad)))
    new_page(pdf, b"BT /F1 12 Tf 10 10 Td (x) Tj ET /Fm1 Do",
             pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=good),
                                XObject=pikepdf.Dictionary(Fm1=inner)))
    check = checks(save(pdf, tmp_path / "fonts.pdf"))["fonts"]
    assert not check.ok
    assert check.message.endswith("font Helvetica on page 1 is not embedded")


def test_rgb_is_a_warning_unless_the_product_is_cmyk_only(tmp_path: Path):
    pdf = pikepdf.new()
    img = image(pdf, 600, 600, "/DeviceRGB")
    new_page(pdf, b"1 0 0 rg 0 0 10 10 re f q 144 0 0 144 0 0 cm /Im1 Do Q",
             pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)))
    path = save(pdf, tmp_path / "rgb.pdf")
    colour = checks(path)["colour"]
    assert colour.severity == "warning" and "images" in colour.message
    assert "colour operators" in colour.message
    assert checks(path, cmyk_only=True)["colour"].severity == "error"


def test_spot_colours_are_listed(tmp_path: Path):
    pdf = pikepdf.new()
    tint = pikepdf.Dictionary(FunctionType=2, Domain=[0, 1], C0=[0, 0, 0, 0],
                              C1=[0, 0.8, 0.9, 0], N=1)
    space = pikepdf.Array([pikepdf.Name.Separation, pikepdf.Name("/PANTONE 185 C"),
                           pikepdf.Name.DeviceCMYK, tint])
    new_page(pdf, b"/CS1 cs 1 scn 0 0 50 50 re f",
             pikepdf.Dictionary(ColorSpace=pikepdf.Dictionary(CS1=space)))
    assert "PANTONE 185 C" in checks(save(pdf, tmp_path / "spot.pdf"))["spot_colours"].message


def test_an_owner_password_forbidding_print_fails_and_one_allowing_it_passes(tmp_path: Path):
    source = make_pdf(tmp_path / "plain.pdf")
    with pikepdf.open(source) as pdf:
        pdf.save(tmp_path / "noprint.pdf", encryption=pikepdf.Encryption(
            owner="owner", user="", allow=pikepdf.Permissions(print_highres=False)))
        pdf.save(tmp_path / "print.pdf", encryption=pikepdf.Encryption(owner="owner", user=""))
    assert "forbids high-resolution printing" in checks(tmp_path / "noprint.pdf")[
        "encryption"].message
    allowed = checks(tmp_path / "print.pdf")["encryption"]
    assert allowed.ok and "written unencrypted" in allowed.message
    ticket = JobTicket.model_validate(job_ticket("J-1", ["x.pdf"]))
    [output] = assemble(ticket, [(tmp_path / "print.pdf", "part")], tmp_path / "out")
    with pikepdf.open(output.path) as pdf:
        assert not pdf.is_encrypted


def test_a_decompression_bomb_fails_quickly_and_small(tmp_path: Path):
    pdf = pikepdf.new()
    page = new_page(pdf, b"")
    page.obj.Contents = flate_bomb(pdf, 1 << 30)
    path = save(pdf, tmp_path / "bomb.pdf")
    assert path.stat().st_size < 2 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = preflight.run([(path, "bomb.pdf")], A5, 100 << 20)
    elapsed = time.monotonic() - started
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert not report.ok
    assert elapsed < 2.0
    assert grown_mb < 500
    assert "bomb.pdf" in report.summary()


def test_a_damaged_xref_is_repaired_with_a_warning(tmp_path: Path):
    good = make_pdf(tmp_path / "good.pdf")
    data = good.read_bytes()
    cut = data.rfind(b"xref")
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(data[:cut] + b"xref\n0 9\ngarbage\ntrailer\n<<>>\n%%EOF\n")
    found = checks(damaged)
    assert found["structure"].severity == "warning" and "repaired" in found["structure"].message
    assert preflight.run([(damaged, "damaged.pdf")], A5, 100 << 20).ok


def test_a_truncated_upload_fails(tmp_path: Path):
    pdf = pikepdf.new()
    img = image(pdf, 400, 400)
    new_page(pdf, b"q 144 0 0 144 0 0 cm /Im1 Do Q",
             pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=img)))
    path = save(pdf, tmp_path / "whole.pdf", compress_streams=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: len(data) // 3])
    assert not preflight.run([(cut, "cut.pdf")], A5, 100 << 20).ok


def test_javascript_and_embedded_files_are_reported(tmp_path: Path):
    pdf = pikepdf.new()
    new_page(pdf, b"")
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                             JS=pikepdf.String("app.alert(1)"))
    pdf.attachments["notes.txt"] = b"hello"
    found = checks(save(pdf, tmp_path / "js.pdf"))
    assert found["javascript"].severity == "warning"
    assert found["embedded_files"].severity == "warning"


def test_boxes_must_nest(tmp_path: Path):
    pdf = pikepdf.new()
    page = new_page(pdf, b"")
    w, h = 148 * PT_PER_MM, 210 * PT_PER_MM
    page.obj.TrimBox = pikepdf.Array([8.5, 8.5, 8.5 + w, 8.5 + h])
    page.obj.BleedBox = pikepdf.Array([10, 10, 400, 600])  # cuts into the trim
    assert "TrimBox reaches outside the BleedBox" in checks(save(pdf, tmp_path / "b.pdf"))[
        "boxes"].message


def _layered(pdf_path: Path, hidden: bool) -> Path:
    pdf = pikepdf.new()
    ocg = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.OCG,
                                               Name=pikepdf.String("Die line")))
    content = b"/OC /oc1 BDC 0 1 0 0 k 0 0 1000 1000 re f EMC"
    new_page(pdf, content, pikepdf.Dictionary(Properties=pikepdf.Dictionary(oc1=ocg)))
    pdf.Root.OCProperties = pikepdf.Dictionary(
        OCGs=pikepdf.Array([ocg]),
        D=pikepdf.Dictionary(OFF=pikepdf.Array([ocg] if hidden else []),
                             Order=pikepdf.Array([ocg])))
    return save(pdf, pdf_path)


def _magenta_share(pdf: Path, page: int, tmp_path: Path) -> float:
    """The share of a rendered page's pixels that are magenta (pdftoppm, raw PPM)."""
    prefix = tmp_path / f"render-{pdf.stem}-{page}"
    subprocess.run([require_tool("pdftoppm"), "-r", "10", "-f", str(page), "-l", str(page),
                    str(pdf), str(prefix)], check=True)
    ppm = next(tmp_path.glob(f"{prefix.name}*.ppm")).read_bytes()
    magic, width, height, maxval, pixels = ppm.split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    count = int(width) * int(height)
    magenta = sum(1 for i in range(0, count * 3, 3)
                  if pixels[i] > 180 and pixels[i + 1] < 80 and pixels[i + 2] > 100)
    return magenta / count


def test_a_hidden_layer_stays_hidden_after_combining(tmp_path: Path):
    visible = _layered(tmp_path / "part1.pdf", hidden=False)
    hidden = _layered(tmp_path / "part2.pdf", hidden=True)
    assert _magenta_share(visible, 1, tmp_path) > 0.5
    ticket = JobTicket.model_validate(job_ticket("J-1", ["a.pdf", "b.pdf"],
                                                 product_type="multipart"))
    [output] = assemble(ticket, [(visible, "cover"), (hidden, "body")], tmp_path / "out")
    combined = Path(output.path)
    assert output.pages == 2
    assert _magenta_share(combined, 1, tmp_path) > 0.5
    assert _magenta_share(combined, 2, tmp_path) < 0.01  # the die line stays hidden


def test_output_intent_is_kept_and_conflicting_ones_fail(tmp_path: Path):
    parts = []
    for name, condition in (("a", "FOGRA39"), ("b", "FOGRA39"), ("c", "GRACoL2013")):
        pdf = pikepdf.new()
        new_page(pdf, b"0 0 0 1 k 0 0 10 10 re f")
        output_intent(pdf, condition)
        parts.append(save(pdf, tmp_path / f"{name}.pdf"))
    booklet = A5.model_copy(update={"type": "multipart",
                                    "pages": A5.pages.model_copy(update={"min": 2})})
    ok = preflight.run([(parts[0], "a.pdf"), (parts[1], "b.pdf")], booklet, 100 << 20)
    assert ok.ok
    clash = preflight.run([(parts[0], "a.pdf"), (parts[2], "c.pdf")], booklet, 100 << 20)
    assert "different output intents: FOGRA39 (a.pdf), GRACoL2013 (c.pdf)" in clash.summary()
    ticket = JobTicket.model_validate(job_ticket("J-1", ["a.pdf", "b.pdf"],
                                                 product_type="multipart"))
    [output] = assemble(ticket, [(parts[0], "cover"), (parts[1], "body")], tmp_path / "out")
    with pikepdf.open(output.path) as pdf:
        assert str(pdf.Root.OutputIntents[0].OutputConditionIdentifier) == "FOGRA39"


def test_separate_outputs_and_megaedit_boxes(tmp_path: Path):
    a = make_pdf(tmp_path / "a.pdf", pages=2)
    b = make_pdf(tmp_path / "b.pdf", pages=3)
    separate = JobTicket.model_validate(job_ticket(
        "J-S", ["a.pdf", "b.pdf"], product_type="multipart", product={"assembly": "separate"}))
    outputs = assemble(separate, [(a, "cover"), (b, "body")], tmp_path / "sep")
    assert [(o.part, o.role, o.pages) for o in outputs] == [(1, "cover", 2), (2, "body", 3)]
    mega = JobTicket.model_validate(job_ticket("J-M", ["a.pdf", "b.pdf"],
                                               product_type="megaedit"))
    [merged] = assemble(mega, [(a, "page"), (b, "page")], tmp_path / "mega")
    with pikepdf.open(merged.path) as pdf:
        assert len(pdf.pages) == 5
        trim = [float(v) for v in pdf.pages[0].obj.TrimBox]
        assert abs((trim[2] - trim[0]) / PT_PER_MM - 148) < 0.01
        assert "/ObjStm" not in merged_bytes(Path(merged.path))


def merged_bytes(path: Path) -> str:
    return path.read_bytes().decode("latin-1")

