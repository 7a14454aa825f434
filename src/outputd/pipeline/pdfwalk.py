"""Walks a page's content the way a RIP draws it: the current transformation matrix through
q/Q/cm, form XObjects with their own matrices and resources, images (XObjects and inline),
fonts, colour operators and spaces, and transparency.

pikepdf's `get_objects_with_ctm` is not used: it multiplies matrices in the wrong order for
rotated placements and does not enter forms or see inline images.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import pikepdf

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
MAX_FORM_DEPTH = 12
RGB_SPACES = {"/DeviceRGB", "/CalRGB", "/RGB"}
PROCESS_NAMES = {"/Cyan", "/Magenta", "/Yellow", "/Black", "/None", "/All"}


class WalkLimit(Exception):
    """The walk broke a safety limit (depth, time); the message says which."""


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """m × n for PDF's row-vector matrices: apply m, then n."""
    a, b, c, d, e, f = m
    p, q, r, s, t, u = n
    return (a * p + b * r, a * q + b * s, c * p + d * r, c * q + d * s,
            e * p + f * r + t, e * q + f * s + u)


def _matrix(values: Any) -> Matrix:
    nums = [float(v) for v in list(values)[:6]]
    if len(nums) != 6:
        return IDENTITY
    return (nums[0], nums[1], nums[2], nums[3], nums[4], nums[5])


@dataclass
class ImageUse:
    """An image drawn on a page: its effective resolution and colour."""
    page: int
    name: str
    width_px: int
    height_px: int
    ppi: float  # the lower of the two directions
    rgb: bool


@dataclass
class PageUse:
    """What one page draws."""

    page: int
    images: list[ImageUse] = field(default_factory=list)
    fonts: dict[str, bool] = field(default_factory=dict)  # base font name → embedded
    rgb: set[str] = field(default_factory=set)  # where RGB is used: "images", "operators", …
    spots: set[str] = field(default_factory=set)
    transparency: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)  # resources the content names but lacks


def font_embedded(font: Any) -> tuple[str, bool]:
    """(name, embedded) of a font dictionary."""
    name = str(font.get("/BaseFont", font.get("/Name", "unnamed")))[1:] or "unnamed"
    subtype = font.get("/Subtype")
    if subtype == "/Type3":
        return name, True  # its glyphs are drawn by procedures in the file
    if subtype == "/Type0":
        descendants = font.get("/DescendantFonts")
        if not descendants:
            return name, False
        font = descendants[0]
    descriptor = font.get("/FontDescriptor")
    if descriptor is None:
        return name, False
    return name, any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))


def _space_kind(space: Any, resources: Any | None = None) -> tuple[bool, set[str]]:
    """(is RGB, spot names) of a colour space (a name, or an array like [/ICCBased s])."""
    if isinstance(space, pikepdf.Name):
        key = str(space)
        if key in RGB_SPACES:
            return True, set()
        if resources is not None:
            named = resources.get("/ColorSpace", {}).get(key) if "/ColorSpace" in resources \
                else None
            if named is not None:
                return _space_kind(named)
        return False, set()
    if isinstance(space, pikepdf.Array) and len(space) > 0:
        family = str(space[0])
        if family == "/ICCBased":
            return int(space[1].get("/N", 0)) == 3, set()
        if family == "/CalRGB":
            return True, set()
        if family == "/Separation":
            return False, {str(space[1])[1:]} if str(space[1]) not in PROCESS_NAMES else set()
        if family == "/DeviceN":
            return False, {str(n)[1:] for n in space[1] if str(n) not in PROCESS_NAMES}
        if family == "/Indexed":
            return _space_kind(space[1], resources)
    return False, set()


