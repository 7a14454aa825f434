"""Walks a page's content the way a RIP draws it: the graphics state through q/Q (the
current transformation matrix, fill and stroke colour, line width, overprint, text size
and render mode), form XObjects with their own matrices and resources, images (XObjects
and inline), fonts, colour spaces, shadings and transparency; and what a page prints
besides its content: tiling and shading patterns, printing annotations' appearances,
Type 3 glyph procedures and soft-mask groups.

pikepdf's `get_objects_with_ctm` is not used: it multiplies matrices in the wrong order for
rotated placements and does not enter forms or see inline images.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pikepdf

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
MAX_FORM_DEPTH = 12
RGB_SPACES = {"/DeviceRGB", "/CalRGB", "/RGB"}
PROCESS_NAMES = {"/Cyan", "/Magenta", "/Yellow", "/Black", "/None", "/All"}
PROCESS = {"Cyan", "Magenta", "Yellow", "Black"}
NOT_SPOTS = PROCESS | {"None", "All"}  # colourant names that are no spot colour
_KINDS = {"/Pattern": "pattern", "/XObject": "XObject", "/Font": "font"}  # in messages
PRINTS, HIDDEN = 4, 2  # annotation flags (PDF 32000-1 12.5.3)


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
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # in points, on the page


@dataclass(frozen=True)
class Paint:
    """A colour as the content sets it: its family (`gray`, `rgb`, `cmyk`, `separation`,
    `devicen`, `lab`, `pattern`, `other`), colourant names and values."""

    family: str = "gray"
    names: tuple[str, ...] = ()
    values: tuple[float, ...] = (0.0,)

    @property
    def white(self) -> bool:
        """No ink at all: what vanishes when set to overprint (GWG's white object)."""
        if self.family == "gray":
            return bool(self.values) and self.values[0] >= 1.0
        if self.family in ("cmyk", "separation", "devicen"):
            return bool(self.values) and all(v <= 0.0 for v in self.values) \
                and "None" not in self.names
        return False

    @property
    def black(self) -> bool:
        """100 % black and nothing else (GWG's 100 % black object)."""
        if self.family == "gray":
            return bool(self.values) and self.values[0] <= 0.0
        if self.family == "cmyk":
            return len(self.values) == 4 and self.values[3] >= 1.0 and not any(
                self.values[:3])
        return False

    @property
    def spots(self) -> tuple[str, ...]:
        return spots_of(self.names)

    @property
    def registration(self) -> bool:
        """The `All` separation: ink on every plate, meant for marks, not content."""
        return "All" in self.names

    def inks(self) -> str:
        """What a person calls it: "black only", "4 process colours", "spot PANTONE 185 C"."""
        if self.family == "cmyk":
            count = sum(1 for v in self.values if v > 0)
            return "black only" if count <= 1 else f"{count} process colours"
        if self.spots:
            return "spot " + " + ".join(self.spots)
        return {"gray": "black only", "rgb": "RGB"}.get(self.family, self.family)

    @property
    def several_inks(self) -> bool:
        """Printed with more than one plate, or with a spot colour (misregistration
        blurs it; a spot may be a special ink)."""
        if self.family == "cmyk":
            return sum(1 for v in self.values if v > 0) > 1
        return self.family in ("rgb", "lab") or bool(self.spots)


@dataclass
class State:
    """The part of the graphics state the checks read."""

    ctm: Matrix = IDENTITY
    fill: Paint = Paint()
    stroke: Paint = Paint()
    line_width: float = 1.0
    overprint_fill: bool = False
    overprint_stroke: bool = False
    font_size: float = 0.0
    render_mode: int = 0


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
    white_overprint: set[str] = field(default_factory=set)  # "text", "paths", …
    overprint: set[str] = field(default_factory=set)  # what is set to overprint
    registration: set[str] = field(default_factory=set)  # what is in the All separation
    thinnest_line: float | None = None  # the thinnest stroke, in points (0: a 0-width line)
    small_text: dict[str, float] = field(default_factory=dict)  # inks → smallest size in pt
    painted: bool = False  # anything at all is drawn (else the page is empty)
    courier: set[str] = field(default_factory=set)  # Courier fonts: a substitute, usually
    black_knockout: float | None = None  # smallest 100 % black text not set to overprint
    media: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # the MediaBox, points
    rotate: int = 0

    def place(self, box: tuple[float, float, float, float]
              ) -> tuple[int, float, float, float, float] | None:
        """A box in page space as (page, left, top, right, bottom) in mm from the page's
        top left corner; None on a rotated page."""
        if self.rotate % 360:
            return None
        mm = 25.4 / 72
        x0, _, _, y1 = self.media
        return (self.page, (box[0] - x0) * mm, (y1 - box[3]) * mm, (box[2] - x0) * mm,
                (y1 - box[1]) * mm)


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


def _named(resources: Any, kind: str, name: str) -> Any:
    """A named resource of a kind (/ColorSpace, /Pattern, …), or None."""
    if resources is None or kind not in resources:
        return None
    table = resources[kind]
    return table.get(name) if isinstance(table, pikepdf.Dictionary) else None


def _space(space: Any, resources: Any, depth: int = 0) -> tuple[str, tuple[str, ...], int]:
    """(family, colourant names, components) of a colour space: a name, or an array
    like [/ICCBased s] or [/Separation /Gold /DeviceCMYK f]."""
    if depth > 8:
        return "other", (), 1
    if isinstance(space, pikepdf.Name):
        key = str(space)
        device = {"/DeviceGray": ("gray", 1), "/G": ("gray", 1), "/CalGray": ("gray", 1),
                  "/DeviceRGB": ("rgb", 3), "/RGB": ("rgb", 3), "/CalRGB": ("rgb", 3),
                  "/DeviceCMYK": ("cmyk", 4), "/CMYK": ("cmyk", 4), "/Pattern": ("pattern", 0),
                  "/Indexed": ("other", 1)}
        if key in device:
            family, n = device[key]
            return family, (), n
        named = _named(resources, "/ColorSpace", key)
        return _space(named, None, depth + 1) if named is not None else ("other", (), 1)
    if isinstance(space, pikepdf.Array) and len(space) > 0:
        family = str(space[0])
        if family == "/ICCBased":
            n = int(space[1].get("/N", 0))
            return {1: "gray", 3: "rgb", 4: "cmyk"}.get(n, "other"), (), n
        if family in ("/CalRGB", "/CalGray", "/Lab"):
            return {"/CalRGB": ("rgb", (), 3), "/CalGray": ("gray", (), 1),
                    "/Lab": ("lab", (), 3)}[family]
        if family == "/Separation" and len(space) > 1:
            return "separation", (str(space[1])[1:],), 1
        if family == "/DeviceN" and len(space) > 1:
            names = tuple(str(n)[1:] for n in space[1])
            return "devicen", names, len(names)
        if family == "/Indexed" and len(space) > 1:
            base, names, _ = _space(space[1], resources, depth + 1)
            return base, names, 1
        if family == "/Pattern":
            return "pattern", (), 0
    return "other", (), 1


def _initial(family: str, names: tuple[str, ...], n: int) -> Paint:
    """The colour a `cs` sets (PDF 32000-1 8.6.8): black, or full tint of a colorant."""
    if family == "cmyk":
        return Paint("cmyk", (), (0.0, 0.0, 0.0, 1.0))
    if family in ("separation", "devicen"):
        return Paint(family, names, (1.0,) * len(names))
    return Paint(family, names, (0.0,) * max(n, 1))


def _numbers(operands: list[Any]) -> tuple[float, ...]:
    found = []
    for value in operands:
        try:
            found.append(float(value))
        except (TypeError, ValueError):
            break
    return tuple(found)


def spots_of(names: tuple[str, ...]) -> tuple[str, ...]:
    """The spot colours among colourant names."""
    return tuple(n for n in names if n not in NOT_SPOTS)


def _function_key(function: Any) -> str:
    """What a tint transform computes, as text two equal transforms share."""
    if isinstance(function, pikepdf.Stream):
        import hashlib

        if int(function.get("/Length", 0)) > 1 << 20:  # not read to compare
            return f"object {function.objgen}"
        head = {k: str(function.get(k)) for k in ("/FunctionType", "/Domain", "/Range")}
        return f"{head}{hashlib.sha256(function.read_bytes()).hexdigest()[:16]}"
    if isinstance(function, pikepdf.Dictionary):
        return str(sorted((k, str(v)) for k, v in function.items()))
    return str(function)


def _scale(m: Matrix) -> float:
    """How much a matrix scales lengths (the geometric mean of its two axes)."""
    return math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))


