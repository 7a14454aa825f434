"""The preflight report as a PDF a prepress operator reads (`outputd show JOB --report
FILE.pdf`): a first page with the verdict and every check by result, then one page per
problem (failed, fixed, warned) with a thumbnail of each page concerned and, where the
check can tell, a box around the place."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfgen.canvas import Canvas

from outputd.config import Config
from outputd.fileutil import private_temp
from outputd.layout import Layout
from outputd.ops import jobs, preview
from outputd.ops.access import Caller
from outputd.pipeline import jobsheet
from outputd.pipeline.report import RESULTS, result_of
from outputd.store import Store

A4 = jobsheet.A4
THUMBS = 4  # page thumbnails on a problem's page
_FONT, _BOLD = jobsheet.fonts()
_MARGIN = 15 * mm


def write_report(config: Config, store: Store, layout: Layout, caller: Caller, job_id: str,
                 target: Path) -> int:
    """Write the report of `job_id` to `target` (in a private folder beside it, then
    renamed over it: a link at `target` is replaced, not followed); its page count."""
    data, pages = report_pdf(config, store, layout, caller, job_id)
    with private_temp(target) as temp:  # a link planted beside it redirects nothing
        temp.write_bytes(data)
        os.replace(temp, target)
    return pages


def report_pdf(config: Config, store: Store, layout: Layout, caller: Caller, job_id: str
               ) -> tuple[bytes, int]:
    """The report of `job_id` as PDF bytes, and its page count."""
    job = jobs.get(store, caller, job_id)
    body = jobs.show(store, caller, job_id)
    report = body.get("preflight") or {}
    checks = sorted(report.get("checks", []), key=lambda c: RESULTS.index(result_of(c)))
    files = _checked_files(layout, job, report)
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, initialFontName=_FONT, invariant=1)
    canvas.setTitle(f"Preflight report {job_id}")
    canvas.setAuthor("outputd")
    _summary(canvas, body, checks)
    problems = [c for c in checks if result_of(c) != "passed"]
    for check in problems:
        _problem(canvas, config, job_id, check, files)
    canvas.save()
    return out.getvalue(), 1 + len(problems)


def _checked_files(layout: Layout, job: Any, report: dict[str, Any]) -> dict[str, str]:
    """The file each check's label names, as preflight checked it (a fix-ups' copy, or
    the source as it came)."""
    kept = report.get("files") or []
    found: dict[str, str] = {}
    for index, f in enumerate(job.ticket.files):
        path = layout.source_file(job.job_id, f.path)
        entry = kept[index] if index < len(kept) else {}
        if entry.get("fixed"):
            path = layout.fixed(job.job_id) / str(entry["fixed"])
        found[str(entry.get("file", path.name))] = str(path)
    return found


def _lines(canvas: Canvas, text: str, x: float, y: float, width: float, size: float = 10,
           font: str = _FONT) -> float:
    """Draw `text` wrapped to `width`; the y below it."""
    canvas.setFont(font, size)
    for line in simpleSplit(text, font, size, width):
        canvas.drawString(x, y, line)
        y -= size * 1.3
    return y


def _summary(canvas: Canvas, body: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    width, height = A4
    y = height - _MARGIN - 18
    canvas.setFont(_BOLD, 18)
    canvas.drawString(_MARGIN, y, f"Preflight report: job {body['job_id']}")
    y -= 24
    verdict = "not checked yet"
    if body.get("preflight"):
        verdict = "passed" if body["preflight"]["ok"] else "FAILED"
    y = _lines(canvas, f"Order {body['order_id']} ({body['storefront']}), "
               f"{body.get('product_name') or body['sku']} ({body['sku']}), "
               f"status {body['status']}. Preflight {verdict}.", _MARGIN, y,
               width - 2 * _MARGIN, 11)
    y -= 6
    for result in RESULTS:
        found = [c for c in checks if result_of(c) == result]
        if not found:
            continue
        if y < _MARGIN + 60:
            canvas.showPage()
            y = height - _MARGIN
        y = _lines(canvas, f"{result.capitalize()} ({len(found)})", _MARGIN, y - 6,
                   width - 2 * _MARGIN, 12, _BOLD)
        for c in found:
            pages = c.get("pages") or []
            where = f" [page{'s' if len(pages) > 1 else ''} " + ", ".join(
                map(str, pages[:20])) + ("…" if len(pages) > 20 else "") + "]" if pages else ""
            y = _lines(canvas, f"{c['check']}{where}: {c['message']}", _MARGIN + 8, y,
                       width - 2 * _MARGIN - 8, 9)
            if y < _MARGIN:
                canvas.showPage()
                y = height - _MARGIN
    canvas.showPage()


def _problem(canvas: Canvas, config: Config, job_id: str, check: dict[str, Any],
             files: dict[str, str]) -> None:
    width, height = A4
    y = height - _MARGIN - 16
    canvas.setFont(_BOLD, 16)
    canvas.drawString(_MARGIN, y, f"{result_of(check).capitalize()}: {check['check']}")
    y = _lines(canvas, check["message"], _MARGIN, y - 20, width - 2 * _MARGIN, 10)
    path = files.get(str(check.get("file", "")))
    pages = (check.get("pages") or [])[:THUMBS]
    if path is None or not pages:
        canvas.showPage()
        return
    places = [p for p in check.get("places", []) if p[0] in pages]
    cell_w = (width - 3 * _MARGIN) / 2
    cell_h = (y - 2 * _MARGIN) / 2
    for index, page in enumerate(pages):
        x = _MARGIN + (index % 2) * (cell_w + _MARGIN)
        top = y - 10 - (index // 2) * (cell_h + 10)
        canvas.setFont(_FONT, 9)
        canvas.drawString(x, top - 9, f"Page {page}")
        try:
            png = preview.render_file(config, path, page, 600, job_id)
        except preview.NoPreview as exc:
            _lines(canvas, f"(no thumbnail: {exc})", x, top - 24, cell_w, 8)
            continue
        image = ImageReader(io.BytesIO(png))
        iw, ih = image.getSize()
        fit = min(cell_w / iw, (cell_h - 16) / ih)
        left, bottom = x, top - 14 - ih * fit
        canvas.drawImage(image, left, bottom, iw * fit, ih * fit)
        canvas.setLineWidth(0.5)
        canvas.rect(left, bottom, iw * fit, ih * fit)
        _mark(canvas, [p for p in places if p[0] == page], left, bottom + ih * fit,
              iw * fit, ih * fit,
              preview.page_size_mm(config, path, page, job_id))
    canvas.showPage()


def _mark(canvas: Canvas, places: list[list[float]], left: float, top: float, w: float,
          h: float, size: tuple[float, float] | None) -> None:
    """A red box around each place on a thumbnail."""
    if not places or size is None:
        return
    sx, sy = w / size[0], h / size[1]
    canvas.setStrokeColorRGB(0.85, 0, 0)
    canvas.setLineWidth(1.5)
    for _, a, b, c, d in places:
        canvas.rect(left + a * sx - 2, top - d * sy - 2, (c - a) * sx + 4, (d - b) * sy + 4)
    canvas.setStrokeColorRGB(0, 0, 0)
