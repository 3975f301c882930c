"""Faces on real photos and a real clip: found where people are (and nowhere else), the same person
embedded closer than different people, smiles told from straight faces, poor faces kept but
flagged, the dlib fallback, and one face per person in a video."""

from __future__ import annotations

import json
import threading
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

from camroll.analyze import faces as fa

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEEPFACE = DATA / "faces" / "deepface"
FR = DATA / "faces" / "face_recognition"
OBAMA = FR / "tests" / "test_images" / "obama.jpg"
BIDEN = FR / "tests" / "test_images" / "biden.jpg"
CLIP = FR / "examples" / "short_hamilton_clip.mp4"
LANDSCAPE = DATA / "camera-roll" / "pigallery2" / "demo" / "IMG_1252.jpg"  # Golden Gate Bridge


@cache
def preview(path: Path) -> Image.Image:
    """The image as the server analyses it: upright, at most 1440 px."""
    with Image.open(path) as im:
        image = ImageOps.exif_transpose(im).convert("RGB")
    image.thumbnail((1440, 1440))
    return image


@pytest.fixture(scope="module")
def faces_of():
    """Each image analysed once for the whole module."""
    return cache(lambda path: fa.analyze_faces(preview(path)))


def main_face(faces: list[fa.FaceResult]) -> fa.FaceResult:
    return max(faces, key=lambda f: f.box[2] * f.box[3])


