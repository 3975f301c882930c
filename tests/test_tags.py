"""Content tags on real photos from the shared roll: what is in the picture is tagged, and what
is not in it is not.

Images are loaded the way the server sees them (EXIF orientation applied, at most 1440 px) and
classified once per module in one batch.
"""

from __future__ import annotations

from pathlib import Path

import pillow_heif
import pytest
from PIL import Image, ImageOps

from camroll.analyze.tags import (
    TAGS_MODEL,
    VOCABULARY,
    TagHints,
    TagResult,
    infer_scenes,
    tag_image,
    tag_images,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ROLL = DATA / "camera-roll"
pillow_heif.register_heif_opener()

# name -> (path under shared/data, faces the caller would pass, metadata hints)
PHOTOS: dict[str, tuple[str, int, TagHints | None]] = {
    "cat": ("camera-roll/pillow-heif/heif_other/cat.hif", 0, None),
    "pug": ("camera-roll/pillow-heif/heif_other/pug.heic", 0, None),
    "pug2": ("camera-roll/pillow-heif/heif_other/empty_icc.heic", 0, None),
    "yosemite": ("camera-roll/pigallery2/demo/IMG_6368.jpg", 0, None),  # Nevada Fall
    "denali": ("camera-roll/immich-test-assets/formats/webp/denali.webp", 0, None),
    "classic_car": ("camera-roll/lychee/Samples/classic-car.heic", 0, None),
    "minivan": ("camera-roll/exif-samples/jpg/tests/35-empty.jpg", 0, None),
    "salad": ("camera-roll/exif-samples/jpg/exif-org/sanyo-vpcsx550.jpg", 0, None),
    "bird": ("camera-roll/pillow-heif/heif_other/nokia/bird_burst.heic", 0, None),
    "church": ("camera-roll/exif-samples/jpg/gps/DSCN0027.jpg", 0, None),
    "liner": ("camera-roll/exif-samples/jpg/mobile/HMD_Nokia_8.3_5G.jpg", 0, None),
    "pumpkin": ("camera-roll/exif-samples/jpg/exif-org/sony-powershota5.jpg", 1, None),
    "wedding": ("camera-roll/exif-samples/jpg/exif-org/canon-ixus.jpg", 3, None),
    "politicians": (
        "faces/face_recognition/examples/knn_examples/test/obama_and_biden.jpg",
        2,
        None,
    ),
    "sunset": ("camera-roll/lychee/Samples/fin de journée.jpg", 0, None),
    "opera_night": ("camera-roll/pigallery2/demo/timestamps/sydney_opera_house.jpg", 0, None),
    "clock_render": (
        "camera-roll/pigallery2/demo/4MinsAroundTheWorld/UTC-20240413-203430-Auckland.jpg",
        0,
        TagHints(has_camera_exif=False, width=1920, height=1080),
    ),
}


def load(rel: str) -> Image.Image:
    im = Image.open(DATA / rel)
    im.draft("RGB", (1440, 1440))
    im = ImageOps.exif_transpose(im)
    im.thumbnail((1440, 1440))
    return im.convert("RGB")


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    return {name: load(rel) for name, (rel, _, _) in PHOTOS.items()}


@pytest.fixture(scope="module")
def tags(images: dict[str, Image.Image]) -> dict[str, dict[str, TagResult]]:
    names = list(PHOTOS)
    results = tag_images(
        [images[n] for n in names],
        faces=[PHOTOS[n][1] for n in names],
        hints=[PHOTOS[n][2] for n in names],
    )
    return {n: {t.label: t for t in r} for n, r in zip(names, results, strict=True)}


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("cat", {"cat", "animal"}),
        ("pug", {"dog", "animal"}),
        ("pug2", {"dog"}),
        ("yosemite", {"mountain"}),
        ("denali", {"mountain"}),
        ("classic_car", {"car"}),
        ("minivan", {"car"}),
        ("salad", {"food"}),
        ("bird", {"bird", "animal"}),
        ("church", {"church", "building"}),
        ("liner", {"boat"}),
        ("pumpkin", {"halloween"}),
        ("wedding", {"wedding", "person"}),
        ("sunset", {"sunset"}),
        ("opera_night", {"night"}),
        ("clock_render", {"screenshot"}),
    ],
)
def test_known_content_is_tagged(tags: dict, photo: str, expected: set[str]) -> None:
    assert expected <= set(tags[photo]), (photo, tags[photo])


