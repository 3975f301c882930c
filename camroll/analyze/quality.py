"""Photo quality: sharpness and exposure, used to pick the best shot of a burst and to keep blurred
or badly exposed photos out of collages and recaps.

Both measures are classic and cheap: the variance of the Laplacian (focus) on a fixed-size
grayscale copy, so the number does not depend on the upload's resolution, and the luminance
histogram (mean and clipping). Neither is a learned aesthetic score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

__all__ = ["QUALITY_MODEL", "Quality", "assess"]

QUALITY_MODEL: tuple[str, str] = ("laplacian-histogram", "1")

SIDE = 1024  # every image is measured at this long side (see _gray)
# Laplacian variance (0-255 scale at SIDE px) where sharpness reaches 0.5. On the shared roll
# (~350 images) the median is ~170 and the 95th percentile ~1100; a Gaussian blur of 2 px at
# this size brings nearly all of them under 40.
HALF_SHARP = 120.0


@dataclass(frozen=True)
class Quality:
    sharpness: float  # 0 (blurred) .. 1 (crisp)
    exposure: float  # 0 (black, white or heavily clipped) .. 1 (well exposed)
    score: float  # the two combined, 0..1

    def to_dict(self) -> dict[str, float]:
        return {
            "sharpness": round(self.sharpness, 4),
            "exposure": round(self.exposure, 4),
            "score": round(self.score, 4),
        }


def _gray(image: Image.Image) -> np.ndarray:
    """Luma at SIDE px on the long side. Larger images are reduced, so a 12 MP original and its
    1440 px preview measure alike; smaller ones are enlarged, so a 240p copy measures as soft as
    it looks next to the full-size photo."""
    gray = image.convert("L")
    w, h = gray.size
    scale = SIDE / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(gray.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))


def _sharpness(gray: np.ndarray) -> float:
    var = float(cv2.Laplacian(gray, cv2.CV_32F).var())  # the classic 4-neighbour kernel
    # A logistic on log-variance: variances span four orders of magnitude between smooth and
    # textured scenes, so a linear scale would saturate at once.
    x = math.log1p(var) - math.log1p(HALF_SHARP)
    return float(1.0 / (1.0 + math.exp(-1.2 * x)))


def _exposure(gray: np.ndarray) -> float:
    y = gray.astype(np.float32) / 255.0
    mean = float(y.mean())
    dark = float((y <= 0.02).mean())
    bright = float((y >= 0.98).mean())
    # Mean luminance between 0.25 and 0.65 is fine; outside, the score falls to 0 at 0 and 1.
    if mean < 0.25:
        level = mean / 0.25
    elif mean > 0.65:
        level = (1.0 - mean) / 0.35
    else:
        level = 1.0
    # A few percent of pure black or white is normal (shadows, speculars); more is lost detail.
    clipped = max(0.0, dark - 0.05) + max(0.0, bright - 0.05)
    return float(np.clip(level - clipped, 0.0, 1.0))


def assess(image: Image.Image) -> Quality:
    """Sharpness, exposure and a combined score, each 0..1 (a few ms on a 1440 px preview)."""
    gray = _gray(image)
    sharp, expo = _sharpness(gray), _exposure(gray)
    # Blur ruins a photo more surely than exposure, which a viewer can often forgive.
    return Quality(sharp, expo, float(0.6 * sharp + 0.4 * expo))
