"""The optional model registry: CLIP ONNX models placed in a models directory.

The models are tiny ONNX graphs the tests build (tests/onnx_models.py), shaped like real
exports, with weights chosen so a red photo really is nearest the word "red".
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camroll.config import get_settings
from camroll.inference.registry import available_models, get_clip, models_dir
from tests.onnx_models import VOCAB, make_clip, write_manifest


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "models"
    monkeypatch.setenv("CAMROLL_MODELS_DIR", str(directory))
    get_settings.cache_clear()  # settings are read once per process
    yield directory
    get_settings.cache_clear()


def test_nothing_placed_means_no_optional_models(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert models_dir() == models
    assert available_models() == []  # the directory does not even exist
    assert get_clip() is None
    models.mkdir()
    (models / "README.txt").write_text("put models here")
    assert available_models() == [] and get_clip() is None

    monkeypatch.delenv("CAMROLL_MODELS_DIR")
    monkeypatch.setenv("CAMROLL_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    assert models_dir() == tmp_path / "data" / "models"


def _solid(colour: tuple[int, int, int], size: tuple[int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.mark.parametrize("with_mask", [True, False], ids=["ids+mask", "ids-only"])
def test_clip_zero_shot_tags_name_the_colour(models: Path, with_mask: bool) -> None:
    make_clip(models / "tiny-clip", with_mask=with_mask, name="tiny-clip", version="2025.1")
    clip = get_clip()
    assert clip is not None
    assert (clip.name, clip.version) == ("tiny-clip", "2025.1")  # provenance

    # Wide photo: blue on both sides, red in the middle third. CLIP's centre crop sees only red;
    # a plain squash to a square would see mostly blue.
    banded = Image.new("RGB", (300, 100), (30, 40, 210))
    banded.paste((220, 20, 30), (100, 0, 200, 100))
    photos = [_solid((230, 25, 20), (640, 480)), _solid((20, 30, 200), (90, 160)), banded]
    emb = clip.encode_images(photos)
    assert emb.shape == (3, 8) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)

    labels = ["green", "red", "blue", "white", "black"]
    tags = clip.zero_shot_tags(emb, labels)
    assert [t[0][0] for t in tags] == ["red", "blue", "red"]
    for per_image in tags:
        assert sorted(label for label, _ in per_image) == sorted(labels)
        assert sum(p for _, p in per_image) == pytest.approx(1.0, abs=1e-5)
        assert per_image[0][1] > 0.99  # cosine 1 vs <= 1/3 at logit scale 100
    assert [len(t) for t in clip.zero_shot_tags(emb, labels, top_k=2)] == [2, 2, 2]


def test_clip_text_search_ranks_the_matching_photo_first(models: Path) -> None:
    make_clip(models / "tiny-clip", padded_tokenizer=True)
    clip = get_clip()
    assert clip is not None
    photos = clip.encode_images(
        [
            _solid((235, 240, 245), (64, 64)),
            _solid((10, 200, 30), (64, 64)),
            _solid((200, 0, 0), (64, 64)),
        ]
    )
    # Mixed case, filler words and unknown words: the tokenizer lowercases and maps to <unk>.
    queries = ["White", "a photo of the GREEN lawn", "red car", "black"]
    scores = clip.encode_texts(queries) @ photos.T
    assert scores[:3].argmax(axis=1).tolist() == [0, 1, 2]
    assert scores[3].argmin() == 0 and scores[3, 0] < -0.9  # black is the opposite of white

    # Padding is masked: 70-odd <pad> tokens would otherwise pull every text to "green".
    ids, mask = clip.tokenize(["a photo of red"])
    assert mask.sum() == 6 and ids[0, :6].tolist() == [
        VOCAB[w] for w in ["<start>", "a", "photo", "of", "red", "<end>"]
    ]
    # Over-long text is cut to the context but keeps its end token.
    ids, mask = clip.tokenize(["red " * 200])
    assert mask.all() and ids[0, -1] == VOCAB["<end>"]
    assert (clip.encode_texts(["red " * 200]) @ photos.T).argmax() == 2


def test_broken_model_folders_are_skipped_with_a_clear_warning(
    models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models.mkdir()
    (models / "a-not-json").mkdir()
    (models / "a-not-json" / "camroll-model.json").write_text("{kind: clip")
    make_clip(models / "b-string-dim", embedding_dim="8")
    make_clip(models / "c-no-textual")
    (models / "c-no-textual" / "textual.onnx").unlink()
    make_clip(models / "d-garbage-onnx")
    (models / "d-garbage-onnx" / "visual.onnx").write_bytes(b"\x08\x07not a protobuf" * 50)
    make_clip(models / "e-dim-mismatch", embedding_dim=512)
    make_clip(models / "f-typo", embeding_dim=8)
    (models / "g-arcface").mkdir()  # ArcFace is no longer a kind camroll loads
    write_manifest(models / "g-arcface", kind="arcface", name="r100", version="1")
    (models / "h-no-manifest").mkdir()
    make_clip(models / "z-good", name="good-clip")

    with caplog.at_level(logging.WARNING, logger="camroll.inference.registry"):
        clip = get_clip()
        assert clip is not None and clip.name == "good-clip"
        clip.encode_images([_solid((1, 2, 3), (10, 10))])

    problems = {
        "a-not-json": "camroll-model.json is not valid JSON",
        "b-string-dim": "embedding_dim: Input should be a valid integer",
        "c-no-textual": "missing file(s): textual.onnx",
        "d-garbage-onnx": "visual.onnx does not load in onnxruntime",
        "e-dim-mismatch": "visual.onnx gives output shape [1, 8], manifest says embedding_dim 512",
        "f-typo": "embeding_dim: Extra inputs are not permitted",
        "g-arcface": "kind: Input should be 'clip'",
        "h-no-manifest": "no camroll-model.json",
    }
    warnings = [r.getMessage() for r in caplog.records]
    for folder, reason in problems.items():
        hits = [w for w in warnings if f"/{folder} skipped" in w]
        assert len(hits) == 1, (folder, warnings)
        assert reason in hits[0], (reason, hits[0])
    assert len(warnings) == len(problems)

    # Known failures are remembered: asking again (once per photo, say) neither reloads nor
    # logs again, and the listing holds only what works.
    caplog.clear()
    assert get_clip() is clip
    assert [m.path.name for m in available_models()] == ["z-good"]
    assert caplog.records == []

    # Fixing a folder in place is picked up without a restart.
    manifest = json.loads((models / "e-dim-mismatch" / "camroll-model.json").read_text())
    write_manifest(models / "e-dim-mismatch", **{**manifest, "embedding_dim": 8})
    assert [m.path.name for m in available_models()] == ["e-dim-mismatch", "z-good"]
    fixed = get_clip()
    assert fixed is not None and fixed.info.path.name == "e-dim-mismatch"

    # Taking the models away brings back the defaults.
    for folder in ("e-dim-mismatch", "z-good"):
        shutil.rmtree(models / folder)
    assert get_clip() is None


def test_one_clip_instance_is_shared_by_threads(models: Path) -> None:
    make_clip(models / "tiny-clip")
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: get_clip(), range(8)))
    assert all(g is got[0] for g in got) and got[0] is not None
