"""The preflight report: the checks' findings, kept with the job as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outputd.logs import counted

RESULTS = ("failed", "fixed", "warned", "passed")  # the order a person reads them in


@dataclass(frozen=True)
class Check:
    """One check's finding: `ok`, or a problem of `severity` (error blocks the job), on
    `pages` (1-based; empty when it is about the whole file). A fix-up that changed the
    file is `ok` and `fixed`."""

    check: str
    ok: bool
    message: str
    severity: str = "error"  # error | warning | info
    file: str | None = None
    pages: tuple[int, ...] = ()
    fixed: bool = False
    # where on a page, when the check can tell: (page, left, top, right, bottom) in mm
    # from the top left corner of the page as shown
    places: tuple[tuple[int, float, float, float, float], ...] = ()

    @property
    def result(self) -> str:
        """`passed`, `warned`, `failed` or `fixed` (DESIGN §5)."""
        if self.fixed:
            return "fixed"
        if self.ok:
            return "passed"
        return "warned" if self.severity == "warning" else "failed"


def error(check: str, message: str, file: str, page: int | None = None) -> Check:
    """A failed check that blocks the job."""
    return Check(check, False, message, "error", file, () if page is None else (page,))


def warning(check: str, message: str, file: str, page: int | None = None) -> Check:
    """A finding that is reported but does not block the job."""
    return Check(check, False, message, "warning", file, () if page is None else (page,))


def passed(check: str, message: str, file: str | None = None) -> Check:
    """A check that passed."""
    return Check(check, True, message, "info", file)


def result_of(check: dict[str, Any]) -> str:
    """A stored check's result (a report kept before results were recorded carries only
    `ok` and `severity`)."""
    if check.get("result"):
        return str(check["result"])
    if check.get("ok"):
        return "passed"
    return "warned" if check.get("severity") == "warning" else "failed"


@dataclass(frozen=True)
class Report:
    """Every check of a job's files, and what assembly needs to know of each file."""

    checks: tuple[Check, ...]
    # Per file: {"file", "pages", "resave"}; resave when qpdf repaired it or it is
    # encrypted, so that assembly knows without opening the file again.
    files: tuple[dict[str, Any], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures()

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok and c.severity == "error"]

    def summary(self) -> str:
        failed = self.failures()
        if not failed:
            warned = sum(1 for c in self.checks if not c.ok)
            return "preflight passed" + (f" with {warned} warnings" if warned else "")
        said = "; ".join(c.message for c in failed[:2])
        rest = len(failed) - 2
        return said + (f"; and {counted(rest, 'more failed check')}" if rest > 0 else "")

    def as_json(self) -> dict[str, Any]:
        checks = []
        for c in self.checks:
            entry: dict[str, Any] = {"check": c.check, "ok": c.ok, "result": c.result,
                                     "message": c.message, "severity": c.severity,
                                     "pages": list(c.pages)}
            if c.file is not None:
                entry["file"] = c.file
            if c.places:
                entry["places"] = [[p, round(a, 1), round(b, 1), round(x, 1), round(y, 1)]
                                   for p, a, b, x, y in c.places]
            checks.append(entry)
        return {"ok": self.ok, "checks": checks, "files": list(self.files)}


def clean_single_file_pages(report: dict[str, Any] | None) -> int | None:
    """The page count of a job's one file when its preflight report found it clean
    (nothing to re-save), else None."""
    files = (report or {}).get("files") or []
    if len(files) != 1 or files[0].get("resave", True) or not files[0].get("pages"):
        return None
    return int(files[0]["pages"])