class Walker:
    """Walks the pages of one document within a time budget."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def _check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise WalkLimit("checking the content took longer than its time budget")

    def page(self, page: pikepdf.Page, number: int) -> PageUse:
        use = PageUse(number)
        unit = float(page.obj.get("/UserUnit", 1))
        resources = page.obj.get("/Resources", pikepdf.Dictionary())
        if "/Group" in page.obj and page.obj.Group.get("/S") == "/Transparency":
            use.transparency.add("page group")
        self._content(pikepdf.parse_content_stream(page), resources, IDENTITY, unit, use, 0)
        return use

    def _content(self, ops: list[Any], resources: Any, ctm: Matrix, unit: float,
                 use: PageUse, depth: int) -> None:
        stack: list[Matrix] = []
        for item in ops:
            self._check_time()
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                image = item.iimage
                self._place(use, "inline image", int(image.width), int(image.height), ctm,
                            unit, _space_kind(image.obj.get("/ColorSpace",
                                                            image.obj.get("/CS")))[0])
                continue
            operands, operator = item.operands, str(item.operator)
            if operator == "q":
                stack.append(ctm)
            elif operator == "Q":
                ctm = stack.pop() if stack else ctm
            elif operator == "cm" and len(operands) == 6:
                ctm = multiply(_matrix(operands), ctm)
            elif operator == "Do" and operands:
                self._xobject(str(operands[0]), resources, ctm, unit, use, depth)
            elif operator == "Tf" and operands:
                self._font(str(operands[0]), resources, use)
            elif operator in ("rg", "RG"):
                use.rgb.add("colour operators")
            elif operator in ("cs", "CS") and operands:
                rgb, spots = _space_kind(operands[0], resources)
                if rgb:
                    use.rgb.add("colour spaces")
                use.spots |= spots
            elif operator == "gs" and operands:
                self._graphics_state(str(operands[0]), resources, use)
            elif operator == "sh" and operands:
                shading = resources.get("/Shading", {}).get(str(operands[0])) \
                    if "/Shading" in resources else None
                if shading is not None:
                    rgb, spots = _space_kind(shading.get("/ColorSpace"), resources)
                    if rgb:
                        use.rgb.add("shadings")
                    use.spots |= spots

    def _xobject(self, name: str, resources: Any, ctm: Matrix, unit: float, use: PageUse,
                 depth: int) -> None:
        xobjects = resources.get("/XObject") if "/XObject" in resources else None
        xobject = xobjects.get(name) if xobjects is not None else None
        if xobject is None:
            use.missing.append(f"XObject {name[1:]}")
            return
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            rgb, spots = _space_kind(xobject.get("/ColorSpace"), resources)
            use.spots |= spots
            if "/SMask" in xobject:
                use.transparency.add("soft-masked images")
            self._place(use, name[1:], int(xobject.get("/Width", 0)),
                        int(xobject.get("/Height", 0)), ctm, unit, rgb)
        elif subtype == "/Form":
            if depth >= MAX_FORM_DEPTH:
                raise WalkLimit(f"forms nest deeper than {MAX_FORM_DEPTH} levels")
            if "/Group" in xobject and xobject.Group.get("/S") == "/Transparency":
                use.transparency.add("transparency groups")
            inner = multiply(_matrix(xobject.get("/Matrix", IDENTITY)), ctm)
            self._content(pikepdf.parse_content_stream(xobject),
                          xobject.get("/Resources", resources), inner, unit, use, depth + 1)

    def _place(self, use: PageUse, name: str, width: int, height: int, ctm: Matrix,
               unit: float, rgb: bool) -> None:
        a, b, c, d = ctm[:4]
        placed_w = math.hypot(a, b) * unit / 72  # inches along the image's x axis
        placed_h = math.hypot(c, d) * unit / 72
        if placed_w <= 0 or placed_h <= 0 or width <= 0 or height <= 0:
            return
        ppi = min(width / placed_w, height / placed_h)
        use.images.append(ImageUse(use.page, name, width, height, ppi, rgb))
        if rgb:
            use.rgb.add("images")

    def _font(self, name: str, resources: Any, use: PageUse) -> None:
        fonts = resources.get("/Font") if "/Font" in resources else None
        font = fonts.get(name) if fonts is not None else None
        if font is None:
            use.missing.append(f"font {name[1:]}")
            return
        base, embedded = font_embedded(font)
        use.fonts[base] = use.fonts.get(base, True) and embedded

    def _graphics_state(self, name: str, resources: Any, use: PageUse) -> None:
        states = resources.get("/ExtGState") if "/ExtGState" in resources else None
        gs = states.get(name) if states is not None else None
        if gs is None:
            return
        if gs.get("/SMask", pikepdf.Name("/None")) != pikepdf.Name("/None"):
            use.transparency.add("soft masks")
        for key in ("/CA", "/ca"):
            if key in gs and float(gs[key]) < 1:
                use.transparency.add("opacity")
        if gs.get("/BM", pikepdf.Name.Normal) not in (pikepdf.Name.Normal,
                                                      pikepdf.Name.Compatible):
            use.transparency.add("blend modes")
