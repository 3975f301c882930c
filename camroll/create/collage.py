"""Photo collages: 4 to 9 upright photos laid out as a grid, a mosaic or a hero with a strip, under
a title band, rendered to one JPEG (2048 px on the long side by default).

Cropping is face-aware: a tile edge never cuts a face. Each crop is the largest window of the
tile's aspect ratio inside the photo, so it spans the photo along one axis and only slides along
the other; the slide is chosen so that every face is either wholly inside or wholly outside, with
as much face area inside as possible. Photos are matched to tiles (Hungarian assignment) so that
a wide group photo lands in a wide tile. When no window of a tile's shape can hold a face whole,
the photo is shown whole in that tile over a blurred fill instead of being cut.

Planning (`plan_collage`) is pure geometry, so placement is testable without pixels.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy.optimize import linear_sum_assignment

__all__ = [
    "LAYOUTS",
    "CollagePhoto",
    "CollagePlan",
    "Tile",
    "load_font",
    "plan_collage",
    "render_collage",
]

Box = tuple[int, int, int, int]  # x, y, w, h in pixels

LAYOUTS = ("grid", "mosaic", "hero")
MIN_PHOTOS, MAX_PHOTOS = 4, 9
# Canvas proportions: 4:3 suits the phone photos that make up most rolls.
SHORT_RATIO = 3 / 4
TITLE_BAND = 0.085  # of the canvas height
GUTTER = 8  # px at 2048; scaled with size
BACKGROUND = (18, 18, 20)
# Faces are kept this fraction of their size away from a tile edge when the window allows it.
FACE_MARGIN = 0.15
# Assignment cost weights: a face left out of its tile costs far more than cropped-away scenery.
LOST_FACE_COST = 4.0
NO_FACE_INSIDE_COST = 1000.0
IMPORTANCE_COST = 1.0
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))


@dataclass(frozen=True)
class CollagePhoto:
    image: Image.Image  # upright RGB
    faces: list[Box]
    quality: float  # 0..1, higher is better; the best photos get the biggest tiles


@dataclass(frozen=True)
class Tile:
    photo_index: int
    cell: Box  # on the canvas
    crop: Box  # in the source photo's pixels
    # False when no window of the cell's shape holds a face whole: the crop is the whole photo,
    # fitted inside the cell over a blurred fill.
    fills: bool = True


@dataclass(frozen=True)
class CollagePlan:
    width: int
    height: int
    layout: str
    title_band: Box
    tiles: list[Tile]


@dataclass(frozen=True)
class _Fit:
    crop: Box
    fills: bool
    cost: float


def _check(photos: list[CollagePhoto]) -> None:
    if not MIN_PHOTOS <= len(photos) <= MAX_PHOTOS:
        raise ValueError(
            f"A collage takes {MIN_PHOTOS} to {MAX_PHOTOS} photos; {len(photos)} were given."
        )


# --- layouts: cells as fractions (x, y, w, h) of the photo area --------------------------------


def _rows(counts: list[int]) -> list[tuple[float, float, float, float]]:
    cells = []
    for r, n in enumerate(counts):
        cells += [(c / n, r / len(counts), 1 / n, 1 / len(counts)) for c in range(n)]
    return cells


def _grid(n: int, aspect: float) -> list[tuple[float, float, float, float]]:
    """Rows of nearly equal counts, choosing the row count whose cells are closest to square."""

    def squareness(rows: int) -> float:
        per_row = math.ceil(n / rows)
        return abs(math.log((aspect / per_row) / (1 / rows)))

    rows = min(range(1, n + 1), key=squareness)
    base, extra = divmod(n, rows)
    # Fuller rows go last so the eye meets the larger tiles first.
    return _rows([base + (1 if r >= rows - extra else 0) for r in range(rows)])


def _treemap(
    weights: list[float], x: float, y: float, w: float, h: float, aspect: float
) -> list[tuple[float, float, float, float]]:
    """Split the longer side in two with areas in proportion to the weights: mixed tile sizes,
    none thinner than the split allows. Cells come back in the order of `weights`."""
    if len(weights) == 1:
        return [(x, y, w, h)]
    total = sum(weights)
    # The split point that best halves the weight.
    acc, k = 0.0, 1
    best = math.inf
    for i in range(1, len(weights)):
        acc = sum(weights[:i])
        if abs(acc - total / 2) < best:
            best, k = abs(acc - total / 2), i
    share = sum(weights[:k]) / total
    if w * aspect >= h:  # wider than tall in pixels: split vertically
        first = _treemap(weights[:k], x, y, w * share, h, aspect)
        return first + _treemap(weights[k:], x + w * share, y, w * (1 - share), h, aspect)
    first = _treemap(weights[:k], x, y, w, h * share, aspect)
    return first + _treemap(weights[k:], x, y + h * share, w, h * (1 - share), aspect)


def _mosaic(n: int, aspect: float) -> list[tuple[float, float, float, float]]:
    # A fixed descending weight profile: one large tile, a few medium, the rest small.
    weights = [3.0, 2.0] + [1.4 if i < 2 else 1.0 for i in range(n - 2)]
    return _treemap(weights, 0.0, 0.0, 1.0, 1.0, aspect)


def _hero(n: int, aspect: float) -> list[tuple[float, float, float, float]]:
    strip = n - 1
    if aspect >= 1:  # landscape canvas: hero on the left, strip in columns on the right
        cols = 1 if strip <= 4 else 2
        hero_w = 0.62 if cols == 1 else 0.55
        cells = [(0.0, 0.0, hero_w, 1.0)]
        per = [math.ceil(strip / cols), strip // cols] if cols == 2 else [strip]
        for c, count in enumerate(per):
            cw = (1 - hero_w) / cols
            cells += [(hero_w + c * cw, r / count, cw, 1 / count) for r in range(count)]
        return cells
    rows = 1 if strip <= 4 else 2
    hero_h = 0.62 if rows == 1 else 0.55
    cells = [(0.0, 0.0, 1.0, hero_h)]
    per = [math.ceil(strip / rows), strip // rows] if rows == 2 else [strip]
    for r, count in enumerate(per):
        rh = (1 - hero_h) / rows
        cells += [(c / count, hero_h + r * rh, 1 / count, rh) for c in range(count)]
    return cells


_LAYOUT_CELLS = {"grid": _grid, "mosaic": _mosaic, "hero": _hero}


def _cells(layout: str, n: int, area: Box, gutter: int) -> list[Box]:
    ax, ay, aw, ah = area
    out = []
    for fx, fy, fw, fh in _LAYOUT_CELLS[layout](n, aw / ah):
        x0, y0 = round(ax + fx * aw), round(ay + fy * ah)
        x1, y1 = round(ax + (fx + fw) * aw), round(ay + (fy + fh) * ah)
        # Half a gutter on each inner side; the area itself already has an outer margin.
        out.append((x0 + gutter // 2, y0 + gutter // 2, x1 - x0 - gutter, y1 - y0 - gutter))
    return out


# --- face-aware crops ---------------------------------------------------------------------------


def _slide(
    faces: list[tuple[float, float, float]], extent: float, window: float
) -> tuple[float, float, int]:
    """Best start of a `window` sliding over [0, extent] given faces as (start, end, weight):
    returns (start, face weight inside, faces inside) or (-1, 0, 0) when every position cuts a
    face. Preference: most face weight inside, then faces keeping their margin, then the window
    centred on the faces it holds (or on the photo when it holds none)."""
    span = extent - window
    if span <= 0:
        return 0.0, sum(f[2] for f in faces), len(faces)
    candidates = {0.0, span, span / 2}
    for a, b, _ in faces:
        m = (b - a) * FACE_MARGIN
        candidates.update((a - m, b + m - window, a, b - window, b, a - window))
    if faces:
        # Centred on all faces, and on each face alone.
        lo, hi = min(f[0] for f in faces), max(f[1] for f in faces)
        candidates.add((lo + hi - window) / 2)
        candidates.update((a + b - window) / 2 for a, b, _ in faces)
    best: tuple[tuple[float, int, float], float, float, int] | None = None
    for raw in candidates:
        p = min(max(raw, 0.0), span)
        q = p + window
        weight, count, margins, centre, cut = 0.0, 0, 0, 0.0, False
        for a, b, wgt in faces:
            if a >= p - 1e-6 and b <= q + 1e-6:
                weight, count, centre = weight + wgt, count + 1, centre + (a + b) / 2 * wgt
                m = (b - a) * FACE_MARGIN
                margins += a - m >= p - 1e-6 and b + m <= q + 1e-6
            elif not (b <= p + 1e-6 or a >= q - 1e-6):
                cut = True
                break
        if cut:
            continue
        target = centre / weight if weight else extent / 2
        key = (round(weight, 6), margins, -abs(p + window / 2 - target))
        if best is None or key > best[0]:
            best = (key, p, weight, count)
    if best is None:
        return -1.0, 0.0, 0
    return best[1], best[2], best[3]


def _fit(photo: CollagePhoto, cell: Box) -> _Fit:
    """The crop of `photo` for `cell` and what it costs (lower is better)."""
    iw, ih = photo.image.size
    cw, ch = cell[2], cell[3]
    aspect = cw / ch
    total_weight = sum(w * h for _, _, w, h in photo.faces) or 1.0
    if iw / ih >= aspect:  # photo is wider than the cell: full height, slide along x
        win = ih * aspect
        faces = [(float(x), float(x + w), float(w * h)) for x, _, w, h in photo.faces]
        start, weight, count = _slide(faces, iw, win)
        crop = (round(start), 0, min(iw, round(win)), ih)
        kept = win * ih
    else:
        win = iw / aspect
        faces = [(float(y), float(y + h), float(w * h)) for _, y, w, h in photo.faces]
        start, weight, count = _slide(faces, ih, win)
        crop = (0, round(start), iw, min(ih, round(win)))
        kept = iw * win
    if start < 0 or (photo.faces and count == 0):
        # No window of this shape holds a face whole: show the photo whole, fitted.
        scale = min(cw / iw, ch / ih)
        empty = 1 - (iw * ih * scale * scale) / (cw * ch)
        return _Fit((0, 0, iw, ih), False, NO_FACE_INSIDE_COST / 10 + empty)
    # Rounding may push the window a pixel past a face edge: snap it back inside the photo and
    # away from the face it would touch, by re-checking in integer pixels.
    crop = _snap(crop, photo.faces, iw, ih)
    lost = 1 - weight / total_weight if photo.faces else 0.0
    return _Fit(crop, True, LOST_FACE_COST * lost + (1 - kept / (iw * ih)))


def _cuts(crop: Box, face: Box) -> bool:
    cx, cy, cw, ch = crop
    x, y, w, h = face
    inside = x >= cx and y >= cy and x + w <= cx + cw and y + h <= cy + ch
    outside = x + w <= cx or x >= cx + cw or y + h <= cy or y >= cy + ch
    return not (inside or outside)


def _snap(crop: Box, faces: list[Box], iw: int, ih: int) -> Box:
    x, y, w, h = crop
    x, y = min(max(0, x), iw - w), min(max(0, y), ih - h)
    for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        nx, ny = min(max(0, x + dx), iw - w), min(max(0, y + dy), ih - h)
        if not any(_cuts((nx, ny, w, h), f) for f in faces):
            return nx, ny, w, h
    return x, y, w, h


def _assign(
    photos: list[CollagePhoto], cells: list[Box]
) -> tuple[list[Tile], float, tuple[float, float]]:
    """Match photos to cells: face fit first, then the best photos in the biggest cells."""
    areas = [c[2] * c[3] for c in cells]
    biggest = max(areas)
    fits = [[_fit(p, c) for c in cells] for p in photos]
    cost = np.array(
        [
            [
                fits[i][j].cost - IMPORTANCE_COST * p.quality * areas[j] / biggest
                for j in range(len(cells))
            ]
            for i, p in enumerate(photos)
        ]
    )
    rows, cols = linear_sum_assignment(cost)
    tiles = [
        Tile(int(i), cells[j], fits[i][j].crop, fits[i][j].fills)
        for i, j in sorted(zip(rows, cols, strict=True), key=lambda rc: rc[1])
    ]
    unfilled = sum(not t.fills for t in tiles)
    crop_cost = float(sum(fits[i][j].cost for i, j in zip(rows, cols, strict=True)))
    return tiles, float(cost[rows, cols].sum()), (unfilled, crop_cost)


def plan_collage(photos: list[CollagePhoto], layout: str = "auto", size: int = 2048) -> CollagePlan:
    """Where each photo goes and how it is cropped. `layout` is one of LAYOUTS or "auto" (the
    layout whose crops keep the most faces and the most of each photo)."""
    _check(photos)
    if layout != "auto" and layout not in LAYOUTS:
        raise ValueError(f"Unknown collage layout {layout!r}; use one of {LAYOUTS} or 'auto'.")
    landscape = sum(p.image.width >= p.image.height for p in photos) * 2 >= len(photos)
    short = round(size * SHORT_RATIO)
    width, height = (size, short) if landscape else (short, size)
    gutter = max(2, round(GUTTER * size / 2048))
    band = round(height * TITLE_BAND)
    area = (gutter // 2, band + gutter // 2, width - gutter, height - band - gutter)
    choices = LAYOUTS if layout == "auto" else (layout,)
    best: tuple[tuple[float, float], CollagePlan] | None = None
    for name in choices:
        tiles, _, score = _assign(photos, _cells(name, len(photos), area, gutter))
        plan = CollagePlan(width, height, name, (0, 0, width, band), tiles)
        if best is None or score < best[0]:
            best = (score, plan)
    assert best is not None
    return best[1]


# --- rendering ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def load_font(size: int, bold: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu or Liberation Sans from the system when present, else Pillow's bundled font."""
    names = (
        ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf")
        if bold
        else ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")
    )
    for folder in FONT_DIRS:
        for name in names:
            if (folder / name).is_file():
                return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size=size)