class Walker:
    """Walks the pages of one document within a time budget."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self._seen: set[tuple[int, int]] = set()
        # each spot colour's appearances (alternate space and tint transform) → pages
        self.alternates: dict[str, dict[str, set[int]]] = {}
        self._functions: dict[tuple[int, int], str] = {}  # tint transforms, by object

    def _check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise WalkLimit("checking the content took longer than its time budget")

    def page(self, page: pikepdf.Page, number: int) -> PageUse:
        use = PageUse(number)
        self._seen = set()  # patterns, glyph procedures and groups: walked once a page
        unit = float(page.obj.get("/UserUnit", 1))
        resources = page.obj.get("/Resources", pikepdf.Dictionary())
        if "/Group" in page.obj and page.obj.Group.get("/S") == "/Transparency":
            use.transparency.add("page group")
        self._content(pikepdf.parse_content_stream(page), resources, State(), unit, use, 0)
        for annotation in page.obj.get("/Annots", pikepdf.Array()):
            self._annotation(annotation, unit, use)
        if use.images:  # where they are, for the report (read only where needed)
            with contextlib.suppress(ValueError, TypeError, IndexError):
                media = [float(v) * unit for v in page.mediabox]
                use.media = (min(media[0], media[2]), min(media[1], media[3]),
                             max(media[0], media[2]), max(media[1], media[3]))
                use.rotate = int(page.obj.get("/Rotate", 0))
        return use

    def _annotation(self, annotation: Any, unit: float, use: PageUse) -> None:
        """A printing annotation's normal appearance is printed over the page."""
        if not isinstance(annotation, pikepdf.Dictionary):
            return
        flags = int(annotation.get("/F", 0))
        if not flags & PRINTS or flags & HIDDEN or "/AP" not in annotation:
            return
        appearance = annotation.AP.get("/N")
        if isinstance(appearance, pikepdf.Dictionary) and not isinstance(
                appearance, pikepdf.Stream):  # one appearance per state
            appearance = appearance.get(str(annotation.get("/AS", "")))
        if not isinstance(appearance, pikepdf.Stream) or "/Rect" not in annotation:
            return
        # The appearance's box, through its matrix, is fitted to the annotation's Rect
        # (PDF 32000-1 12.5.5).
        matrix = _matrix(appearance.get("/Matrix", IDENTITY))
        box = [float(v) for v in appearance.get("/BBox", [0, 0, 1, 1])]
        corners = [(x * matrix[0] + y * matrix[2] + matrix[4],
                    x * matrix[1] + y * matrix[3] + matrix[5])
                   for x in (box[0], box[2]) for y in (box[1], box[3])]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        rect = [float(v) for v in annotation.Rect]
        width, height = max(xs) - min(xs), max(ys) - min(ys)
        if width <= 0 or height <= 0:
            return
        sx, sy = (rect[2] - rect[0]) / width, (rect[3] - rect[1]) / height
        fit: Matrix = (sx, 0.0, 0.0, sy, rect[0] - min(xs) * sx, rect[1] - min(ys) * sy)
        self._form(appearance, None, State(ctm=fit), unit, use, 0, "annotations")

    def _content(self, ops: list[Any], resources: Any, state: State, unit: float,
                 use: PageUse, depth: int) -> None:
        stack: list[State] = []
        text_matrix: Matrix = IDENTITY
        for item in ops:
            self._check_time()
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                image = item.iimage
                family = _space(image.obj.get("/ColorSpace", image.obj.get("/CS")),
                                resources)[0]
                self._place(use, "inline image", int(image.width), int(image.height),
                            state.ctm, unit, family == "rgb")
                continue
            operands, operator = item.operands, str(item.operator)
            if operator == "q":
                stack.append(replace(state))
            elif operator == "Q":
                state = stack.pop() if stack else state
            elif operator == "cm" and len(operands) == 6:
                state.ctm = multiply(_matrix(operands), state.ctm)
            elif operator == "w" and operands:
                state.line_width = abs(float(operands[0]))
            elif operator in ("g", "G", "k", "K", "rg", "RG") and operands:
                family = {"g": "gray", "k": "cmyk", "r": "rgb"}[operator[0].lower()]
                self._set(state, operator.islower(), Paint(family, (), _numbers(operands)))
                if family == "rgb":
                    use.rgb.add("colour operators")
            elif operator in ("cs", "CS") and operands:
                self._alternate(operands[0], resources, use)
                found = _space(operands[0], resources)
                if found[0] == "rgb":
                    use.rgb.add("colour spaces")
                use.spots |= set(_initial(*found).spots)
                self._set(state, operator == "cs", _initial(*found))
            elif operator in ("sc", "scn", "SC", "SCN") and operands:
                fill = operator.islower()
                current = state.fill if fill else state.stroke
                if isinstance(operands[-1], pikepdf.Name):  # a pattern
                    painted = Paint("pattern", (str(operands[-1]),), ())
                else:
                    painted = replace(current, values=_numbers(operands))
                self._set(state, fill, painted)
            elif operator in ("f", "F", "f*", "B", "B*", "b", "b*", "S", "s"):
                self._paint_path(operator, state, resources, unit, use, depth)
            elif operator in ("BT",):
                text_matrix = IDENTITY
            elif operator in ("Tm",) and len(operands) == 6:
                text_matrix = _matrix(operands)
            elif operator == "Tr" and operands:
                state.render_mode = int(operands[0])
            elif operator in ("Tj", "TJ", "'", '"'):
                self._paint_text(state, text_matrix, resources, unit, use, depth)
            elif operator == "Do" and operands:
                self._xobject(str(operands[0]), resources, state, unit, use, depth)
            elif operator == "Tf" and len(operands) >= 2:
                state.font_size = abs(float(operands[1]))
                self._font(str(operands[0]), resources, state, unit, use, depth)
            elif operator == "gs" and operands:
                self._graphics_state(str(operands[0]), resources, state, unit, use, depth)
            elif operator == "sh" and operands:
                shading = _named(resources, "/Shading", str(operands[0]))
                if shading is not None:
                    self._shading(shading, resources, use)

    @staticmethod
    def _set(state: State, fill: bool, paint: Paint) -> None:
        if fill:
            state.fill = paint
        else:
            state.stroke = paint

    def _paint(self, what: str, paint: Paint, overprint: bool, state: State,
               resources: Any, unit: float, use: PageUse, depth: int) -> None:
        """An object painted with `paint`: white set to overprint, overprint, the
        registration colour, spots, and what a pattern draws."""
        if paint.family == "pattern":
            self._pattern(paint.names[0] if paint.names else "", resources, state, unit, use,
                          depth)
            return
        use.painted = True
        if overprint:
            (use.white_overprint if paint.white else use.overprint).add(what)
        if paint.registration:
            use.registration.add(what)
        use.spots |= set(paint.spots)

    def _paint_path(self, operator: str, state: State, resources: Any, unit: float,
                    use: PageUse, depth: int) -> None:
        fills = operator in ("f", "F", "f*", "B", "B*", "b", "b*")
        strokes = operator in ("S", "s", "B", "B*", "b", "b*")
        if fills:
            self._paint("paths", state.fill, state.overprint_fill, state, resources, unit,
                        use, depth)
        if strokes:
            self._paint("lines", state.stroke, state.overprint_stroke, state, resources,
                        unit, use, depth)
            width = state.line_width * _scale(state.ctm) * unit
            if use.thinnest_line is None or width < use.thinnest_line:
                use.thinnest_line = width

    def _paint_text(self, state: State, text_matrix: Matrix, resources: Any, unit: float,
                    use: PageUse, depth: int) -> None:
        mode = state.render_mode % 8
        if mode in (3, 7):  # invisible, or a clip only
            return
        placed = multiply(text_matrix, state.ctm)
        size = state.font_size * min(math.hypot(placed[0], placed[1]),
                                     math.hypot(placed[2], placed[3])) * unit
        for paint, overprint, used in ((state.fill, state.overprint_fill, mode in (0, 2, 4, 6)),
                                       (state.stroke, state.overprint_stroke,
                                        mode in (1, 2, 5, 6))):
            if not used:
                continue
            self._paint("text", paint, overprint, state, resources, unit, use, depth)
            if paint.black and not overprint and (use.black_knockout is None
                                                  or size < use.black_knockout):
                use.black_knockout = size
            if paint.several_inks:
                inks = paint.inks()
                use.small_text[inks] = min(size, use.small_text.get(inks, size))

    def _pattern(self, name: str, resources: Any, state: State, unit: float, use: PageUse,
                 depth: int) -> None:
        pattern = self._resource(resources, "/Pattern", name, use)
        if pattern is None:
            return
        if int(pattern.get("/PatternType", 0)) == 2:
            shading = pattern.get("/Shading")
            if shading is not None:
                self._shading(shading, resources, use)
            return
        if self._once(pattern):
            # a tiling pattern's cell is in the page's default space, scaled by its matrix
            self._form(pattern, resources, State(ctm=_matrix(pattern.get("/Matrix",
                                                                         IDENTITY))),
                       unit, use, depth, "patterns")

    def _shading(self, shading: Any, resources: Any, use: PageUse) -> None:
        use.painted = True
        self._alternate(shading.get("/ColorSpace"), resources, use)
        family, names, _ = _space(shading.get("/ColorSpace"), resources)
        if family == "rgb":
            use.rgb.add("shadings")
        use.spots |= set(spots_of(names))
        if "All" in names:
            use.registration.add("shadings")

    def _alternate(self, space: Any, resources: Any, use: PageUse) -> None:
        """Note how a Separation colour space says its spot colour looks (its alternate
        space and tint transform): one name drawn two ways is ambiguous."""
        if isinstance(space, pikepdf.Name):
            space = _named(resources, "/ColorSpace", str(space))
        if not (isinstance(space, pikepdf.Array) and len(space) >= 4
                and space[0] == "/Separation"):
            return
        name = str(space[1])[1:]
        if name in NOT_SPOTS:
            return
        function = space[3]
        key = self._functions.get(function.objgen) if function.is_indirect else None
        if key is None:
            key = _function_key(function)
            if function.is_indirect:  # each tint transform is read once
                self._functions[function.objgen] = key
        self.alternates.setdefault(name, {}).setdefault(f"{space[2]!s}|{key}", set()).add(
            use.page)

    @staticmethod
    def _resource(resources: Any, kind: str, name: str, use: PageUse) -> Any:
        """A resource the content names, or None (noted as missing on the page)."""
        found = _named(resources, kind, name)
        if found is None:
            use.missing.append(f"{_KINDS[kind]} {name[1:]}")
        return found

    def _once(self, obj: Any) -> bool:
        """Whether `obj` is met for the first time on this page (a pattern painted a
        thousand times is walked once)."""
        key = obj.objgen if obj.is_indirect else (id(obj), 0)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _form(self, stream: Any, resources: Any, state: State, unit: float, use: PageUse,
              depth: int, where: str) -> None:
        """A content stream of its own (form, pattern cell, glyph, appearance, group)."""
        if depth >= MAX_FORM_DEPTH:
            raise WalkLimit(f"forms nest deeper than {MAX_FORM_DEPTH} levels")
        before = len(use.images)
        own = stream.get("/Resources", resources)
        self._content(pikepdf.parse_content_stream(stream), own, state, unit, use, depth + 1)
        if where != "forms":  # an image a person would not find on the page itself
            for image in use.images[before:]:
                if "(in " not in image.name:
                    image.name += f" (in {where})"

    def _xobject(self, name: str, resources: Any, state: State, unit: float, use: PageUse,
                 depth: int) -> None:
        xobject = self._resource(resources, "/XObject", name, use)
        if xobject is None:
            return
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            self._alternate(xobject.get("/ColorSpace"), resources, use)
            family, names, _ = _space(xobject.get("/ColorSpace"), resources)
            use.spots |= set(spots_of(names))
            if "/SMask" in xobject:
                use.transparency.add("soft-masked images")
            if xobject.get("/ImageMask", False):  # painted with the fill colour
                self._paint("image masks", state.fill, state.overprint_fill, state,
                            resources, unit, use, depth)
            self._place(use, name[1:], int(xobject.get("/Width", 0)),
                        int(xobject.get("/Height", 0)), state.ctm, unit, family == "rgb")
        elif subtype == "/Form":
            if "/Group" in xobject and xobject.Group.get("/S") == "/Transparency":
                use.transparency.add("transparency groups")
            inner = replace(state, ctm=multiply(_matrix(xobject.get("/Matrix", IDENTITY)),
                                                state.ctm))
            self._form(xobject, resources, inner, unit, use, depth, "forms")

    def _place(self, use: PageUse, name: str, width: int, height: int, ctm: Matrix,
               unit: float, rgb: bool) -> None:
        a, b, c, d = ctm[:4]
        placed_w = math.hypot(a, b) * unit / 72  # inches along the image's x axis
        placed_h = math.hypot(c, d) * unit / 72
        if placed_w <= 0 or placed_h <= 0 or width <= 0 or height <= 0:
            return
        use.painted = True
        ppi = min(width / placed_w, height / placed_h)
        corners = [(x * a + y * c + ctm[4], x * b + y * d + ctm[5])
                   for x in (0, 1) for y in (0, 1)]
        xs, ys = [p[0] * unit for p in corners], [p[1] * unit for p in corners]
        use.images.append(ImageUse(use.page, name, width, height, ppi, rgb,
                                   (min(xs), min(ys), max(xs), max(ys))))
        if rgb:
            use.rgb.add("images")

    def _font(self, name: str, resources: Any, state: State, unit: float, use: PageUse,
              depth: int) -> None:
        font = self._resource(resources, "/Font", name, use)
        if font is None:
            return
        base, embedded = font_embedded(font)
        use.fonts[base] = use.fonts.get(base, True) and embedded
        if "courier" in base.lower():
            use.courier.add(base.split("+")[-1])
        procs = font.get("/CharProcs") if font.get("/Subtype") == "/Type3" else None
        if isinstance(procs, pikepdf.Dictionary) and self._once(font):
            # a Type 3 glyph is a content stream: what it uses prints with the text
            glyph = multiply(_matrix(font.get("/FontMatrix", (0.001, 0, 0, 0.001, 0, 0))),
                             (state.font_size, 0.0, 0.0, state.font_size, 0.0, 0.0))
            inner = State(ctm=multiply(glyph, state.ctm), fill=state.fill,
                          stroke=state.stroke)
            for key in list(procs.keys())[:256]:
                proc = procs[key]
                if isinstance(proc, pikepdf.Stream):
                    self._form(proc, font.get("/Resources", resources), replace(inner),
                               unit, use, depth, "Type 3 glyphs")

    def _graphics_state(self, name: str, resources: Any, state: State, unit: float,
                        use: PageUse, depth: int) -> None:
        gs = _named(resources, "/ExtGState", name)
        if gs is None:
            return
        if "/OP" in gs:
            state.overprint_stroke = bool(gs.OP)
            state.overprint_fill = bool(gs.get("/op", gs.OP))
        elif "/op" in gs:
            state.overprint_fill = bool(gs.op)
        if "/LW" in gs:
            state.line_width = abs(float(gs.LW))
        mask = gs.get("/SMask", pikepdf.Name("/None"))
        if mask != pikepdf.Name("/None"):
            use.transparency.add("soft masks")
            group = mask.get("/G") if isinstance(mask, pikepdf.Dictionary) else None
            if isinstance(group, pikepdf.Stream) and self._once(group):
                inner = State(ctm=multiply(_matrix(group.get("/Matrix", IDENTITY)),
                                           state.ctm))
                self._form(group, resources, inner, unit, use, depth, "soft masks")
        for key in ("/CA", "/ca"):
            if key in gs and float(gs[key]) < 1:
                use.transparency.add("opacity")
        if gs.get("/BM", pikepdf.Name.Normal) not in (pikepdf.Name.Normal,
                                                      pikepdf.Name.Compatible):
            use.transparency.add("blend modes")
