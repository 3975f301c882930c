"""An ArcFace ONNX export placed in the models directory (for example insightface's
`w600k_r50.onnx`): face embeddings from faces aligned to ArcFace's 112x112 five-point template.

Alignment follows insightface (`face_align.norm_crop`): a similarity transform (rotation,
uniform scale, translation) fitted to the eyes, nose tip and mouth corners.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from camroll.analyze.base import InferenceModel
from camroll.analyze.registry import (
    ARCFACE_FILE,
    ModelInfo,
    ModelLoadError,
    check_dim,
    graph_name,
    l2_normalise,
    onnx_session,
)

# insightface's `arcface_dst`: where the eye on the image's left, the other eye, the nose tip,
# and the left and right mouth corners land in the 112x112 crop. The order is retinaface's.
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
SIZE = 112
BATCH = 32


def alignment_matrix(landmarks5: Sequence[tuple[float, float]]) -> np.ndarray:
    """The 2x3 similarity transform taking the five landmarks onto the template."""
    src = np.asarray(landmarks5, dtype=np.float32)
    if src.shape != (5, 2) or not np.isfinite(src).all():
        raise ValueError("landmarks5 must be five finite (x, y) points")
    # A reprojection threshold no landmark can exceed makes every point an inlier, so OpenCV's
    # final refinement is the least-squares fit over all five, as insightface's (Umeyama) is.
    # Its defaults (RANSAC at 3 px, or LMEDS) drop real landmarks on large faces.
    matrix, _ = cv2.estimateAffinePartial2D(
        src, ARCFACE_TEMPLATE, method=cv2.RANSAC, ransacReprojThreshold=1e9
    )
    if matrix is None:
        raise ValueError("landmarks5 are degenerate (no similarity transform fits them)")
    return matrix


def align_112(image: Image.Image, landmarks5: Sequence[tuple[float, float]]) -> np.ndarray:
    """The face warped onto ArcFace's template: uint8 RGB [112, 112, 3].

    `landmarks5` are in `image` pixels, in retinaface's order: eye on the image's left, other
    eye, nose tip, mouth corner on the left, mouth corner on the right."""
    matrix = alignment_matrix(landmarks5)
    rgb = np.asarray(image.convert("RGB"))
    return cv2.warpAffine(rgb, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderValue=0)


class ArcFaceModel(InferenceModel[list[np.ndarray], np.ndarray]):
    """One ArcFace folder. `name` and `version` come from its manifest (provenance)."""

    name = "arcface"
    version = "unset"

    def __init__(self, info: ModelInfo) -> None:
        super().__init__()
        if info.manifest.kind != "arcface":
            raise ModelLoadError(f"{info.path} holds a {info.manifest.kind} model, not ArcFace")
        self.info = info
        self.manifest = info.manifest
        # Per instance: each placed model is its own provenance.
        self.name = info.manifest.name  # type: ignore[misc]
        self.version = info.manifest.version  # type: ignore[misc]
        self._session: ort.InferenceSession | None = None

    @property
    def embedding_dim(self) -> int:
        return self.manifest.embedding_dim

    def _load(self) -> None:
        m = self.manifest
        sess = self._session = onnx_session(self.info.path / ARCFACE_FILE)
        inputs = {i.name: i for i in sess.get_inputs()}
        self._in = graph_name(list(inputs), m.input_name, "input_name")
        self._out = graph_name([o.name for o in sess.get_outputs()], m.output_name, "output_name")
        batch_dim = inputs[self._in].shape[0]
        self._batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else BATCH
        try:
            out = self._embed([np.full((SIZE, SIZE, 3), 128, np.uint8)])
        except Exception as e:
            raise ModelLoadError(f"{ARCFACE_FILE} fails on a probe input: {e}") from None
        check_dim(ARCFACE_FILE, out, m.embedding_dim)

    def embed(self, aligned_faces: list[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings, float32 [N, embedding_dim], of faces from `align_112`."""
        return self.predict(aligned_faces)

    def _predict(self, inputs: list[np.ndarray]) -> np.ndarray:
        return l2_normalise(self._embed(inputs))

    def _embed(self, faces: list[np.ndarray]) -> np.ndarray:
        assert self._session is not None
        m = self.manifest
        mean = np.asarray(m.mean, np.float32)
        std = np.asarray(m.std, np.float32)
        outs: list[np.ndarray] = []
        for start in range(0, len(faces), self._batch):
            chunk = []
            for face in faces[start : start + self._batch]:
                if face.shape != (SIZE, SIZE, 3):
                    raise ValueError(f"aligned faces are 112x112 RGB, got {face.shape}")
                arr = face.astype(np.float32) / 255.0
                if m.channels == "BGR":
                    arr = arr[..., ::-1]
                chunk.append(((arr - mean) / std).transpose(2, 0, 1))
            x = np.ascontiguousarray(np.stack(chunk))
            outs.append(np.asarray(self._session.run([self._out], {self._in: x})[0]))
        if not outs:
            return np.zeros((0, self.manifest.embedding_dim), np.float32)
        return np.concatenate(outs).astype(np.float32)
