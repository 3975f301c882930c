"""Photo quality and near-duplicates on real photos: a blurred or darkened copy scores lower,
re-encoded copies of one photo group together with the best copy named, a real burst groups as
a burst, and unrelated photos stay apart."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from camroll.analyze.quality import assess
from camroll.analyze.similar import SimilarItem, group_near_duplicates, hamming, phash

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pillow_heif.register_heif_opener()

OBAMA = [
    f"faces/face_recognition/examples/obama-{r}.jpg" for r in ("240p", "480p", "720p", "1080p")
]
# The same photo stored twice with different metadata (pigallery2's own duplicate fixtures).
BIG_BEN = [
    "camera-roll/pigallery2/demo/dupl/big_ben_only_time.jpg",
    "camera-roll/pigallery2/demo/timestamps/big_ben.jpg",
]
OPERA = [
    "camera-roll/pigallery2/demo/dupl/sydney_opera_house.jpg",
    "camera-roll/pigallery2/demo/timestamps/sydney_opera_house.jpg",
]
UNRELATED = [
    "camera-roll/pillow-heif/heif_other/cat.hif",
    "camera-roll/pillow-heif/heif_other/pug.heic",
    "camera-roll/pigallery2/demo/IMG_6368.jpg",
    "camera-roll/pigallery2/demo/IMG_6296.jpg",
    "camera-roll/pigallery2/demo/IMG_9516.jpg",
    "camera-roll/lychee/Samples/classic-car.heic",
    "camera-roll/exif-samples/jpg/gps/DSCN0027.jpg",
    "camera-roll/exif-samples/jpg/exif-org/sanyo-vpcsx550.jpg",
    "faces/deepface/img1.jpg",
    "faces/face_recognition/examples/biden.jpg",
]
BURST = "camera-roll/pillow-heif/heif_other/nokia/bird_burst.heic"  # 4 frames over 3 s


def load(rel: str) -> Image.Image:
    im = Image.open(DATA / rel)
    im.draft("RGB", (1440, 1440))
    im = ImageOps.exif_transpose(im)
    im.thumbnail((1440, 1440))
    return im.convert("RGB")


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return {rel: load(rel) for rel in OBAMA + BIG_BEN + OPERA + UNRELATED}


@pytest.fixture(scope="module")
def burst_frames() -> list[Image.Image]:
    with Image.open(DATA / BURST) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(im.convert("RGB"))
    return frames


# --- quality -----------------------------------------------------------------------------------

SHARP_PHOTOS = [
    "camera-roll/pigallery2/demo/IMG_6368.jpg",
    "camera-roll/lychee/Samples/classic-car.heic",
    "camera-roll/exif-samples/jpg/gps/DSCN0027.jpg",
    "camera-roll/pillow-heif/heif_other/cat.hif",
]


@pytest.mark.parametrize("rel", SHARP_PHOTOS)
def test_blurred_copy_is_less_sharp(photos: dict, rel: str) -> None:
    original = photos[rel]
    blurred = original.filter(ImageFilter.GaussianBlur(max(original.size) / 300))
    q, qb = assess(original), assess(blurred)
    assert qb.sharpness < q.sharpness - 0.3, (q, qb)
    assert qb.score < q.score
    assert qb.exposure == pytest.approx(q.exposure, abs=0.1)  # blur does not change exposure


@pytest.mark.parametrize("rel", SHARP_PHOTOS)
def test_darkened_or_blown_out_copy_is_worse_exposed(photos: dict, rel: str) -> None:
    original = photos[rel]
    q = assess(original)
    assert q.exposure >= 0.8, q  # these are well exposed to begin with
    dark = assess(ImageEnhance.Brightness(original).enhance(0.25))
    bright = assess(ImageEnhance.Brightness(original).enhance(2.5))
    assert dark.exposure < q.exposure - 0.3, (q, dark)
    assert bright.exposure < q.exposure - 0.3, (q, bright)


def test_sharpness_does_not_depend_on_the_preview_size(photos: dict) -> None:
    im = photos["camera-roll/pigallery2/demo/IMG_6368.jpg"]
    small = im.copy()
    small.thumbnail((1080, 1080))
    assert assess(small).sharpness == pytest.approx(assess(im).sharpness, abs=0.05)


def test_low_resolution_copy_scores_lower(photos: dict) -> None:
    scores = {rel: assess(photos[rel]).score for rel in OBAMA}
    assert min(scores, key=scores.__getitem__) == OBAMA[0]  # the 240p copy


# --- near-duplicates and bursts ----------------------------------------------------------------


def test_phash_is_hex_and_hamming_counts_bits(photos: dict) -> None:
    h = phash(photos[UNRELATED[0]])
    assert len(h) == 16 and int(h, 16) >= 0
    assert hamming(h, h) == 0
    other = phash(photos[UNRELATED[1]])
    assert hamming(h, other) == hamming(other, h) > 10


def test_reencoded_copies_group_with_the_best_copy_named(photos: dict) -> None:
    items = [
        SimilarItem(rel, phash(im), None, assess(im).score)
        for rel, im in photos.items()  # OBAMA, BIG_BEN, OPERA and UNRELATED, shuffled together
    ]
    groups = group_near_duplicates(items)
    by_members = {frozenset(g.members): g for g in groups}
    assert set(by_members) == {frozenset(OBAMA), frozenset(BIG_BEN), frozenset(OPERA)}
    obama = by_members[frozenset(OBAMA)]
    quality = {it.asset_id: it.quality for it in items}
    assert obama.best == max(OBAMA, key=quality.__getitem__)
    assert obama.best != OBAMA[0]  # never the 240p copy
    assert all(g.kind == "duplicate" for g in groups)
    grouped = {m for g in groups for m in g.members}
    assert not grouped & set(UNRELATED)


def test_a_real_burst_groups_as_a_burst(burst_frames: list[Image.Image]) -> None:
    start = datetime(2018, 3, 9, 14, 16, 50)  # CreateDate; the sequence lasts 3 s
    items = [
        SimilarItem(f"frame{i}", phash(f), start + timedelta(seconds=i), assess(f).score)
        for i, f in enumerate(burst_frames)
    ]
    other = SimilarItem("pug", phash(load(UNRELATED[1])), start + timedelta(seconds=2), 0.9)
    groups = group_near_duplicates([*items, other])
    assert len(groups) == 1
    (g,) = groups
    assert g.kind == "burst"
    assert sorted(g.members) == [it.asset_id for it in items]
    assert g.best == max(items, key=lambda it: it.quality).asset_id


def test_reframed_shot_is_a_burst_only_when_seconds_apart(burst_frames: list[Image.Image]) -> None:
    # A 5 degree turn of the camera: too different for a duplicate, close enough for a burst.
    a, b = phash(burst_frames[0]), phash(burst_frames[0].rotate(5))
    assert 10 < hamming(a, b) <= 18
    t = datetime(2024, 1, 1, 12, 0, 0)
    near = group_near_duplicates(
        [SimilarItem("a", a, t, 0.5), SimilarItem("b", b, t + timedelta(seconds=2), 0.6)]
    )
    assert [(g.kind, g.best) for g in near] == [("burst", "b")]
    far = [SimilarItem("a", a, t, 0.5), SimilarItem("b", b, t + timedelta(hours=3), 0.6)]
    assert group_near_duplicates(far) == []
    assert (
        group_near_duplicates([SimilarItem("a", a, None, 0.5), SimilarItem("b", b, None, 0.6)])
        == []
    )
