"""Building blocks for test PDFs with images, forms, fonts, layers and output intents."""

from __future__ import annotations

import zlib
from pathlib import Path

import pikepdf

PT_PER_MM = 72 / 25.4
A5_BLEED = (154 * PT_PER_MM, 216 * PT_PER_MM)  # A5 with 3 mm bleed each side


def new_page(pdf: pikepdf.Pdf, content: bytes, resources: pikepdf.Dictionary | None = None,
             size: tuple[float, float] = A5_BLEED) -> pikepdf.Page:
    page = pdf.add_blank_page(page_size=size)
    page.obj.Contents = pdf.make_stream(content)
    page.obj.Resources = resources or pikepdf.Dictionary()
    return page


def image(pdf: pikepdf.Pdf, width: int, height: int, space: str = "/DeviceCMYK") -> pikepdf.Stream:
    channels = {"/DeviceCMYK": 4, "/DeviceRGB": 3, "/DeviceGray": 1}[space]
    data = bytes((x * 7 + y) % 256 for y in range(height) for x in range(width * channels))
    stream = pdf.make_stream(data)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Image
    stream.Width, stream.Height = width, height
    stream.ColorSpace = pikepdf.Name(space)
    stream.BitsPerComponent = 8
    return stream


def form(pdf: pikepdf.Pdf, content: bytes, resources: pikepdf.Dictionary,
         matrix: tuple[float, ...] = (1, 0, 0, 1, 0, 0)) -> pikepdf.Stream:
    stream = pdf.make_stream(content)
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Form
    stream.BBox = pikepdf.Array([0, 0, 1000, 1000])
    stream.Matrix = pikepdf.Array(list(matrix))
    stream.Resources = resources
    return stream


def font(pdf: pikepdf.Pdf, name: str, embedded: bool) -> pikepdf.Dictionary:
    descriptor = pikepdf.Dictionary(Type=pikepdf.Name.FontDescriptor,
                                    FontName=pikepdf.Name("/" + name), Flags=32)
    if embedded:
        descriptor.FontFile2 = pdf.make_stream(b"\x00\x01\x00\x00 (a font program)")
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType,
        BaseFont=pikepdf.Name("/" + name), FontDescriptor=pdf.make_indirect(descriptor)))


def output_intent(pdf: pikepdf.Pdf, condition: str) -> None:
    profile = pdf.make_stream(b"(an ICC profile)")
    profile.N = 4
    pdf.Root.OutputIntents = pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFX,
        OutputConditionIdentifier=pikepdf.String(condition),
        DestOutputProfile=profile)])


def flate_bomb(pdf: pikepdf.Pdf, decoded_bytes: int) -> pikepdf.Stream:
    """A content stream that inflates to `decoded_bytes` of spaces, built in pieces."""
    packer = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [packer.compress(chunk) for _ in range(decoded_bytes >> 20)]
    parts.append(packer.flush())
    stream = pikepdf.Stream(pdf, b"")
    stream.write(b"".join(parts), filter=pikepdf.Name.FlateDecode)
    return stream


def save(pdf: pikepdf.Pdf, path: Path, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path, **kwargs)  # type: ignore[arg-type]
    return path