def fit_text(
    draw: ImageDraw.ImageDraw, text: str, max_w: int, size: int, bold: bool = True
) -> tuple[ImageFont.FreeTypeFont | ImageFont.ImageFont, str]:
    """The largest font (down to a third of `size`) at which `text` fits, else an ellipsised
    text at that smallest size."""
    for s in range(size, max(8, size // 3) - 1, -2):
        font = load_font(s, bold)
        if draw.textlength(text, font=font) <= max_w:
            return font, text
    font = load_font(max(8, size // 3), bold)
    while text and draw.textlength(text + "…", font=font) > max_w:
        text = text[:-1]
    return font, text + "…"


def _tile_image(photo: CollagePhoto, tile: Tile) -> Image.Image:
    image = photo.image if photo.image.mode == "RGB" else photo.image.convert("RGB")
    x, y, w, h = tile.crop
    cw, ch = tile.cell[2], tile.cell[3]
    if tile.fills:
        # `box` resizes straight from the source region; reducing_gap makes big downsizes fast.
        return image.resize((cw, ch), Image.Resampling.LANCZOS, box=(x, y, x + w, y + h),
                            reducing_gap=3.0)  # fmt: skip
    scale = min(cw / w, ch / h)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    fg = image.resize((fw, fh), Image.Resampling.LANCZOS, reducing_gap=3.0)
    # The fill: the photo itself, tiny, blurred and stretched to cover the cell.
    bg = image.resize((max(1, cw // 16), max(1, ch // 16)), Image.Resampling.BILINEAR)
    bg = bg.filter(ImageFilter.GaussianBlur(2)).resize((cw, ch), Image.Resampling.BILINEAR)
    bg.paste(fg, ((cw - fw) // 2, (ch - fh) // 2))
    return bg


def render_collage(
    photos: list[CollagePhoto], title: str, layout: str = "auto", size: int = 2048
) -> bytes:
    """The collage as JPEG bytes, `size` px on the long side."""
    plan = plan_collage(photos, layout, size)
    canvas = Image.new("RGB", (plan.width, plan.height), BACKGROUND)
    for tile in plan.tiles:
        canvas.paste(_tile_image(photos[tile.photo_index], tile), tile.cell[:2])
    draw = ImageDraw.Draw(canvas)
    bx, by, bw, bh = plan.title_band
    pad = round(bh * 0.3)
    font, text = fit_text(draw, title, bw - 2 * pad, round(bh * 0.55))
    draw.text((bx + pad, by + bh / 2), text, font=font, fill=(245, 245, 245), anchor="lm")
    out = io.BytesIO()
    canvas.save(out, "JPEG", quality=88, optimize=True, progressive=True)
    return out.getvalue()
