"""Collages from real face photos: no tile edge ever cuts a face, in any layout, for 4 to 9
photos, and the rendered collage is a 2048 px JPEG that decodes."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from camroll.analyze.faces import analyze_faces
from camroll.analyze.quality import assess
from camroll.create.collage import LAYOUTS, CollagePhoto, plan_collage, render_collage

FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
DEEPFACE = FACES / "deepface"
EXAMPLES = FACES / "face_recognition" / "examples"
# The multi-face photos lead; single portraits of several shapes follow.
FILES = [
    DEEPFACE / "couple.jpg",
    DEEPFACE / "selfie-many-people.jpg",
    EXAMPLES / "two_people.jpg",
    EXAMPLES / "knn_examples" / "test" / "obama_and_biden.jpg",
    DEEPFACE / "img1.jpg",
    DEEPFACE / "img11.jpg",
    DEEPFACE / "img22.jpg",
    DEEPFACE / "img33.jpg",
    DEEPFACE / "img45.jpg",
    DEEPFACE / "img57.jpg",
    EXAMPLES / "obama-480p.jpg",
    EXAMPLES / "biden.jpg",
    EXAMPLES / "lin-manuel-miranda.png",
]


def _load(path: Path) -> Image.Image:
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    image.thumbnail((1600, 1600))  # the preview size the pipeline analyses
    return image


@pytest.fixture(scope="module")
def photos() -> list[CollagePhoto]:
    out = []
    for path in FILES:
        image = _load(path)
        faces = [f.box for f in analyze_faces(image)]
        out.append(CollagePhoto(image, faces, assess(image).score))
    return out


def _relation(crop: tuple[int, int, int, int], face: tuple[int, int, int, int]) -> str:
    cx, cy, cw, ch = crop
    x, y, w, h = face
    if x >= cx and y >= cy and x + w <= cx + cw and y + h <= cy + ch:
        return "inside"
    if x + w <= cx or x >= cx + cw or y + h <= cy or y >= cy + ch:
        return "outside"
    return "cut"


def test_the_data_has_group_photos(photos: list[CollagePhoto]) -> None:
    # Otherwise the no-cut property below would be trivial.
    assert len(photos[1].faces) >= 4  # selfie-many-people
    assert all(len(p.faces) >= 2 for p in photos[:4])
    assert all(p.faces for p in photos)


@pytest.mark.parametrize("layout", [*LAYOUTS, "auto"])
def test_no_tile_edge_cuts_a_face(photos: list[CollagePhoto], layout: str) -> None:
    group = photos[:4]
    singles = photos[4:]
    for n in range(4, 10):
        # Several selections per count, each with group photos among portraits.
        for shift in range(3):
            chosen = (group[shift:] + group[:shift])[: max(2, n - len(singles))]
            chosen += list(itertools.islice(itertools.cycle(singles), shift, shift + n))
            chosen = chosen[:n]
            plan = plan_collage(chosen, layout)
            assert max(plan.width, plan.height) == 2048
            assert sorted(t.photo_index for t in plan.tiles) == list(range(n))
            for tile in plan.tiles:
                photo = chosen[tile.photo_index]
                x, y, w, h = tile.crop
                iw, ih = photo.image.size
                assert x >= 0 and y >= 0 and x + w <= iw and y + h <= ih
                if tile.fills:  # the crop has the tile's shape (within rounding)
                    assert abs(w / h - tile.cell[2] / tile.cell[3]) < 0.02
                relations = [_relation(tile.crop, f) for f in photo.faces]
                assert "cut" not in relations, (layout, n, tile, photo.faces)
                assert "inside" in relations, (layout, n, tile, photo.faces)


def test_group_photo_keeps_its_faces(photos: list[CollagePhoto]) -> None:
    # The wide group selfie must not lose faces when wide-enough cells exist.
    chosen = [photos[1], *photos[4:9]]
    plan = plan_collage(chosen, "mosaic")
    tile = next(t for t in plan.tiles if t.photo_index == 0)
    inside = [_relation(tile.crop, f) == "inside" for f in chosen[0].faces]
    assert sum(inside) >= len(inside) - 1, (tile, chosen[0].faces)


def test_layouts_differ_in_tile_sizes(photos: list[CollagePhoto]) -> None:
    chosen = photos[:6]
    grid = plan_collage(chosen, "grid")
    mosaic = plan_collage(chosen, "mosaic")
    hero = plan_collage(chosen, "hero")
    areas = {name: sorted(t.cell[2] * t.cell[3] for t in p.tiles) for name, p in
             (("grid", grid), ("mosaic", mosaic), ("hero", hero))}  # fmt: skip
    assert areas["grid"][-1] / areas["grid"][0] < 1.1
    assert areas["mosaic"][-1] / areas["mosaic"][0] > 1.5
    assert areas["hero"][-1] / areas["hero"][-2] > 2
    # The hero cell goes to one of the sharper, better exposed photos.
    big = max(hero.tiles, key=lambda t: t.cell[2] * t.cell[3])
    qualities = sorted((p.quality for p in chosen), reverse=True)
    assert chosen[big.photo_index].quality >= qualities[2]


def test_cells_do_not_overlap_and_stay_on_canvas(photos: list[CollagePhoto]) -> None:
    for layout, n in itertools.product(LAYOUTS, range(4, 10)):
        plan = plan_collage(photos[:n], layout)
        band = plan.title_band
        cells = [t.cell for t in plan.tiles]
        for x, y, w, h in cells:
            assert x >= 0 and y >= band[3] and x + w <= plan.width and y + h <= plan.height
            assert w > 50 and h > 50
        for a, b in itertools.combinations(cells, 2):
            assert (
                a[0] + a[2] <= b[0]
                or b[0] + b[2] <= a[0]
                or a[1] + a[3] <= b[1]
                or (b[1] + b[3] <= a[1])
            )


def test_refuses_wrong_counts(photos: list[CollagePhoto]) -> None:
    for n in (0, 3, 10):
        with pytest.raises(ValueError, match="4 to 9 photos"):
            plan_collage((photos * 2)[:n])
    with pytest.raises(ValueError, match="layout"):
        plan_collage(photos[:4], "spiral")


def test_render_is_a_2048px_jpeg(photos: list[CollagePhoto]) -> None:
    data = render_collage(photos[:7], "Yosemite, June 2015 — with friends", "hero")
    assert data[:3] == b"\xff\xd8\xff"
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    image.load()
    assert max(image.size) == 2048
    plan = plan_collage(photos[:7], "hero")
    assert image.size == (plan.width, plan.height)
    # The title band holds light text on the dark band; the tiles hold the photos.
    band = image.crop(plan.title_band).convert("L")
    assert band.getextrema()[1] > 200
    x, y, w, h = plan.tiles[0].cell
    assert image.crop((x, y, x + w, y + h)).convert("L").getextrema()[1] > 100
