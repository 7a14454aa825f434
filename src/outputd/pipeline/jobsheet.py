"""The job sheet (DESIGN §15): one page that travels with the work, for a person to read
and a cheap barcode reader to scan. Drawn with reportlab: its Code 128 is vector bars,
and its TrueType fonts (Bitstream Vera, shipped with reportlab) are embedded, so the
sheet passes outputd's own preflight. Drawn with `invariant` set, so a job's sheet is
the same bytes each time it is made (a copy that landed before a stop is recognised).

`make` runs in the worker's PDF process: it renders page 1 of an output for the
thumbnail and writes the sheet alone (`separate`) or before the output (`prepend`)."""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf

from outputd.fileutil import private_temp, sha256_file
from outputd.model import Output
from outputd.pipeline.assemble import SAVE_OPTIONS
from outputd.tickets import JobTicket

mm = 72 / 25.4  # points per millimetre (reportlab is imported only to draw: the daemon
# that plans deliveries reads the constants and facts here without it)
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


def facts_of(ticket: JobTicket, pages: int, part: int | None = None,
             role: str | None = None) -> SheetFacts:
    """What the sheet of one of the job's outputs says."""
    customer = " ".join(filter(None, [ticket.customer.username,
                                      f"<{ticket.customer.email}>" if ticket.customer.email
                                      else ""]))
    due = ""
    if ticket.due_at is not None:
        due = f"{ticket.due_at:%Y-%m-%d %H:%M} {ticket.due_at.tzname() or ''}".strip()
    attributes = {name: str(value) for name, value in ticket.attributes.items()}
    if part is not None:
        attributes = {"Part": f"{part} {role or ''}".strip(), **attributes}
    return SheetFacts(ticket.job_id, ticket.order_id, ticket.storefront, customer or "-",
                      ticket.product.name, ticket.product.sku, ticket.quantity, pages, due,
                      attributes)


def fits(width_pt: float, height_pt: float) -> bool:
    """Whether a sheet can be drawn at this page size with a readable barcode (else the
    job takes a separate A4 sheet)."""
    return min(width_pt, height_pt) >= MIN_SIDE_MM * mm


def sheet(facts: SheetFacts, size: tuple[float, float] = A4,
          thumbnail_png: bytes | None = None, inset: float = 0.0) -> bytes:
    """The job sheet as a one-page PDF of `size` (points), drawn `inset` points inside
    its edges (the bleed of a page it goes before). Text is scaled to the page; the
    barcode keeps its bar width, so it reads the same on any size."""
    from reportlab.graphics.barcode.code128 import Code128
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    _fonts()
    width, height = size
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=size, pageCompression=1, initialFontName=_FONT,
                    initialFontSize=11,  # never an unembedded Helvetica
                    invariant=1)  # no date or random id: the same bytes each time
    canvas.setTitle(f"Job sheet {facts.job_id}")
    canvas.setAuthor("outputd")
    scale = min(width / A4[0], height / A4[1], 1.0)
    margin = max(12 * mm * scale, 5 * mm) + inset
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


def make(kind: str, facts: SheetFacts, source: str, target: str) -> Output:
    """Write `target`: the sheet of output `source` alone on A4 (`sheet`), or before its
    first page at that page's size (`prepended`). Written in a private folder beside it,
    then renamed: a file under `target` is whole, and a link planted in the folder
    redirects nothing. Runs in the worker's PDF process."""
    thumbnail = _thumbnail(source)
    with private_temp(Path(target)) as temp:
        pages = _draw(kind, facts, source, temp, thumbnail)
        os.replace(temp, target)
    path = Path(target)
    return Output(path.name, target, path.stat().st_size, sha256_file(path), pages)


def _draw(kind: str, facts: SheetFacts, source: str, temp: Path, thumbnail: bytes | None
          ) -> int:
    """Write the sheet (alone, or before `source`) to `temp`; its page count."""
    if kind == "sheet":
        temp.write_bytes(sheet(facts, A4, thumbnail))
        return 1
    with pikepdf.open(source) as pdf:
        first = pdf.pages[0]
        media = [float(v) for v in first.mediabox]
        trim = [float(v) for v in first.trimbox]
        size = (media[2] - media[0], media[3] - media[1])
        inset = max(trim[0] - media[0], trim[1] - media[1], media[2] - trim[2],
                    media[3] - trim[3], 0.0)
        with pikepdf.open(io.BytesIO(sheet(facts, size, thumbnail, inset))) as drawn:
            pdf.pages.insert(0, drawn.pages[0])
        page = pdf.pages[0]
        page.mediabox = pikepdf.Array(media)  # a RIP sees the same boxes as page 1
        for box in ("/TrimBox", "/BleedBox"):
            if box in first.obj:
                page.obj[box] = pikepdf.Array([float(v) for v in first.obj[box]])
        if media[0] or media[1]:  # drawn from (0, 0): moved onto page 1's origin
            page.contents_add(pikepdf.Stream(pdf, f"1 0 0 1 {media[0]:g} {media[1]:g} cm"
                                             .encode()), prepend=True)
        pdf.save(temp, **SAVE_OPTIONS, deterministic_id=True)
        return len(pdf.pages)


def _thumbnail(source: str) -> bytes | None:
    """Page 1 of `source` as a PNG 600 pixels on its longer side; None when poppler
    cannot draw it (the sheet is still made, with an empty frame's place left blank)."""
    with tempfile.TemporaryDirectory(prefix="outputd-sheet-") as folder:
        try:
            subprocess.run(["pdftoppm", "-png", "-f", "1", "-l", "1", "-scale-to", "600",
                            "-singlefile", source, os.path.join(folder, "page")],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                           check=True)
            return Path(folder, "page.png").read_bytes()
        except (OSError, subprocess.SubprocessError):
            return None


def fonts() -> tuple[str, str]:
    """The names of the embedded regular and bold fonts, registered with reportlab."""
    _fonts()
    return _FONT, _BOLD


def _fonts() -> None:
    import reportlab
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if _FONT in pdfmetrics.getRegisteredFontNames():
        return

    folder = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
    pdfmetrics.registerFont(TTFont(_FONT, os.path.join(folder, "Vera.ttf")))
    pdfmetrics.registerFont(TTFont(_BOLD, os.path.join(folder, "VeraBd.ttf")))
