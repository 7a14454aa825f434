"""The job sheet (DESIGN §15): one page that travels with the work, for a person to read
and a cheap barcode reader to scan. Drawn with reportlab: its Code 128 is vector bars,
and its TrueType fonts (Bitstream Vera, shipped with reportlab) are embedded, so the
sheet passes outputd's own preflight.

Not yet delivered with jobs: `job_sheet` on a hot folder comes next."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

A4 = (210 * mm, 297 * mm)
BAR_MM = 0.33  # the narrowest bar: 13 mil, what a cheap hand-held reader reads from print
BAR_HEIGHT_MM = 15.0
QUIET_BARS = 10  # the quiet zone on each side, in narrow bars (ISO/IEC 15417)
THUMB_PPI = 250  # the thumbnail is drawn at this resolution or finer
MIN_SIDE_MM = 100.0  # a page narrower or shorter than this takes a separate (A4) sheet
_FONT, _BOLD = "OutputdSans", "OutputdSans-Bold"


@dataclass(frozen=True)
class SheetFacts:
    """What a job sheet says."""

    job_id: str
    order_id: str
    storefront: str
    customer: str
    product: str
    sku: str
    quantity: int
    pages: int
    due: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def fits(width_pt: float, height_pt: float) -> bool:
    """Whether a sheet can be drawn at this page size with a readable barcode (else the
    job takes a separate A4 sheet)."""
    return min(width_pt, height_pt) >= MIN_SIDE_MM * mm


def sheet(facts: SheetFacts, size: tuple[float, float] = A4,
          thumbnail_png: bytes | None = None) -> bytes:
    """The job sheet as a one-page PDF of `size` (points). Text is scaled to the page;
    the barcode keeps its bar width, so it reads the same on any size."""
    _fonts()
    width, height = size
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=size, pageCompression=1, initialFontName=_FONT,
                    initialFontSize=11)  # never an unembedded Helvetica
    canvas.setTitle(f"Job sheet {facts.job_id}")
    canvas.setAuthor("outputd")
    scale = min(width / A4[0], height / A4[1], 1.0)
    margin = max(12 * mm * scale, 5 * mm)
    y = height - margin
    line = 7 * mm * scale

    canvas.setFont(_BOLD, 22 * scale)
    canvas.drawString(margin, y - 22 * scale, f"Job {facts.job_id}")
    y -= 22 * scale + line
    canvas.setFont(_FONT, 11 * scale)
    rows = [("Order", f"{facts.order_id} ({facts.storefront})"), ("Customer", facts.customer),
            ("Product", f"{facts.product} ({facts.sku})"), ("Quantity", str(facts.quantity)),
            ("Pages", str(facts.pages)), ("Due", facts.due or "no due time")]
    rows += [(name, str(value)) for name, value in facts.attributes.items()]
    for name, value in rows:
        canvas.setFont(_BOLD, 11 * scale)
        canvas.drawString(margin, y, name)
        canvas.setFont(_FONT, 11 * scale)
        canvas.drawString(margin + 32 * mm * scale, y, value[:90])
        y -= line

    bars = Code128(facts.job_id, barWidth=BAR_MM * mm, barHeight=BAR_HEIGHT_MM * mm,
                   quiet=True, lquiet=QUIET_BARS * BAR_MM * mm,
                   rquiet=QUIET_BARS * BAR_MM * mm, humanReadable=False)
    bar_y = margin + 6 * mm
    bars.drawOn(canvas, margin, bar_y)
    canvas.setFont(_FONT, max(10 * scale, 8))
    canvas.drawString(margin + QUIET_BARS * BAR_MM * mm, bar_y - 5 * mm, facts.job_id)

    if thumbnail_png:  # page 1 at the top right, framed (a blank page shows as one)
        image = ImageReader(io.BytesIO(thumbnail_png))
        iw, ih = image.getSize()
        box_w = width / 2 - margin
        box_h = height - 2 * margin - BAR_HEIGHT_MM * mm - 12 * mm
        # no larger than 250 ppi allows: the sheet passes preflight's resolution check
        fit = min(box_w / iw, box_h / ih, 72 / THUMB_PPI)
        x, top = width - margin - iw * fit, height - margin
        canvas.drawImage(image, x, top - ih * fit, iw * fit, ih * fit)
        canvas.setLineWidth(0.5)
        canvas.rect(x, top - ih * fit, iw * fit, ih * fit)
    canvas.showPage()
    canvas.save()
    return out.getvalue()


def _fonts() -> None:
    if _FONT in pdfmetrics.getRegisteredFontNames():
        return
    import reportlab

    folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    pdfmetrics.registerFont(TTFont(_FONT, os.path.join(folder, "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(_BOLD, os.path.join(folder, "VeraBd.ttf")))
