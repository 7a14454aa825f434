"""Assembly: the print-ready output files of a job, made in its working folder."""

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


def _record(path: Path, part: int | None = None, role: str | None = None) -> Output:
    with pikepdf.open(path) as pdf:
        pages = len(pdf.pages)
    return Output(path.name, str(path), path.stat().st_size, sha256_file(path), pages, part, role)


def _place_untouched(source: Path, target: Path) -> None:
    """The source's bytes under `target`: a hard link where possible, else a copy."""
    temp = target.with_name(f".{target.name}.part")
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _save(pdf: pikepdf.Pdf, target: Path, version: str = "1.4") -> None:
    temp = target.with_name(f".{target.name}.part")
    # No object streams and no linearization: older RIPs choke on object streams. The
    # version stays as low as the parts allow; qpdf raises it only where content needs.
    pdf.save(temp, object_stream_mode=pikepdf.ObjectStreamMode.disable, linearize=False,
             min_version=version, encryption=False)
    os.replace(temp, target)


def _merge(parts: Sequence[pikepdf.Pdf]) -> pikepdf.Pdf:
    """Pages of every part in order, keeping what a plain page merge loses: the first
    part's OutputIntents, and every part's optional-content (layer) configuration, so
    a layer hidden in its part stays hidden."""
    merged = pikepdf.new()
    groups: list[Any] = []
    hidden: list[Any] = []
    order: list[Any] = []
    for part in parts:
        merged.pages.extend(part.pages)
        if "/OCProperties" in part.Root:
            # Copied after the pages, so the groups map to the copies the pages use.
            properties = merged.copy_foreign(part.make_indirect(part.Root.OCProperties))
            groups += list(properties.get("/OCGs", []))
            default = properties.get("/D", pikepdf.Dictionary())
            hidden += list(default.get("/OFF", []))
            order += list(default.get("/Order", []))
        if "/OutputIntents" in part.Root and "/OutputIntents" not in merged.Root:
            merged.Root.OutputIntents = merged.copy_foreign(
                part.make_indirect(part.Root.OutputIntents))
    if groups:
        merged.Root.OCProperties = pikepdf.Dictionary(
            OCGs=pikepdf.Array(groups),
            D=pikepdf.Dictionary(OFF=pikepdf.Array(hidden),
                                 Order=pikepdf.Array(order or groups)),
        )
    return merged


def _needs_resave(path: Path) -> bool:
    """A static file is re-saved only when it must be: qpdf repaired it, or it is
    encrypted with an owner password (written unencrypted)."""
    with pikepdf.open(path) as pdf:
        return bool(pdf.is_encrypted or pdf.get_warnings())


def _set_missing_boxes(pdf: pikepdf.Pdf, ticket: JobTicket) -> None:
    """MegaEdit exports are at bleed size without boxes: set TrimBox and BleedBox."""
    bleed_pt = ticket.product.bleed_mm / MM_PER_PT
    for page in pdf.pages:
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        if "/BleedBox" not in page.obj:
            page.obj.BleedBox = pikepdf.Array([x0, y0, x1, y1])
        if "/TrimBox" not in page.obj:
            page.obj.TrimBox = pikepdf.Array(
                [x0 + bleed_pt, y0 + bleed_pt, x1 - bleed_pt, y1 - bleed_pt]
            )


def assemble(ticket: JobTicket, sources: Sequence[SOURCE], out_dir: Path) -> list[Output]:
    """Make the job's outputs in `out_dir`; raise OutputFailed with the reason."""
    out_dir.mkdir(parents=True, exist_ok=True)
    product = ticket.product
    base = ticket.job_id
    try:
        if product.type == "static":
            target = out_dir / f"{base}.pdf"
            if _needs_resave(sources[0][0]):
                with pikepdf.open(sources[0][0]) as pdf:
                    _save(pdf, target, pdf.pdf_version)
            else:
                _place_untouched(sources[0][0], target)
            return [_record(target)]
        if product.type == "multipart" and product.assembly == "separate":
            outputs = []
            for index, (path, role) in enumerate(sources, start=1):
                target = out_dir / f"{base}_part{index}.pdf"
                with pikepdf.open(path) as pdf:
                    _save(pdf, target, pdf.pdf_version)
                outputs.append(_record(target, index, role))
            return outputs
        target = out_dir / f"{base}.pdf"
        with contextlib.ExitStack() as stack:
            parts = [stack.enter_context(pikepdf.open(path)) for path, _ in sources]
            version = max((p.pdf_version for p in parts), key=lambda v: tuple(
                int(x) for x in v.split(".")))
            with _merge(parts) as merged:
                if product.type == "megaedit":
                    _set_missing_boxes(merged, ticket)
                _save(merged, target, version)
        return [_record(target)]
    except (pikepdf.PdfError, OSError) as exc:
        raise OutputFailed(f"job {ticket.job_id}: cannot make the output: {exc}") from exc
