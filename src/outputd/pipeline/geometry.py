"""Page boxes in millimetres, and the trim and bleed a page carries (DESIGN §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MM_PER_PT = 25.4 / 72
TRIM_TOLERANCE_MM = 0.5
BLEED_TOLERANCE_MM = 0.05


@dataclass(frozen=True)
class Box:
    """A rectangle in millimetres, normalised so x0 ≤ x1 and y0 ≤ y1."""

    x0: float
    y0: float
    x1: float
    y1: float

    @classmethod
    def from_pdf(cls, array: Any, unit: float) -> Box:
        a, b, c, d = (float(v) * unit * MM_PER_PT for v in list(array)[:4])
        return cls(min(a, c), min(b, d), max(a, c), max(b, d))

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def inset(self, by: float) -> Box:
        return Box(self.x0 + by, self.y0 + by, self.x1 - by, self.y1 - by)

    def margin_to(self, outer: Box) -> float:
        """The smallest distance from this box's edges out to `outer`'s."""
        return min(self.x0 - outer.x0, self.y0 - outer.y0, outer.x1 - self.x1, outer.y1 - self.y1)


def fits(width: float, height: float, want_w: float, want_h: float) -> bool:
    """Whether a size matches the wanted one within tolerance, in either orientation."""
    t = TRIM_TOLERANCE_MM
    return (abs(width - want_w) <= t and abs(height - want_h) <= t) or (
        abs(width - want_h) <= t and abs(height - want_w) <= t
    )


@dataclass(frozen=True)
class PageGeometry:
    """A page's size and boxes in millimetres."""
    media: Box
    trim: Box
    bleed_box: Box | None

    @property
    def bleed(self) -> float:
        """The bleed carried around the trim, up to the BleedBox or else the MediaBox."""
        return self.trim.margin_to(self.bleed_box or self.media)


def page_geometry(page: Any, trim_w: float, trim_h: float, bleed_mm: float) -> PageGeometry:
    """A page's boxes as DESIGN §2 reads them: the raw TrimBox when present, else the
    MediaBox less the product's bleed when that gives the product's trim, else the MediaBox.
    """
    obj = page.obj
    unit = float(obj.get("/UserUnit", 1))
    media = Box.from_pdf(page.mediabox, unit)
    raw_trim = obj.get("/TrimBox")
    raw_bleed = obj.get("/BleedBox")
    if raw_trim is not None:
        trim = Box.from_pdf(raw_trim, unit)
    else:
        inner = media.inset(bleed_mm)
        trim = inner if bleed_mm > 0 and fits(inner.width, inner.height, trim_w, trim_h) else media
    bleed_box = Box.from_pdf(raw_bleed, unit) if raw_bleed is not None else None
    return PageGeometry(media, trim, bleed_box)
