"""Fix-ups (DESIGN §14): what preflight may mend in a copy of a file, when a profile
turns it on, each recorded as a check with result `fixed` and its pages.

- `rotate`: a page whose trim is the product's only when turned gets a /Rotate that
  turns it (clockwise) to the product's orientation;
- `boxes`: a page with no TrimBox whose MediaBox is exactly the trim and bleed gets
  TrimBox and BleedBox;
- `scale`: a page whose trim is within `scale_max_pct` of the product's is scaled to it,
  aspect kept, centred, with the product's bleed around it.

The copy is written only when something was fixed; the original stays as it came.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import pikepdf

from outputd.config import PreflightSettings
from outputd.fileutil import private_temp
from outputd.pipeline.assemble import SAVE_OPTIONS
from outputd.pipeline.geometry import BLEED_TOLERANCE_MM, MM_PER_PT, fits, page_geometry
from outputd.pipeline.report import Check
from outputd.tickets import Product


def fix(source: Path, target: Path, label: str, product: Product,
        settings: PreflightSettings) -> list[Check]:
    """Mend what the settings allow in a copy of `source` written to `target`; the
    fixed checks (none, and no copy, when nothing needed fixing or the file cannot be
    opened: preflight then reports on the original)."""
    if not (settings.fix_rotate or settings.fix_boxes or settings.fix_scale):
        return []
    try:
        with pikepdf.open(source) as pdf:
            if pdf.is_encrypted:
                return []
            done = _mend(pdf, product, settings)
            if not any(done.values()):
                return []
            target.parent.mkdir(parents=True, exist_ok=True)
            with private_temp(target) as temp:
                pdf.save(temp, **SAVE_OPTIONS)
                os.replace(temp, target)
    except (pikepdf.PdfError, OSError, ValueError, KeyError, TypeError, RecursionError):
        with contextlib.suppress(OSError):
            target.unlink()
        return []
    want = f"{product.trim.width_mm:g} × {product.trim.height_mm:g} mm"
    said = {
        "rotate": f"turned to the product's orientation ({want})",
        "boxes": "given a TrimBox and a BleedBox (the MediaBox held the trim and bleed)",
        "scale": f"scaled to the product's trim ({want}), aspect kept, centred",
    }
    return [Check(kind, True, f"{label}: {_pages(pages)} {said[kind]}", "info", label,
                  tuple(pages), fixed=True)
            for kind, pages in done.items() if pages]


def _pages(pages: list[int]) -> str:
    return ("page " if len(pages) == 1 else "pages ") + ", ".join(map(str, pages))


def _mend(pdf: pikepdf.Pdf, product: Product, settings: PreflightSettings
          ) -> dict[str, list[int]]:
    want_w, want_h, bleed = product.trim.width_mm, product.trim.height_mm, product.bleed_mm
    done: dict[str, list[int]] = {"rotate": [], "boxes": [], "scale": []}
    for number, page in enumerate(pdf.pages, start=1):
        geo = page_geometry(page, want_w, want_h, bleed)
        w, h = geo.trim.width, geo.trim.height
        if settings.fix_scale and not fits(w, h, want_w, want_h) and _near(
                w, h, want_w, want_h, settings.scale_max_pct):
            _scale(pdf, page, geo, want_w, want_h, bleed)
            done["scale"].append(number)
            geo = page_geometry(page, want_w, want_h, bleed)
            w, h = geo.trim.width, geo.trim.height
        elif settings.fix_boxes and "/TrimBox" not in page.obj and bleed > 0 and fits(
                w, h, want_w, want_h) and abs(geo.bleed - bleed) <= BLEED_TOLERANCE_MM:
            _boxes(page, bleed)
            done["boxes"].append(number)
        if settings.fix_rotate and _turned(page, w, h, want_w, want_h):
            page.obj.Rotate = (int(page.obj.get("/Rotate", 0)) + 90) % 360
            done["rotate"].append(number)
    return done


def _turned(page: pikepdf.Page, w: float, h: float, want_w: float, want_h: float) -> bool:
    """Whether the page, as shown (its /Rotate applied), is the product turned."""
    if abs(want_w - want_h) <= 0.5 or not fits(w, h, want_w, want_h):
        return False
    if int(page.obj.get("/Rotate", 0)) % 180:
        w, h = h, w
    return (w > h) != (want_w > want_h)


def _near(w: float, h: float, want_w: float, want_h: float, pct: float) -> bool:
    """Within `pct` per cent of the product's trim, in the page's own orientation."""
    if (w > h) != (want_w > want_h):
        want_w, want_h = want_h, want_w
    return abs(w / want_w - 1) * 100 <= pct and abs(h / want_h - 1) * 100 <= pct


def _boxes(page: pikepdf.Page, bleed_mm: float) -> None:
    media = [float(v) for v in page.mediabox]
    b = bleed_mm / MM_PER_PT
    page.obj.BleedBox = pikepdf.Array(media)
    page.obj.TrimBox = pikepdf.Array([media[0] + b, media[1] + b, media[2] - b, media[3] - b])


def _scale(pdf: pikepdf.Pdf, page: pikepdf.Page, geo: Any, want_w: float, want_h: float,
           bleed_mm: float) -> None:
    """Scale the content so the trim becomes the product's, centred, and set the boxes
    to the product's trim and bleed."""
    trim = geo.trim  # millimetres
    if (trim.width > trim.height) != (want_w > want_h):
        want_w, want_h = want_h, want_w
    s = min(want_w / trim.width, want_h / trim.height)
    unit = float(page.obj.get("/UserUnit", 1))
    to_pt = 1 / (MM_PER_PT * unit)
    b = bleed_mm * to_pt
    tx = b + (want_w - trim.width * s) / 2 * to_pt - trim.x0 * to_pt * s
    ty = b + (want_h - trim.height * s) / 2 * to_pt - trim.y0 * to_pt * s
    page.contents_add(pikepdf.Stream(pdf, f"q {s:.6f} 0 0 {s:.6f} {tx:.4f} {ty:.4f} cm\n"
                                     .encode()), prepend=True)
    page.contents_add(pikepdf.Stream(pdf, b"\nQ\n"), prepend=False)
    width, height = want_w * to_pt + 2 * b, want_h * to_pt + 2 * b
    page.obj.MediaBox = pikepdf.Array([0, 0, width, height])
    page.obj.BleedBox = pikepdf.Array([0, 0, width, height])
    page.obj.TrimBox = pikepdf.Array([b, b, b + want_w * to_pt, b + want_h * to_pt])
    for box in ("/CropBox", "/ArtBox"):
        if box in page.obj:
            del page.obj[box]

