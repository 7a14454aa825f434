"""Preflight: is each file print-ready for its product? One small function per check.

A check returns a Check; `run()` collects them into the report kept with the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pikepdf

from outputd.pipeline.geometry import BLEED_TOLERANCE_MM, fits, page_geometry
from outputd.tickets import PageRules, Product

_HEADER_WINDOW = 1024


@dataclass(frozen=True)
class Check:
    check: str
    ok: bool
    message: str
    severity: str = "error"  # error | warning | info
    file: str | None = None
    page: int | None = None


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok or c.severity != "error" for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == "error"]

    def summary(self) -> str:
        failed = self.failures()
        if not failed:
            return "preflight passed"
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return failed[0].message + more

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{k: v for k, v in asdict(c).items() if v is not None} for c in self.checks],
        }


def check_file_size(path: Path, label: str, limit: int) -> Check:
    size = path.stat().st_size
    if size > limit:
        return Check("file_size", False, f"{label} is {size} bytes; the limit is {limit}",
                     file=label)
    if size == 0:
        return Check("file_size", False, f"{label} is empty", file=label)
    return Check("file_size", True, f"{label} is {size} bytes", file=label)


def check_header(path: Path, label: str) -> Check:
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_WINDOW)
    if b"%PDF-" not in head:
        kind = "an HTML page" if b"<html" in head.lower() else "not a PDF"
        return Check("opens", False, f"{label} is {kind} (no %PDF- header)", file=label)
    return Check("opens", True, f"{label} has a PDF header", file=label)


def check_encryption(pdf: pikepdf.Pdf, label: str) -> Check:
    if pdf.is_encrypted:
        return Check("encryption", False, f"{label} is encrypted", file=label)
    return Check("encryption", True, f"{label} is not encrypted", file=label)


def check_page_count(count: int, rules: PageRules, label: str) -> Check:
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
        return Check("page_count", False,
                     f"{label} has {count} pages; the product needs {problem}", file=label)
    return Check("page_count", True, f"{label} has {count} pages", file=label)


def check_pages_geometry(pdf: pikepdf.Pdf, product: Product, label: str) -> list[Check]:
    """Trim size and bleed of every page; one failing check per kind, naming the first
    page and counting the rest."""
    want_w, want_h, bleed = product.trim.width_mm, product.trim.height_mm, product.bleed_mm
    wanted = f"{want_w:.1f} × {want_h:.1f} mm"
    if bleed > 0:
        wanted += f" with {bleed:.1f} mm bleed"
    size_bad: list[str] = []
    bleed_bad: list[str] = []
    for number, page in enumerate(pdf.pages, start=1):
        try:
            geo = page_geometry(page, want_w, want_h, bleed)
        except (KeyError, TypeError, ValueError, pikepdf.PdfError) as exc:
            size_bad.append(f"page {number} has no readable page box ({exc})")
            continue
        if not fits(geo.trim.width, geo.trim.height, want_w, want_h):
            size_bad.append(
                f"page {number} is {geo.trim.width:.1f} × {geo.trim.height:.1f} mm; "
                f"the product is {wanted}"
            )
        elif bleed > 0 and geo.bleed < bleed - BLEED_TOLERANCE_MM:
            bleed_bad.append(
                f"page {number} has {max(geo.bleed, 0):.1f} mm bleed; "
                f"the product needs {bleed:.1f} mm"
            )
    return [
        _summarise("page_size", size_bad, f"{label}: every page is {wanted}", label),
        _summarise("bleed", bleed_bad, f"{label}: every page has the bleed", label),
    ]


def _summarise(name: str, problems: list[str], ok_message: str, label: str) -> Check:
    if not problems:
        return Check(name, True, ok_message, file=label)
    rest = len(problems) - 1
    more = f" (and {rest} more page{'s' if rest > 1 else ''})" if rest else ""
    return Check(name, False, f"{label}: {problems[0]}{more}", file=label)


def inspect_file(path: Path, label: str, product: Product, max_bytes: int,
                 rules: PageRules | None) -> tuple[list[Check], int]:
    """Every check of one file; returns the checks and its page count (0 if unreadable).

    `rules` is None when the page rules apply to a combined document instead.
    """
    checks = [check_file_size(path, label, max_bytes), check_header(path, label)]
    if not checks[-1].ok or path.stat().st_size == 0:
        return checks, 0
    try:
        with pikepdf.open(path) as pdf:
            checks.append(check_encryption(pdf, label))
            pages = len(pdf.pages)
            if rules is not None:
                checks.append(check_page_count(pages, rules, label))
            checks += check_pages_geometry(pdf, product, label)
            return checks, pages
    except pikepdf.PasswordError:
        checks.append(Check("encryption", False, f"{label} needs a password to open",
                            file=label))
    except (pikepdf.PdfError, OSError, RecursionError, ValueError) as exc:
        checks.append(Check("opens", False, f"{label} is not a readable PDF: {exc}",
                            file=label))
    except Exception as exc:  # a file that breaks the PDF library fails on its own
        checks.append(Check("opens", False,
                            f"{label} could not be checked ({type(exc).__name__}: {exc})",
                            file=label))
    return checks, 0


def run(files: Sequence[tuple[Path, str]], product: Product, max_file_bytes: int) -> Report:
    """Preflight the job's files (path, label) for its product."""
    limit = product.max_file_bytes or max_file_bytes
    per_file = product.type == "static" or product.assembly == "separate"
    checks: list[Check] = []
    total = 0
    for path, label in files:
        file_checks, pages = inspect_file(path, label, product, limit,
                                          product.pages if per_file else None)
        checks += file_checks
        total += pages
    if not per_file and all(c.ok for c in checks):
        checks.append(check_page_count(total, product.pages, "the combined document"))
    return Report(tuple(checks))