@pytest.mark.parametrize(
    ("photo", "absent"),
    [
        ("cat", {"dog", "person", "food"}),
        ("pug", {"cat", "car"}),
        ("yosemite", {"dog", "cat", "person", "car", "food", "night", "screenshot"}),
        ("denali", {"dog", "cat", "building", "sunset"}),
        ("classic_car", {"animal", "food", "boat"}),
        ("salad", {"dog", "cat", "car", "mountain"}),
        ("church", {"animal", "car", "night"}),
        ("sunset", {"animal", "person", "night"}),
        # Men in suits are ImageNet "grooms"; without a gown that is not a wedding.
        ("politicians", {"wedding", "party", "animal"}),
    ],
)
def test_absent_content_is_not_tagged(tags: dict, photo: str, absent: set[str]) -> None:
    assert not absent & set(tags[photo]), (photo, tags[photo])


def test_a_camera_photo_is_never_a_screenshot(images: dict[str, Image.Image]) -> None:
    # The same flat render with camera EXIF is a photo of something, not a screenshot.
    labels = {t.label for t in tag_image(images["clock_render"], hints=TagHints())}
    assert "screenshot" not in labels


def test_tags_are_sorted_explained_and_in_the_vocabulary(tags: dict) -> None:
    for found in tags.values():
        scores = [t.score for t in found.values()]
        assert all(0.2 <= s <= 1.0 for s in scores)
        for t in found.values():
            assert t.label in VOCABULARY
            assert t.sources, t  # every tag says where it came from
            assert t.to_dict()["label"] == t.label
    ordered = tag_image(load(PHOTOS["cat"][0]))
    assert [t.score for t in ordered] == sorted((t.score for t in ordered), reverse=True)
    assert "Egyptian cat" in {s for t in ordered if t.label == "cat" for s in t.sources}
    assert TAGS_MODEL[0] == "efficientnet-lite0-imagenet"


def test_one_image_matches_the_batch(images: dict[str, Image.Image], tags: dict) -> None:
    single = {t.label: t.score for t in tag_image(images["pug"])}
    assert single.keys() == tags["pug"].keys()
    for label, score in single.items():
        assert score == pytest.approx(tags["pug"][label].score, abs=1e-4)


def test_faces_make_people_and_scenes() -> None:
    cake = TagResult("cake", 0.4, ["trifle"])
    assert infer_scenes([cake], faces=0) == []  # a cake on its own is just a cake
    scenes = {t.label: t for t in infer_scenes([cake], faces=3, labels={"candle": 0.2})}
    assert {"birthday", "party"} <= scenes.keys()
    assert {"cake", "candle", "faces:3"} <= set(scenes["birthday"].sources)
    grad = infer_scenes([TagResult("graduation", 0.3, ["mortarboard"])], faces=2)
    assert [t.label for t in grad] == ["graduation"]


def test_vocabulary_covers_the_camroll_themes() -> None:
    themes = [
        "person",
        "baby",
        "dog",
        "cat",
        "bird",
        "horse",
        "animal",
        "food",
        "cake",
        "drink",
        "beach",
        "sea",
        "lake",
        "river",
        "mountain",
        "snow",
        "forest",
        "flowers",
        "garden",
        "city",
        "building",
        "church",
        "castle",
        "car",
        "boat",
        "airplane",
        "train",
        "bicycle",
        "sport",
        "party",
        "graduation",
        "christmas",
        "halloween",
        "wedding",
        "document",
        "screenshot",
        "night",
        "sunset",
    ]
    assert set(themes) <= set(VOCABULARY)


@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 2), (2000, 1), (1, 2000)])
def test_slivers_and_single_pixels_are_analysed_without_error(size: tuple[int, int]) -> None:
    """The roll holds 1-2 px test images; every analyser must answer, not raise (one such file
    once failed its whole analysis job)."""
    from camroll.analyze.faces import analyze_faces
    from camroll.analyze.quality import assess
    from camroll.analyze.similar import phash

    image = Image.new("RGB", size, (200, 120, 40))
    assert all(t.label not in {"night", "sunset"} for t in tag_image(image))
    assert analyze_faces(image) == []
    q = assess(image)
    assert 0 <= q.sharpness <= 1 and 0 <= q.exposure <= 1
    assert len(phash(image)) == 16
