"""The bad-input corpus: each case writes its input into an intake folder and says what
must become of it. `outcome` is "rejected" (the ticket is set aside with an error file),
or the job status it must end in; `reason` is a phrase the operator's reason contains."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf

from tests.helpers import job_ticket, make_pdf
from tests.pdfs import PT_PER_MM, flate_bomb, font, image, new_page, save


@dataclass(frozen=True)
class Case:
    name: str
    outcome: str  # "rejected" or a job status
    reason: str
    build: Callable[[Path, str], dict[str, Any] | bytes | None]  # (intake, job id) → ticket
    job_id: str = ""


def _ticket(intake: Path, jid: str, /, **changes: Any) -> dict[str, Any]:
    make_pdf(intake / jid / "art.pdf")
    body = job_ticket(jid, [f"{jid}/art.pdf"])
    for key, value in changes.items():
        if key == "product":
            body["product"] = {**body["product"], **value}
        else:
            body[key] = value
    return body


def _without(key: str) -> Callable[[Path, str], dict[str, Any]]:
    def build(intake: Path, job_id: str) -> dict[str, Any]:
        body = _ticket(intake, job_id)
        body.pop(key)
        return body
    return build


def _raw(data: bytes) -> Callable[[Path, str], bytes]:
    return lambda intake, job_id: data


def _changed(**changes: Any) -> Callable[[Path, str], dict[str, Any]]:
    return lambda intake, job_id: _ticket(intake, job_id, **changes)


def _with_pdf(make: Callable[[Path], None], **changes: Any) -> Callable[[Path, str],
                                                                     dict[str, Any]]:
    def build(intake: Path, job_id: str) -> dict[str, Any]:
        body = _ticket(intake, job_id, **changes)
        make(intake / job_id / "art.pdf")
        return body
    return build


def _path(path: str, prepare: Callable[[Path, str], None] | None = None
          ) -> Callable[[Path, str], dict[str, Any]]:
    def build(intake: Path, job_id: str) -> dict[str, Any]:
        body = _ticket(intake, job_id)
        if prepare:
            prepare(intake, job_id)
        body["files"] = [{"path": path.format(job=job_id), "role": "part"}]
        return body
    return build


# -- PDFs ---------------------------------------------------------------------

def pdf_bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def pdf_truncated_eof(path: Path) -> None:
    """The same cut, with an %%EOF added after it: qpdf repairs it, the image is gone."""
    pdf_truncated(path)
    path.write_bytes(path.read_bytes() + b"\n%%EOF\n")


def pdf_truncated(path: Path) -> None:
    """An upload cut off inside the image the page draws."""
    pdf = pikepdf.new()
    new_page(pdf, b"q 36 0 0 36 10 10 cm /Im1 Do Q",
             pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=image(pdf, 300, 300))))
    save(pdf, path, compress_streams=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def pdf_encrypted(user: str, print_ok: bool) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        make_pdf(path)
        with pikepdf.open(path, allow_overwriting_input=True) as pdf:
            pdf.save(path, encryption=pikepdf.Encryption(
                owner="owner", user=user, allow=pikepdf.Permissions(print_highres=print_ok)))
    return make


def pdf_page_loop(path: Path) -> None:
    make_pdf(path)
    data = path.read_bytes()
    # Point the page tree's Kids at the Pages node itself.
    with pikepdf.open(path) as pdf:
        pages = pdf.Root.Pages.objgen[0]
    loop = data.replace(b"/Kids [", f"/Kids [ {pages} 0 R ".encode(), 1)
    path.write_bytes(loop)


def pdf_deep_nesting(path: Path) -> None:
    make_pdf(path)
    data = path.read_bytes()
    deep = b"[" * 5000 + b"]" * 5000
    path.write_bytes(data.replace(b"/Type /Catalog", b"/Deep " + deep + b" /Type /Catalog", 1))


def pdf_bomb(path: Path) -> None:
    pdf = pikepdf.new()
    page = new_page(pdf, b"")
    page.obj.Contents = flate_bomb(pdf, 1 << 30)
    save(pdf, path)


def pdf_pages(count: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        pdf = pikepdf.new()
        content = pdf.make_stream(b"0 0 0 1 k 0 0 10 10 re f")
        for _ in range(count):
            page = pdf.add_blank_page(page_size=(154 * PT_PER_MM, 216 * PT_PER_MM))
            page.obj.Contents = content
        save(pdf, path)
    return make


def pdf_huge_sparse(path: Path) -> None:
    make_pdf(path)
    with open(path, "r+b") as fh:
        fh.truncate(2 << 30)  # 2 GB, sparse: the size check must refuse it unread


def pdf_js(path: Path) -> None:
    pdf = pikepdf.new()
    new_page(pdf, b"0 0 0 1 k 0 0 10 10 re f")
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript,
                                             JS=pikepdf.String("app.alert(1)"))
    save(pdf, path)


def pdf_repairable(path: Path) -> None:
    make_pdf(path)
    data = path.read_bytes()
    cut = data.rfind(b"xref")
    path.write_bytes(data[:cut] + b"xref\n0 9\ngarbage\ntrailer\n<<>>\n%%EOF\n")


def pdf_bad_boxes(path: Path) -> None:
    pdf = pikepdf.new()
    page = new_page(pdf, b"")
    w, h = 148 * PT_PER_MM, 210 * PT_PER_MM
    page.obj.TrimBox = pikepdf.Array([8.5, 8.5, 8.5 + w, 8.5 + h])
    page.obj.BleedBox = pikepdf.Array([10, 10, 400, 600])
    save(pdf, path)


def pdf_font(path: Path) -> None:
    pdf = pikepdf.new()
    new_page(pdf, b"BT /F1 12 Tf 10 10 Td (x) Tj ET",
             pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font(pdf, "Helvetica", False))))
    save(pdf, path)


def pdf_low_res(path: Path) -> None:
    pdf = pikepdf.new()
    new_page(pdf, b"q 288 0 0 288 10 10 cm /Im1 Do Q",
             pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im1=image(pdf, 200, 200))))
    save(pdf, path)


def _symlinked(intake: Path, job_id: str) -> None:
    (intake / job_id / "link.pdf").symlink_to(intake / job_id / "art.pdf")


def _folder(intake: Path, job_id: str) -> None:
    (intake / job_id / "folder.pdf").mkdir()


def _fifo(intake: Path, job_id: str) -> None:
    os.mkfifo(intake / job_id / "fifo.pdf")


def _event(**body: Any) -> Callable[[Path, str], dict[str, Any]]:
    return lambda intake, job_id: {"schema": "outputd.event/1", **body}


R = "rejected"
VF = "ValidationFailed"
OK = "InHotFolder"

CASES: list[Case] = [
    # Tickets that are not tickets.
    Case("not-json", R, "not valid JSON", _raw(b"{this is not json")),
    Case("json-array", R, "JSON list, not an object", _raw(b"[1, 2, 3]")),
    Case("json-string", R, "JSON str, not an object", _raw(b'"a ticket"')),
    Case("json-number", R, "JSON int, not an object", _raw(b"42")),
    Case("json-null", R, "JSON NoneType", _raw(b"null")),
    Case("empty-file", R, "not valid JSON", _raw(b"")),
    Case("binary", R, "not valid JSON", _raw(bytes(range(256)))),
    Case("bom-utf16", R, "schema is None", _raw('{"a": 1}'.encode("utf-16"))),
    Case("deep-json", R, "nested too deeply", _raw(b"[" * 100000 + b"]" * 100000)),
    Case("huge-ticket", R, "the limit is", _raw(b" " * (100 << 20))),
    Case("wrong-schema", R, "schema is 'outputd.job/2'", _changed(schema="outputd.job/2")),
    Case("no-schema", R, "schema is None", _without("schema")),
    # Wrong or missing fields.
    Case("unknown-field", R, "colour is not a known field", _changed(colour="blue")),
    Case("unknown-product-field", R, "product.finish is not a known field",
         _changed(product={"finish": "gloss"})),
    Case("missing-job-id", R, "job_id is required", _without("job_id")),
    Case("missing-order-id", R, "order_id is required", _without("order_id")),
    Case("missing-product", R, "product is required", _without("product")),
    Case("missing-files", R, "files is required", _without("files")),
    Case("missing-quantity", R, "quantity is required", _without("quantity")),
    Case("missing-payment", R, "payment_status is required", _without("payment_status")),
    Case("quantity-zero", R, "quantity", _changed(quantity=0)),
    Case("quantity-text", R, "quantity", _changed(quantity="many")),
    Case("files-not-list", R, "files", _changed(files="art.pdf")),
    Case("files-empty", R, "files", _changed(files=[])),
    Case("approval-unknown", R, "approval", _changed(approval="Maybe")),
    Case("process-after-no-zone", R, "time zone", _changed(process_after="2030-01-01T08:00")),
    Case("process-after-garbage", R, "process_after", _changed(process_after="tomorrow")),
    Case("type-unknown", R, "product.type", _changed(product={"type": "poster"})),
    Case("trim-negative", R, "product.trim.width_mm",
         _changed(product={"trim": {"width_mm": -1, "height_mm": 210}})),
    Case("priority-huge", R, "priority", _changed(priority=10**9)),
    # Unsafe ids.
    Case("id-slash", R, "job_id must be 1-64", _changed(job_id="a/b")),
    Case("id-dotdot", R, "job_id must be 1-64", _changed(job_id="..")),
    Case("id-leading-dot", R, "job_id must be 1-64", _changed(job_id=".hidden")),
    Case("id-nul", R, "job_id must be 1-64", _changed(job_id="a\x00b")),
    Case("id-10000", R, "job_id must be 1-64", _changed(job_id="x" * 10000)),
    Case("id-emoji", R, "job_id must be 1-64", _changed(job_id="job-\U0001f5a8")),
    Case("order-space", R, "order_id must be 1-64", _changed(order_id="50 01")),
    Case("sku-dot", R, "product.sku must be 1-64", _changed(product={"sku": ".x"})),
    Case("storefront-empty", R, "storefront must be 1-64", _changed(storefront="")),
    # Paths.
    Case("path-absolute", R, "must be relative", _path("/etc/passwd")),
    Case("path-escapes", R, "leaves the intake folder", _path("../outside.pdf")),
    Case("path-escapes-deep", R, "leaves the intake folder", _path("{job}/../../x.pdf")),
    Case("path-hidden", R, "hidden file", _path("{job}/.art.pdf")),
    Case("path-backslash", R, "backslash", _path("{job}\\art.pdf")),
    Case("path-symlink", R, "symlink", _path("{job}/link.pdf", _symlinked)),
    Case("path-folder", R, "not a regular file", _path("{job}/folder.pdf", _folder)),
    Case("path-fifo", R, "not a regular file", _path("{job}/fifo.pdf", _fifo)),
    Case("static-two-files", R, "exactly one file",
         lambda intake, job_id: {**_ticket(intake, job_id), "files": [
             {"path": f"{job_id}/art.pdf"}, {"path": f"{job_id}/art2.pdf"}]}),
    Case("same-path-twice", R, "same path twice", lambda intake, job_id: {
        **_ticket(intake, job_id, product={"type": "multipart"}),
        "files": [{"path": f"{job_id}/art.pdf"}, {"path": f"{job_id}/art.pdf"}]}),
    # Events.
    Case("event-unknown-job", R, "there is no job NOPE", _event(job_id="NOPE", event="paid")),
    Case("event-unknown-order", R, "no jobs for order NOPE of storefront acme",
         _event(order_id="NOPE", storefront="acme", event="shipped")),
    Case("event-order-without-storefront", R, "an order event names its storefront",
         _event(order_id="NOPE", event="shipped")),
    Case("event-unknown-name", R, "event", _event(job_id="x", event="teleport")),
    Case("event-two-targets", R, "exactly one of job_id and order_id",
         _event(job_id="a", order_id="b", event="paid")),
    # PDFs.
    Case("pdf-empty", VF, "is empty", _with_pdf(pdf_bytes(b""))),
    Case("pdf-text", VF, "not a PDF", _with_pdf(pdf_bytes(b"hello, I am a text file"))),
    Case("pdf-html", VF, "HTML page", _with_pdf(pdf_bytes(b"<!doctype html><html></html>"))),
    Case("pdf-truncated", VF, "ends without %%EOF: the file was cut short",
         _with_pdf(pdf_truncated)),
    Case("pdf-truncated-eof-added", VF, "uses XObject Im1, which it does not define",
         _with_pdf(pdf_truncated_eof)),
    Case("pdf-user-password", VF, "needs a password", _with_pdf(pdf_encrypted("user", True))),
    Case("pdf-no-print", VF, "forbids high-resolution printing",
         _with_pdf(pdf_encrypted("", False))),
    Case("pdf-page-loop", VF, "art.pdf", _with_pdf(pdf_page_loop)),
    Case("pdf-deep-nesting", VF, "art.pdf", _with_pdf(pdf_deep_nesting)),
    Case("pdf-bomb", VF, "art.pdf", _with_pdf(pdf_bomb)),
    Case("pdf-10000-pages", VF, "has 10000 pages", _with_pdf(pdf_pages(10000))),
    Case("pdf-2gb", VF, "the limit is", _with_pdf(pdf_huge_sparse)),
    Case("pdf-wrong-size", VF, "210.0 × 297.0 mm",
         _with_pdf(lambda p: make_pdf(p, width_mm=210, height_mm=297))),
    Case("pdf-no-bleed", VF, "0.0 mm bleed",
         _with_pdf(lambda p: make_pdf(p, width_mm=148, height_mm=210))),
    Case("pdf-bad-boxes", VF, "TrimBox reaches outside the BleedBox", _with_pdf(pdf_bad_boxes)),
    Case("pdf-font", VF, "font Helvetica on page 1 is not embedded", _with_pdf(pdf_font)),
    Case("pdf-low-res", VF, "is 50 ppi", _with_pdf(pdf_low_res)),
    Case("pdf-javascript", OK, "", _with_pdf(pdf_js)),
    Case("pdf-repairable", OK, "", _with_pdf(pdf_repairable)),
    Case("pdf-owner-print-ok", OK, "", _with_pdf(pdf_encrypted("", True))),
    Case("file-never-arrives", VF, "never arrived",
         lambda intake, job_id: job_ticket(job_id, [f"{job_id}/late.pdf"])),
]


def write_ticket(intake: Path, name: str, ticket: dict[str, Any] | bytes) -> None:
    data = ticket if isinstance(ticket, bytes) else json.dumps(ticket).encode()
    temp = intake / f".{name}.tmp"
    temp.write_bytes(data)
    os.replace(temp, intake / name)
