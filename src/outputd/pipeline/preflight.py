"""Preflight: is each file print-ready for its product? One small function per check.

Every check returns Check(check, ok, message, severity, file, page); errors block the job
(`ValidationFailed`), warnings and notes are reported only. `run()` collects them into the
report kept with the job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pikepdf

from outputd.config import PreflightConfig, PreflightSettings
from outputd.logs import counted
from outputd.pipeline import coverage, fixups
from outputd.pipeline.geometry import BLEED_TOLERANCE_MM, fits, page_geometry
from outputd.pipeline.pdfwalk import PageUse, Walker, WalkLimit
from outputd.pipeline.report import Check, Report, error, passed, warning
from outputd.tickets import PageRules, Product

_HEADER_WINDOW = 1024
_TRAILER_WINDOW = 1024
FILE_BUDGET_S = 60.0
# Checks that run only where a profile turns them on (rendering costs time per page).
DEFAULT_SEVERITY = {"tac": "off", "black_overprint": "off"}
BOX_TOLERANCE_MM = 0.05
# qpdf's own limits are off by default: a 1 MB stream may inflate to 1 GiB. These apply
# to the whole process.
DECODE_LIMIT_BYTES = 256 << 20
pikepdf.settings.set_qpdf_limits(
    flate_max_memory=DECODE_LIMIT_BYTES, png_max_memory=DECODE_LIMIT_BYTES,
    run_length_max_memory=DECODE_LIMIT_BYTES, tiff_max_memory=DECODE_LIMIT_BYTES,
    dct_max_memory=DECODE_LIMIT_BYTES, parser_max_nesting=200, max_stream_filters=6,
    doc_max_warnings=500,
)


@dataclass
class FileFacts:
    """What the document-level checks need to know of each file."""

    pages: int = 0
    trims: list[tuple[float, float]] = field(default_factory=list)
    output_intent: str | None = None
    resave: bool = True  # until the file is known to be clean


# -- checks of the file as a whole ---------------------------------------------


def check_file_size(path: Path, label: str, limit: int) -> Check:
    """The file is within the size limit."""
    size = path.stat().st_size
    if size > limit:
        return error("file_size", f"{label} is {size} bytes; the limit is {limit}", label)
    if size == 0:
        return error("file_size", f"{label} is empty", label)
    return Check("file_size", True, f"{label} is {size} bytes", "info", label)


def check_header(path: Path, label: str) -> Check:
    """The file starts as a PDF does."""
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_WINDOW)
    if b"%PDF-" not in head:
        kind = "an HTML page" if b"<html" in head.lower() else "not a PDF"
        return error("opens", f"{label} is {kind} (no %PDF- header)", label)
    return Check("opens", True, f"{label} has a PDF header", "info", label)


def check_ending(path: Path, label: str) -> Check:
    """A PDF ends with `%%EOF` (readers look for it in the last KB): a file without it
    was cut short, an upload that did not finish."""
    with open(path, "rb") as fh:
        fh.seek(max(0, os.fstat(fh.fileno()).st_size - _TRAILER_WINDOW))
        tail = fh.read()
    if b"%%EOF" not in tail:
        return error("complete", f"{label} ends without %%EOF: the file was cut short "
                     "(an upload that did not finish?)", label)
    return Check("complete", True, f"{label} ends with %%EOF", "info", label)


def check_repair(warnings: Sequence[str], label: str) -> Check:
    """qpdf did not have to repair the file (a warning if it did)."""
    if warnings:
        return warning("structure", f"{label} is damaged; qpdf repaired it "
                       f"({len(warnings)} problems, first: {warnings[0]})", label)
    return passed("structure", f"{label} is well formed", label)


def check_encryption(pdf: pikepdf.Pdf, label: str) -> Check:
    """The file is not encrypted against changes."""
    if not pdf.is_encrypted:
        return passed("encryption", f"{label} is not encrypted", label)
    if not pdf.allow.print_highres:
        return error("encryption", f"{label} is encrypted and forbids high-resolution "
                     "printing", label)
    return Check("encryption", True, f"{label} has an owner password that allows printing; "
                 "the output is written unencrypted", "info", label)


def check_page_count(count: int, rules: PageRules, label: str) -> Check:
    """The page count is what the product allows."""
    problem = None
    if rules.exact is not None and count != rules.exact:
        problem = f"exactly {rules.exact}"
    elif rules.min is not None and count < rules.min:
        problem = f"at least {rules.min}"
    elif rules.max is not None and count > rules.max:
        problem = f"at most {rules.max}"
    elif rules.multiple_of is not None and count % rules.multiple_of:
        problem = f"a multiple of {rules.multiple_of}"
    if problem:
        return error("page_count", f"{label} has {counted(count, 'page')}; the product needs "
                     f"{problem}",
                     label)
    return Check("page_count", True, f"{label} has {counted(count, 'page')}", "info", label)


def check_document_features(pdf: pikepdf.Pdf, label: str, settings: PreflightSettings
                            ) -> tuple[list[Check], str | None]:
    """Output intent, PDF/X identification, JavaScript and embedded files."""
    checks: list[Check] = []
    root = pdf.Root
    intent = None
    intents = root.get("/OutputIntents")
    if intents:
        first = intents[0]
        intent = str(first.get("/OutputConditionIdentifier", first.get("/Info", "unnamed")))
        checks.append(passed("output_intent", f"{label} has the output intent {intent}", label))
    else:
        checks.append(Check("output_intent", True, f"{label} has no output intent", "info",
                            label))
    checks.append(check_pdfx(pdf, label, settings))
    names: Any = root.get("/Names", pikepdf.Dictionary())
    if "/JavaScript" in names or _has_js_action(root):
        checks.append(warning("javascript", f"{label} contains JavaScript (a RIP ignores it)",
                              label))
    if "/EmbeddedFiles" in names:
        checks.append(warning("embedded_files", f"{label} carries embedded files", label))
    return checks, intent


def check_pdfx(pdf: pikepdf.Pdf, label: str, settings: PreflightSettings) -> Check:
    """What PDF/X the file declares where a RIP looks: its XMP metadata (PDF/X-4 and
    later are identified there only; PDF/X-1a and X-3 in the Info dictionary too), and a
    PDF/X output intent with its profile."""
    info = str(pdf.docinfo.get("/GTS_PDFXVersion", "")) if "/Info" in pdf.trailer else ""
    xmp = ""
    if "/Metadata" in pdf.Root:
        try:  # read only: not entered as a context, which would write it back
            meta = pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
            xmp = str(meta.get("pdfxid:GTS_PDFXVersion", "") or "")
        except Exception:  # unreadable XMP is the same as none here
            xmp = ""
    intents = [i for i in pdf.Root.get("/OutputIntents", pikepdf.Array())
               if isinstance(i, pikepdf.Dictionary) and i.get("/S") == "/GTS_PDFX"]
    has_profile = any("/DestOutputProfile" in i for i in intents)
    declared = xmp or info
    severity = "error" if settings.require_pdfx else "warning"
    if not declared:
        if settings.require_pdfx:
            return error("pdfx", f"{label} is not PDF/X: its XMP declares no "
                         "pdfxid:GTS_PDFXVersion", label)
        return Check("pdfx", True, f"{label} does not declare PDF/X", "info", label)
    problems = []
    modern = not declared.startswith(("PDF/X-1", "PDF/X-2", "PDF/X-3"))
    if modern and not xmp:
        problems.append(f"declares {info} only in its Info dictionary; a RIP reads PDF/X-4 "
                        "from the XMP metadata")
    elif xmp and info and xmp != info:
        problems.append(f"declares {xmp} in its XMP but {info} in its Info dictionary")
    if not intents:
        problems.append(f"declares {declared} but has no PDF/X output intent")
    elif not has_profile:
        problems.append(f"declares {declared} but its output intent has no ICC profile "
                        "(DestOutputProfile)")
    if problems:
        return Check("pdfx", False, f"{label} " + "; ".join(problems), severity, label)
    return passed("pdfx", f"{label} declares {declared} in its XMP"
                  + (" and Info" if info else "") + " with a PDF/X output intent", label)


def _has_js_action(root: Any) -> bool:
    action = root.get("/OpenAction")
    return isinstance(action, pikepdf.Dictionary) and action.get("/S") == "/JavaScript"


# -- checks per page -----------------------------------------------------------


def _inherited(page: Any, key: str) -> Any:
    """A page attribute, looked up the page tree as PDF inheritance does."""
    node = page
    for _ in range(64):
        if key in node:
            return node[key]
        node = node.get("/Parent")
        if node is None:
            return None
    return None


def check_pages_complete(pdf: pikepdf.Pdf, label: str, repaired: bool) -> Check:
    """Every page's content, resources and media box are there: a file cut short after
    its page objects opens after repair with pages pointing at objects that no longer
    exist, which a RIP prints as blank pages."""
    broken: list[tuple[int, str]] = []
    for number, page in enumerate(pdf.pages, start=1):
        obj = page.obj
        missing = []
        if "/Contents" not in obj:
            if repaired:  # a blank page is valid, but a repair drops what points nowhere
                missing.append("content")
        else:
            contents = obj.Contents
            parts = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
            if not parts or not all(isinstance(p, pikepdf.Stream) for p in parts):
                missing.append("content")
        resources = _inherited(obj, "/Resources")
        if resources is not None and not isinstance(resources, pikepdf.Dictionary):
            missing.append("resources")
        if not isinstance(_inherited(obj, "/MediaBox"), pikepdf.Array):
            missing.append("MediaBox")
        if missing:
            broken.append((number, f"page {number}'s {' and '.join(missing)} is missing (is "
                           "the file cut short?)"))
    return _summarise("complete", broken, f"{label}: every page has its content", label)


def check_pages_geometry(pdf: pikepdf.Pdf, product: Product, label: str,
                         facts: FileFacts) -> list[Check]:
    """Trim size, bleed and box nesting of every page; one check per kind naming the
    first page and counting the rest."""
    want_w, want_h, bleed = product.trim.width_mm, product.trim.height_mm, product.bleed_mm
    wanted = f"{want_w:.1f} × {want_h:.1f} mm"
    if bleed > 0:
        wanted += f" with {bleed:.1f} mm bleed"
    size_bad: list[tuple[int, str]] = []
    bleed_bad: list[tuple[int, str]] = []
    boxes_bad: list[tuple[int, str]] = []
    for number, page in enumerate(pdf.pages, start=1):
        try:
            geo = page_geometry(page, want_w, want_h, bleed)
        except (KeyError, TypeError, ValueError, IndexError, pikepdf.PdfError) as exc:
            size_bad.append((number, f"page {number} has no readable page box ({exc})"))
            continue
        facts.trims.append((geo.trim.width, geo.trim.height))
        if not fits(geo.trim.width, geo.trim.height, want_w, want_h):
            size_bad.append((number, f"page {number} is {geo.trim.width:.1f} × "
                             f"{geo.trim.height:.1f} mm; the product is {wanted}"))
        elif bleed > 0 and geo.bleed < bleed - BLEED_TOLERANCE_MM:
            bleed_bad.append((number, f"page {number} has {max(geo.bleed, 0):.1f} mm bleed; "
                              f"the product needs {bleed:.1f} mm"))
        outer = geo.bleed_box or geo.media
        if geo.trim.margin_to(outer) < -BOX_TOLERANCE_MM:
            boxes_bad.append((number, f"page {number}: the TrimBox reaches outside the "
                              f"{'BleedBox' if geo.bleed_box else 'MediaBox'}"))
        elif geo.bleed_box and geo.bleed_box.margin_to(geo.media) < -BOX_TOLERANCE_MM:
            boxes_bad.append((number, f"page {number}: the BleedBox reaches outside the "
                              "MediaBox"))
    bleed_ok = f"{label}: every page has the bleed"
    if size_bad:  # a page of the wrong size has no bleed to measure
        bleed_ok = f"{label}: the bleed was not checked on pages of the wrong size"
    return [
        _summarise("page_size", size_bad, f"{label}: every page is {wanted}", label),
        _summarise("bleed", bleed_bad, bleed_ok, label),
        _summarise("boxes", boxes_bad, f"{label}: the TrimBox is inside the BleedBox, "
                   "inside the MediaBox", label),
    ]


def _summarise(name: str, problems: Sequence[tuple[int, str]], ok_message: str, label: str,
               severity: str = "error") -> Check:
    """One check from its problems, (page, sentence) each: the first is told, the rest
    counted, and every page is listed."""
    if not problems:
        return Check(name, True, ok_message, "info", label)
    rest = len(problems) - 1
    more = f" (and {rest} more page{'s' if rest > 1 else ''})" if rest else ""
    pages = tuple(sorted({page for page, _ in problems}))
    return Check(name, False, f"{label}: {problems[0][1]}{more}", severity, label, pages)


def check_content(uses: Sequence[PageUse], label: str, settings: PreflightSettings
                  ) -> list[Check]:
    """Fonts, image resolution, colour and transparency, from the walked pages."""
    checks: list[Check] = []
    missing = [(u.page, f"page {u.page} uses {m}, which it does not define") for u in uses
               for m in u.missing]
    checks.append(_summarise("resources", missing, f"{label}: every resource resolves", label))
    fonts = [(u.page, f"font {name} on page {u.page} is not embedded") for u in uses
             for name, embedded in u.fonts.items() if not embedded]
    checks.append(_summarise("fonts", fonts, f"{label}: every font is embedded", label))
    images = [i for u in uses for i in u.images]
    low_fail = [(i.page, f"image {i.name} on page {i.page} is {i.ppi:.0f} ppi (at least "
                 f"{settings.min_ppi_fail:g} needed)") for i in images
                if i.ppi < settings.min_ppi_fail]
    low_warn = [(i.page, f"image {i.name} on page {i.page} is {i.ppi:.0f} ppi (below "
                 f"{settings.min_ppi_warn:g})") for i in images
                if settings.min_ppi_fail <= i.ppi < settings.min_ppi_warn]
    lowest = min((i.ppi for i in images), default=None)
    ok_images = f"{label}: {len(images)} images" + (f", lowest {lowest:.0f} ppi" if lowest
                                                    else "")
    by_page = {u.page: u for u in uses}

    def places(fail: bool) -> tuple[tuple[int, float, float, float, float], ...]:
        found = [by_page[i.page].place(i.bbox) for i in images
                 if (i.ppi < settings.min_ppi_fail) == fail and i.ppi < settings.min_ppi_warn]
        return tuple(p for p in found if p is not None)

    if low_fail:
        checks.append(replace(_summarise("image_resolution", low_fail, ok_images, label),
                              places=places(True)))
    else:
        checks.append(replace(_summarise("image_resolution", low_warn, ok_images, label,
                                         "warning"), places=places(False)))
    rgb_pages = [u for u in uses if u.rgb]
    if rgb_pages:
        where = sorted({w for u in rgb_pages for w in u.rgb})
        pages = ", ".join(str(u.page) for u in rgb_pages[:10])
        message = f"{label}: RGB is used on page {pages} ({', '.join(where)})"
        checks.append(Check("colour", False, message,
                            "error" if settings.cmyk_only else "warning", label,
                            tuple(u.page for u in rgb_pages)))
    else:
        checks.append(passed("colour", f"{label}: no RGB", label))
    spots = sorted({s for u in uses for s in u.spots})
    if spots:
        checks.append(passed("spot_colours", f"{label}: spot colours {', '.join(spots)}",
                             label))
    transparency = sorted({t for u in uses for t in u.transparency})
    if transparency:
        checks.append(passed("transparency", f"{label}: uses transparency "
                             f"({', '.join(transparency)})", label))
    return checks + check_print_risks(uses, label, settings)


def check_tac(path: Path, label: str, settings: PreflightSettings, timeout_s: float) -> Check:
    """Total area coverage of every page, from a rendering, with where it is too high."""
    try:
        found = coverage.measure(path, settings.max_tac_pct, settings.tac_dpi, timeout_s)
    except coverage.NotMeasured as exc:
        return warning("tac", f"{label}: total area coverage was not measured: {exc}", label)
    over = [(p.page, f"page {p.page} carries {p.highest:.0f} % ink (at most "
             f"{settings.max_tac_pct:g} %) within {p.over[0]:.0f}–{p.over[2]:.0f} mm from "
             f"the left and {p.over[1]:.0f}–{p.over[3]:.0f} mm from the top")
            for p in found if p.over is not None]
    highest = max((p.highest for p in found), default=0)
    if over:
        return replace(_summarise("tac", over, "", label), places=tuple(
            (p.page, *p.over) for p in found if p.over is not None))
    return _summarise("tac", over, f"{label}: at most {highest:.0f} % ink anywhere (the "
                      f"limit is {settings.max_tac_pct:g} %; measured at "
                      f"{settings.tac_dpi} dpi)", label)


def check_print_risks(uses: Sequence[PageUse], label: str, settings: PreflightSettings
                      ) -> list[Check]:
    """What the print fails on though the file is valid: white set to overprint, overprint
    the press does not simulate, the registration colour in content, spot colours the
    shop does not print, hairlines, and small text in several inks."""
    def said(found: set[str]) -> str:
        return " and ".join(sorted(found))

    white = [(u.page, f"white {said(u.white_overprint)} on page {u.page} are set to "
              "overprint: they vanish on press") for u in uses if u.white_overprint]
    checks = [_summarise("white_overprint", white, f"{label}: no white object is set to "
                         "overprint", label)]
    over = [(u.page, f"page {u.page} sets {said(u.overprint)} to overprint, which this "
             "press does not simulate: it prints unlike a proof that shows it")
            for u in uses if u.overprint]
    if settings.overprint_simulated or not over:
        used = "uses overprint (the press simulates it)" if over else "uses no overprint"
        checks.append(passed("overprint", f"{label}: {used}", label))
    else:
        checks.append(_summarise("overprint", over, "", label, "warning"))
    registration = [(u.page, f"the registration colour (All) is used for "
                     f"{said(u.registration)} on page {u.page}: it prints on every plate")
                    for u in uses if u.registration]
    checks.append(_summarise("registration", registration, f"{label}: the registration "
                             "colour is not used for content", label, "warning"))
    allowed = {name.casefold() for name in settings.spot_colours}
    unknown = [(u.page, f"spot colour {name} on page {u.page} is not one this shop prints "
                f"({', '.join(settings.spot_colours)})")
               for u in uses for name in sorted(u.spots) if name.casefold() not in allowed]
    if allowed:
        checks.append(_summarise("spot_names", unknown, f"{label}: every spot colour is "
                                 "one this shop prints", label))
    thin = [(u.page, f"a line on page {u.page} is {u.thinnest_line:.2f} pt wide (at least "
             f"{settings.min_line_pt:g} pt prints)" if u.thinnest_line else
             f"a line on page {u.page} has width 0, the thinnest the device can draw")
            for u in uses if u.thinnest_line is not None
            and u.thinnest_line < settings.min_line_pt]
    checks.append(_summarise("hairlines", thin, f"{label}: no line is thinner than "
                             f"{settings.min_line_pt:g} pt", label, "warning"))
    small = [(u.page, f"text on page {u.page} is {size:.1f} pt in {inks} (at least "
              f"{settings.min_text_pt:g} pt in more than one ink)")
             for u in uses for inks, size in sorted(u.small_text.items())
             if size < settings.min_text_pt]
    checks.append(_summarise("small_text", small, f"{label}: no text under "
                             f"{settings.min_text_pt:g} pt is in more than one ink", label,
                             "warning"))
    below = settings.black_overprint_below_pt
    knockout = [(u.page, f"100 % black text of {u.black_knockout:.1f} pt on page {u.page} "
                 "knocks out: a white edge shows where the plates are off (set it to "
                 "overprint)") for u in uses
                if u.black_knockout is not None and u.black_knockout < below]
    checks.append(_summarise("black_overprint", knockout, f"{label}: 100 % black text under "
                             f"{below:g} pt overprints", label, "warning"))
    empty = [(u.page, f"page {u.page} is empty: nothing is drawn on it") for u in uses
             if not u.painted]
    checks.append(_summarise("empty_pages", empty, f"{label}: no page is empty", label,
                             "warning"))
    courier = [(u.page, f"page {u.page} uses {', '.join(sorted(u.courier))}, often a font "
                "put in when the real one was missing") for u in uses if u.courier]
    checks.append(_summarise("font_courier", courier, f"{label}: no Courier", label,
                             "warning"))
    return checks


def check_spot_ambiguity(alternates: dict[str, dict[str, set[int]]], label: str) -> Check:
    """A spot colour defined two ways (alternate space or tint transform) prints one way
    on the press and another on a proof or a digital press."""
    found = [(min(min(p) for p in ways.values()), f"spot colour {name} is defined "
              f"{len(ways)} ways (pages " + ", ".join(str(n) for n in sorted(
                  {n for p in ways.values() for n in p})) + ")")
             for name, ways in sorted(alternates.items()) if len(ways) > 1]
    check = _summarise("spot_ambiguous", found, f"{label}: each spot colour is defined "
                       "one way", label, "warning")
    pages = tuple(sorted({n for ways in alternates.values() if len(ways) > 1
                          for p in ways.values() for n in p}))
    return replace(check, pages=pages) if found else check


# -- running it all ------------------------------------------------------------


def inspect_file(path: Path, label: str, product: Product, max_bytes: int,
                 rules: PageRules | None, settings: PreflightSettings,
                 budget_s: float = FILE_BUDGET_S) -> tuple[list[Check], FileFacts]:
    """Every check of one file. `rules` is None when page rules apply to a combined
    document instead."""
    facts = FileFacts()
    checks = [check_file_size(path, label, max_bytes), check_header(path, label)]
    if checks[0].ok:
        checks.append(check_ending(path, label))
    if not all(c.ok for c in checks):
        return checks, facts
    try:
        with pikepdf.open(path) as pdf:
            repairs = pdf.get_warnings()  # read once: pikepdf clears them when read
            checks.append(check_repair(repairs, label))
            checks.append(check_encryption(pdf, label))
            facts.pages = len(pdf.pages)
            facts.resave = bool(pdf.is_encrypted or repairs)
            complete = check_pages_complete(pdf, label, bool(repairs))
            checks.append(complete)
            if not complete.ok:
                return checks, facts
            if rules is not None:
                checks.append(check_page_count(facts.pages, rules, label))
            checks += check_pages_geometry(pdf, product, label, facts)
            features, facts.output_intent = check_document_features(pdf, label, settings)
            checks += features
            walker = Walker(time.monotonic() + budget_s)
            uses = []
            for number, page in enumerate(pdf.pages, start=1):
                try:
                    uses.append(walker.page(page, number))
                except WalkLimit:
                    raise
                except (pikepdf.PdfError, ValueError, TypeError, KeyError) as exc:
                    checks.append(error("structure", f"{label}: page {number}'s content "
                                        f"cannot be read ({exc})", label, number))
            checks += check_content(uses, label, settings)
            checks.append(check_spot_ambiguity(walker.alternates, label))
        if settings.severity.get("tac") != "off":
            checks.append(check_tac(path, label, settings, FILE_BUDGET_S * 4))
    except pikepdf.PasswordError:
        checks.append(error("encryption", f"{label} needs a password to open", label))
    except WalkLimit as exc:
        checks.append(error("limits", f"{label}: {exc}", label))
    except (pikepdf.PdfError, OSError, RecursionError, ValueError) as exc:
        checks.append(error("opens", f"{label} is not a readable PDF: {exc}", label))
    except Exception as exc:  # a file that breaks the PDF library fails on its own
        checks.append(error("opens", f"{label} could not be checked "
                            f"({type(exc).__name__}: {exc})", label))
    return checks, facts


def document_checks(facts: Sequence[tuple[str, FileFacts]], product: Product,
                    combined: bool) -> list[Check]:
    """Checks of the document produced from several files (combine, MegaEdit)."""
    checks: list[Check] = []
    if combined:
        total = sum(f.pages for _, f in facts)
        checks.append(check_page_count(total, product.pages, "the combined document"))
    intents = {label: f.output_intent for label, f in facts if f.output_intent}
    if len(set(intents.values())) > 1:
        listed = ", ".join(f"{v} ({k})" for k, v in intents.items())
        checks.append(error("output_intent", f"the parts have different output intents: "
                            f"{listed}", "the combined document"))
    sizes = _distinct_sizes(t for _, f in facts for t in f.trims)
    if len(sizes) > 1:
        listed = ", ".join(f"{w:.1f} × {h:.1f} mm" for w, h in sizes)
        checks.append(error("mixed_sizes", f"the pages have different sizes: {listed}",
                            "the combined document" if combined else facts[0][0]))
    return checks


def _distinct_sizes(trims: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    distinct: list[tuple[float, float]] = []
    for w, h in trims:
        if not any(abs(w - a) <= 0.5 and abs(h - b) <= 0.5 for a, b in distinct):
            distinct.append((w, h))
    return distinct


def run(files: Sequence[tuple[Path, str]], product: Product, max_file_bytes: int,
        defaults: PreflightConfig | None = None, profile: str | None = None,
        fix_dir: Path | None = None) -> Report:
    """Preflight the job's files (path, label) for its product, with the product's
    profile (else `profile`, the route's; else the defaults) and its own settings. With
    `fix_dir`, the fix-ups the settings turn on mend a copy of a file there
    (`fixed-<n>.pdf`, named in the report's `files`), and that copy is what is checked."""
    try:
        settings = settings_for(defaults or PreflightConfig(), product, profile)
    except KeyError as exc:
        return Report((error("profile", f"the product names preflight profile {exc}, which "
                             "this shop does not have", "the ticket"),))
    # A ticket may lower the limit for its product, never raise it above the config's.
    limit = min(product.max_file_bytes or max_file_bytes, max_file_bytes)
    per_file = product.type == "static" or product.assembly == "separate"
    checks: list[Check] = []
    facts: list[tuple[str, FileFacts]] = []
    fixed: list[str | None] = []
    for index, (path, label) in enumerate(files):
        mended: list[Check] = []
        if fix_dir is not None and path.stat().st_size <= limit:
            copy = fix_dir / f"fixed-{index}.pdf"
            mended = fixups.fix(path, copy, label, product, settings)
            path = copy if mended else path
        fixed.append(path.name if mended else None)
        file_checks, file_facts = inspect_file(path, label, product, limit,
                                               product.pages if per_file else None, settings)
        checks += mended + file_checks
        facts.append((label, file_facts))
    if not [c for c in checks if not c.ok and c.severity == "error"]:
        if per_file:
            for label, f in facts:
                checks += document_checks([(label, f)], product, combined=False)
        else:
            checks += document_checks(facts, product, combined=True)
    return Report(tuple(graded(checks, settings.severity)), tuple(
        {"file": label, "pages": f.pages, "resave": f.resave}
        | ({"fixed": name} if name else {})
        for (label, f), name in zip(facts, fixed, strict=True)))


def settings_for(defaults: PreflightConfig, product: Product, profile: str | None = None
                 ) -> PreflightSettings:
    """The settings a product's files are checked with: its profile's (KeyError when the
    shop has no such profile), then the product's own keys."""
    overrides = product.preflight
    settings = defaults.profile((overrides.profile if overrides else None) or profile)
    own = {k: v for k, v in (overrides.model_dump(exclude={"profile"}) if overrides else {}
                             ).items() if v is not None}
    return settings.model_copy(update={
        **own, "severity": {**DEFAULT_SEVERITY, **settings.severity}})


def graded(checks: Iterable[Check], severity: Mapping[str, str]) -> list[Check]:
    """Each check at the severity the profile gives it: `off` leaves it out, `warn`
    makes a failure a warning, `error` makes a warning block the job."""
    found = []
    for check in checks:
        wanted = severity.get(check.check)
        if wanted == "off":
            continue
        if not check.ok and wanted in ("warn", "error"):
            check = replace(check, severity="warning" if wanted == "warn" else "error")
        found.append(check)
    return found