def inside(point: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


@pytest.mark.parametrize(
    "path",
    [DEEPFACE / "img1.jpg", DEEPFACE / "img10.jpg", DEEPFACE / "img34.jpg", OBAMA, BIDEN],
    ids=lambda p: p.name,
)
def test_a_portrait_gives_one_usable_face_with_landmarks_in_its_box(faces_of, path):
    faces = faces_of(path)
    assert len(faces) == 1
    face = faces[0]
    assert face.usable and face.reject_reason is None
    assert face.detector == "retinaface" and face.score > 0.95
    assert len(face.landmarks) == 5
    assert all(inside(p, face.box) for p in face.landmarks)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert face.expression in fa.EXPRESSIONS
    assert set(face.expression_scores) == set(fa.EXPRESSIONS)
    assert sum(face.expression_scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_couple_gives_two_faces(faces_of):
    faces = faces_of(DEEPFACE / "couple.jpg")
    assert len(faces) == 2 and all(f.usable for f in faces)
    assert faces[0].box[0] < faces[1].box[0]  # left to right
    assert np.linalg.norm(faces[0].embedding - faces[1].embedding) > 0.6


def test_group_selfie_gives_many_faces(faces_of):
    faces = faces_of(DEEPFACE / "selfie-many-people.jpg")
    assert len(faces) >= 5
    assert sum(f.usable for f in faces) >= 5


def test_landscape_without_people_gives_no_face(faces_of):
    assert faces_of(LANDSCAPE) == []


def test_same_person_is_closer_than_different_people(faces_of):
    ids = json.loads((DEEPFACE / "identities.json").read_text())["identities"]
    people = {p: [DEEPFACE / n for n in ids[p][:2]] for p in ("person_00", "person_07")}
    people["obama"] = [OBAMA, FR / "tests" / "test_images" / "obama2.jpg"]
    people["biden"] = [BIDEN, FR / "examples" / "knn_examples" / "train" / "biden" / "biden2.jpg"]
    emb = {
        p: [main_face(faces_of(path)).embedding for path in paths] for p, paths in people.items()
    }
    same = [float(np.linalg.norm(a - b)) for a, b in emb.values()]
    names = list(emb)
    different = [
        float(np.linalg.norm(emb[p][0] - emb[q][0]))
        for i, p in enumerate(names)
        for q in names[i + 1 :]
    ]
    assert max(same) < 0.6 < min(different)


def test_embeddings_match_face_recognition_library(faces_of):
    """Same alignment and network as `face_recognition.face_encodings` (dlib's own pipeline)."""
    face_recognition = pytest.importorskip("face_recognition")
    for path in (OBAMA, DEEPFACE / "img1.jpg", DEEPFACE / "couple.jpg"):
        theirs = face_recognition.face_encodings(np.asarray(preview(path)))
        assert theirs
        for face in faces_of(path):
            assert min(np.linalg.norm(face.embedding - t) for t in theirs) < 0.12


def test_smiling_face_scores_a_higher_smile_than_straight_faces(faces_of):
    # img1: broad open smile; img10 and img5: the same woman with a closed, straight mouth.
    smiling = faces_of(DEEPFACE / "img1.jpg")[0]
    straight = [faces_of(DEEPFACE / n)[0] for n in ("img10.jpg", "img5.jpg", "img34.jpg")]
    assert smiling.expression == "happy" and smiling.smile > 0.8
    assert all(f.smile < 0.3 for f in straight)
    assert faces_of(DEEPFACE / "img34.jpg")[0].expression == "neutral"
    assert faces_of(OBAMA)[0].smile > faces_of(BIDEN)[0].smile + 0.5


def test_tiny_face_is_kept_but_rejected_as_too_small():
    image = preview(OBAMA)
    tiny = image.resize((120, round(image.height * 120 / image.width)), Image.Resampling.LANCZOS)
    faces = fa.analyze_faces(tiny)
    assert len(faces) == 1
    assert faces[0].box[2] < fa.MIN_FACE_PX
    assert not faces[0].usable and faces[0].reject_reason == "too_small"


def test_blurred_face_is_kept_but_rejected_as_blurry(faces_of):
    sharp = faces_of(OBAMA)[0]
    faces = fa.analyze_faces(preview(OBAMA).filter(ImageFilter.GaussianBlur(4)))
    assert len(faces) == 1
    assert not faces[0].usable and faces[0].reject_reason == "blurry"
    assert faces[0].sharpness < fa.MIN_SHARPNESS < sharp.sharpness


def test_dlib_fallback_finds_obama(faces_of):
    faces = fa.analyze_faces(preview(OBAMA), detector="dlib-hog")
    assert len(faces) == 1
    face, primary = faces[0], faces_of(OBAMA)[0]
    assert face.detector == "dlib-hog" and face.usable
    assert all(inside(p, face.box) for p in face.landmarks)
    # The same five points as retinaface's, within a few pixels on a 230 px face.
    assert np.abs(np.array(face.landmarks) - np.array(primary.landmarks)).max() < 15
    assert np.linalg.norm(face.embedding - primary.embedding) < 0.15


def test_auto_detector_falls_back_when_retinaface_breaks(monkeypatch, faces_of):
    def broken(self, inputs):
        raise RuntimeError("onnxruntime session failed")

    monkeypatch.setattr(fa.RetinaFaceDetector, "_predict", broken)
    faces = fa.analyze_faces(preview(OBAMA))
    assert [f.detector for f in faces] == ["dlib-hog"]
    with pytest.raises(RuntimeError):
        fa.analyze_faces(preview(OBAMA), detector="retinaface")


def test_large_image_boxes_are_in_its_own_pixels(faces_of):
    small = preview(DEEPFACE / "couple.jpg")
    big = small.resize((small.width * 2, small.height * 2), Image.Resampling.BICUBIC)
    faces = fa.analyze_faces(big)
    assert len(faces) == 2
    for f, g in zip(faces, faces_of(DEEPFACE / "couple.jpg"), strict=True):
        assert np.allclose(f.box, np.array(g.box) * 2, atol=0.08 * g.box[2] * 2)
        assert np.linalg.norm(f.embedding - g.embedding) < 0.15


def test_concurrent_calls_give_the_same_results(faces_of):
    paths = [DEEPFACE / "couple.jpg", OBAMA, DEEPFACE / "img1.jpg", BIDEN]
    expected = {p: faces_of(p) for p in paths}
    got: dict[Path, list[fa.FaceResult]] = {}

    def work(p: Path) -> None:
        got[p] = fa.analyze_faces(preview(p))

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in paths:
        assert [f.box for f in got[p]] == [f.box for f in expected[p]]
        for f, g in zip(got[p], expected[p], strict=True):
            assert np.allclose(f.embedding, g.embedding, atol=1e-5)
            assert f.smile == pytest.approx(g.smile, abs=1e-5)


def test_to_dict_is_json_without_the_embedding(faces_of):
    d = faces_of(DEEPFACE / "couple.jpg")[0].to_dict()
    assert "embedding" not in d
    assert json.loads(json.dumps(d))["box"] == d["box"]
    assert set(d) == {
        "box",
        "landmarks",
        "score",
        "detector",
        "usable",
        "reject_reason",
        "sharpness",
        "expression",
        "expression_scores",
        "smile",
    }


def test_face_crop_is_a_square_cover_inside_the_photo(faces_of):
    image = preview(FR / "tests" / "test_images" / "obama_partial_face.jpg")
    face = fa.analyze_faces(image)[0]
    crop = fa.face_crop(image, face.box)
    assert crop.size == (160, 160) and crop.mode == "RGB"
    # The face touches the left edge: the crop shifts inward instead of showing black padding.
    assert np.asarray(crop)[:, :4].mean() > 20
    assert fa.face_crop(image, face.box, size=64).size == (64, 64)


def test_models_are_named_for_provenance():
    assert set(fa.FACE_MODELS) >= {"detector", "fallback_detector", "embedding", "expression"}
    for name, version in fa.FACE_MODELS.values():
        assert name and version and version != "unknown"


def test_video_gives_each_person_once():
    from camroll.media.validate import decode_video_frame, video_duration

    frames = 8
    found = fa.analyze_video_faces(CLIP, max_frames=frames)
    assert found
    duration = video_duration(CLIP)
    assert all(0 <= v.at_seconds <= duration for v in found)
    # The same frames one by one: every sighting, before collapsing.
    sightings = 0
    for i in range(frames):
        sightings += len(fa.analyze_faces(decode_video_frame(CLIP, duration * (i + 0.5) / frames)))
    assert len(found) < sightings
    # The singer fills the second half of the clip: one entry for him, not four.
    usable = [v for v in found if v.face.usable and v.face.box[2] >= 80]
    assert len(usable) == 1
