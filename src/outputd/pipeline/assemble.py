"""Assembly: the print-ready output files of a job, made in its working folder.

Static files and separate parts pass through byte-for-byte unless they must be re-saved
(repaired, or encrypted with an owner password). Combined documents are merged by qpdf's
own page merge, run in process, then given what a page merge loses: every later part's
layer (optional content) configuration, so a layer hidden in its part stays hidden. The
first part's document catalogue, OutputIntents included, is the merged file's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pikepdf

from outputd.errors import OutputFailed
from outputd.fileutil import sha256_file
from outputd.model import Output
from outputd.pipeline.geometry import MM_PER_PT
from outputd.tickets import JobTicket

SOURCE = tuple[Path, str]  # (path, role)
SAVE_OPTIONS: dict[str, Any] = {
    # No object streams and no linearization: older RIPs choke on object streams.
    "object_stream_mode": pikepdf.ObjectStreamMode.disable, "linearize": False,
    "encryption": False,
}


def _record(path: Path, part: int | None = None, role: str | None = None,
            pages: int | None = None, sha256: str | None = None) -> Output:
    if pages is None:
        with pikepdf.open(path) as pdf:
            pages = len(pdf.pages)
    return Output(path.name, str(path), path.stat().st_size, sha256 or sha256_file(path),
                  pages, part, role)


def _temp(target: Path, kind: str = "part") -> Path:
    temp = target.with_name(f".{target.name}.{kind}")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    return temp


def _needs_resave(pdf: pikepdf.Pdf) -> bool:
    """Re-saved only when it must be: qpdf repaired it, or it is encrypted."""
    return bool(pdf.is_encrypted or pdf.get_warnings())


def _pass_through(source: Path, target: Path) -> int:
    """The source's bytes under `target` (a hard link where possible), or a re-saved
    copy when the file was repaired or is encrypted. Returns the page count."""
    temp = _temp(target)
    with pikepdf.open(source) as pdf:
        pages = len(pdf.pages)
        if _needs_resave(pdf):
            pdf.save(temp, **SAVE_OPTIONS)
            os.replace(temp, target)
            return pages
    _link_into_place(source, temp, target)
    return pages


def place_clean_static(ticket: JobTicket, source: Path, out_dir: Path, pages: int,
                       sha256: str | None = None) -> Output:
    """A static file preflight found clean (not repaired, not encrypted): its bytes
    under the output name, without parsing it again (nor hashing it again, when the
    sha256 recorded at intake is given: the output is the same file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{ticket.job_id}.pdf"
    _link_into_place(source, _temp(target), target)
    return _record(target, pages=pages, sha256=sha256)


def _link_into_place(source: Path, temp: Path, target: Path) -> None:
    """The source's bytes under `target`: a hard link where possible (else a copy),
    made under `temp` and renamed. Where `target` is a link to the source already (an
    earlier try that stopped before it was recorded), rename does nothing and leaves
    `temp` behind: it is removed."""
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


def _qpdf_merge(paths: Sequence[Path], target: Path) -> None:
    """qpdf's page merge, in process: the first file's catalogue, every file's pages."""
    args = ["qpdf", str(paths[0]), "--decrypt", "--object-streams=disable", "--pages",
            *[str(p) for p in paths], "--", str(target)]
    job = pikepdf.Job(args)
    job.run()
    if job.exit_code not in (0, 3):  # 3: finished with warnings (a repaired part)
        raise OutputFailed(f"qpdf could not merge the parts (exit {job.exit_code})")


def _layer_groups(page: pikepdf.Page) -> list[Any]:
    """The optional-content groups a page's content refers to."""
    found: list[Any] = []
    seen: set[tuple[int, int]] = set()

    def visit(resources: Any, depth: int) -> None:
        if depth > 8 or not isinstance(resources, pikepdf.Dictionary):
            return
        for value in resources.get("/Properties", pikepdf.Dictionary()).values():
            groups = [value] if value.get("/Type") == "/OCG" else list(value.get("/OCGs", []))
            for group in groups:
                if group.objgen not in seen:
                    seen.add(group.objgen)
                    found.append(group)
        for xobject in resources.get("/XObject", pikepdf.Dictionary()).values():
            if xobject.get("/Subtype") == "/Form":
                visit(xobject.get("/Resources"), depth + 1)

    visit(page.obj.get("/Resources"), 0)
    return found


def _carry_layers(merged: pikepdf.Pdf, parts: Sequence[pikepdf.Pdf]) -> bool:
    """Add the layer configuration of every part after the first to the merged file.
    Returns whether anything changed."""
    start = len(parts[0].pages)
    groups: list[Any] = []
    hidden: list[Any] = []
    order: list[Any] = []
    for part in parts[1:]:
        count = len(part.pages)
        properties = part.Root.get("/OCProperties")
        if properties is not None:
            copies: dict[str, list[Any]] = {}
            for page in merged.pages[start:start + count]:
                for group in _layer_groups(page):
                    copies.setdefault(str(group.get("/Name", "")), []).append(group)
            default: Any = properties.get("/D", pikepdf.Dictionary())
            off = {g.objgen for g in default.get("/OFF", [])}
            for group in properties.get("/OCGs", []):
                matches = copies.get(str(group.get("/Name", "")))
                if not matches:
                    continue  # not drawn on any page: nothing to show or hide
                copy = matches.pop(0)
                groups.append(copy)
                order.append(copy)
                if group.objgen in off:
                    hidden.append(copy)
        start += count
    if not groups:
        return False
    existing = merged.Root.get("/OCProperties")
    if existing is None:
        merged.Root.OCProperties = pikepdf.Dictionary(
            OCGs=pikepdf.Array(), D=pikepdf.Dictionary(OFF=pikepdf.Array(),
                                                       Order=pikepdf.Array()))
        existing = merged.Root.OCProperties
    existing.OCGs = pikepdf.Array(list(existing.get("/OCGs", [])) + groups)
    default = existing.get("/D")
    if default is None:
        existing.D = pikepdf.Dictionary()
        default = existing.D
    default.OFF = pikepdf.Array(list(default.get("/OFF", [])) + hidden)
    default.Order = pikepdf.Array(list(default.get("/Order", [])) + order)
    return True


def _set_missing_boxes(pdf: pikepdf.Pdf, ticket: JobTicket) -> bool:
    """MegaEdit exports are at bleed size without boxes: set TrimBox and BleedBox."""
    bleed_pt = ticket.product.bleed_mm / MM_PER_PT
    changed = False
    for page in pdf.pages:
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        if "/BleedBox" not in page.obj:
            page.obj.BleedBox = pikepdf.Array([x0, y0, x1, y1])
            changed = True
        if "/TrimBox" not in page.obj:
            page.obj.TrimBox = pikepdf.Array(
                [x0 + bleed_pt, y0 + bleed_pt, x1 - bleed_pt, y1 - bleed_pt])
            changed = True
    return changed


def _combine(ticket: JobTicket, paths: Sequence[Path], target: Path) -> None:
    merged_path = _temp(target, "merged")
    _qpdf_merge(paths, merged_path)
    try:
        with contextlib.ExitStack() as stack:
            parts = [stack.enter_context(pikepdf.open(p)) for p in paths]
            merged = stack.enter_context(pikepdf.open(merged_path))
            changed = _carry_layers(merged, parts)
            if ticket.product.type == "megaedit":
                changed = _set_missing_boxes(merged, ticket) or changed
            if changed:
                temp = _temp(target)
                merged.save(temp, **SAVE_OPTIONS)
                os.replace(temp, target)
                return
        os.replace(merged_path, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            merged_path.unlink()


def assemble(ticket: JobTicket, sources: Sequence[SOURCE], out_dir: Path) -> list[Output]:
    """Make the job's outputs in `out_dir`; raise OutputFailed with the reason."""
    out_dir.mkdir(parents=True, exist_ok=True)
    product = ticket.product
    base = ticket.job_id
    try:
        if product.type == "static":
            target = out_dir / f"{base}.pdf"
            return [_record(target, pages=_pass_through(sources[0][0], target))]
        if product.type == "multipart" and product.assembly == "separate":
            outputs = []
            for index, (path, role) in enumerate(sources, start=1):
                target = out_dir / f"{base}_part{index}.pdf"
                pages = _pass_through(path, target)
                outputs.append(_record(target, index, role, pages))
            return outputs
        target = out_dir / f"{base}.pdf"
        _combine(ticket, [path for path, _ in sources], target)
        return [_record(target)]
    except (pikepdf.PdfError, OSError) as exc:
        raise OutputFailed(f"job {ticket.job_id}: cannot make the output: {exc}") from exc
