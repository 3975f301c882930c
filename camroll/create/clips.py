"""The best few seconds of a video for a recap: PySceneDetect splits it into scenes, each scene
gets an interest score (motion, sharpness, sound, faces) with shaky and dark parts marked
down, and the window of the wanted length is the best scene's most active stretch.

Frames are sampled at ~6 fps and scored at 160 px wide, so a phone clip is scored in a
fraction of its own length.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

__all__ = ["Scene", "best_segment", "score_scenes"]

SAMPLE_FPS = 6.0
WIDTH = 160
DARK = 40  # mean luma below this is too dark to show


@dataclass(frozen=True)
class Scene:
    start_s: float
    end_s: float
    motion: float  # mean absolute change between samples (0-255 luma)
    sharpness: float  # variance of the Laplacian
    brightness: float
    shake: float  # global camera shift between samples, in pixels at WIDTH
    sound: float  # RMS of the clip's audio in the scene (0-1), 0 without audio
    faces: int
    score: float
    # (time, change since the previous sample) through the scene: where its action is.
    changes: tuple[tuple[float, float], ...] = ()


def _scenes(path: Path) -> list[tuple[float, float]]:
    from scenedetect import ContentDetector, detect
    from scenedetect.backends.opencv import VideoOpenFailure

    try:
        found = detect(str(path), ContentDetector(threshold=27.0, min_scene_len=10))
    except VideoOpenFailure:
        return []  # OpenCV cannot read it (PyAV did): the whole clip is one scene
    return [(a.seconds, b.seconds) for a, b in found]


def _samples(path: Path) -> tuple[list[float], list[np.ndarray], float]:
    """Luma frames at ~SAMPLE_FPS, WIDTH wide, with their times; and the clip's length."""
    times: list[float] = []
    frames: list[np.ndarray] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        last = -1.0
        length = 0.0
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            length = max(length, t)
            if t - last < 1 / SAMPLE_FPS - 1e-3:
                continue
            last = t
            h = max(2, round(frame.height * WIDTH / frame.width))
            frames.append(frame.to_ndarray(format="gray", width=WIDTH, height=h))
            times.append(t)
    return times, frames, length


def _loudness(path: Path, spans: list[tuple[float, float]]) -> list[float]:
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.audio:
            return [0.0] * len(spans)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=8000)
        parts, first = [], None
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                first = float(out.time or 0.0) if first is None else first
                parts.append(out.to_ndarray().reshape(-1))
    if not parts:
        return [0.0] * len(spans)
    pcm = np.concatenate(parts)
    out = []
    for a, b in spans:
        chunk = pcm[max(0, round((a - (first or 0)) * 8000)) : round((b - (first or 0)) * 8000)]
        out.append(float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0)
    return out


def _faces(path: Path, at: float) -> int:
    """Faces in the clip's colour frame at `at` seconds (camroll's own face detector)."""
    from PIL import Image

    from camroll.analyze.faces import analyze_faces

    with av.open(str(path), metadata_errors="ignore") as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at - 1e-3:
                return len(analyze_faces(Image.fromarray(frame.to_ndarray(format="rgb24"))))
    return 0


def score_scenes(path: Path, faces: bool = True) -> list[Scene]:
    """Every scene of the video with its measures and interest score, in time order.
    `faces=False` (the owner has not agreed to face detection) leaves faces out of the score."""
    times, frames, length = _samples(path)
    if not frames:
        raise ValueError(f"no video frames in {path.name}")
    spans = _scenes(path) or [(0.0, length)]
    sounds = _loudness(path, spans)
    scenes = []
    for (a, b), sound in zip(spans, sounds, strict=True):
        idx = [i for i, t in enumerate(times) if a - 1e-3 <= t < b] or [
            min(range(len(times)), key=lambda i: abs(times[i] - a))
        ]
        picks = [frames[i] for i in idx]
        diffs = [float(cv2.absdiff(p, q).mean()) for p, q in itertools.pairwise(picks)]
        shifts = [
            float(np.hypot(*cv2.phaseCorrelate(p.astype(np.float32), q.astype(np.float32))[0]))
            for p, q in itertools.pairwise(picks)
        ]
        found = _faces(path, (a + b) / 2) if faces else 0
        motion = float(np.mean(diffs)) if diffs else 0.0
        sharp = float(np.mean([cv2.Laplacian(p, cv2.CV_64F).var() for p in picks]))
        bright = float(np.mean([p.mean() for p in picks]))
        shake = float(np.median(shifts)) if shifts else 0.0
        # Interest: what moves, is in focus, makes sound and shows people; shaky and dark
        # stretches count against it.
        score = (
            min(motion, 30) / 30
            + 0.3 * min(sharp, 500) / 500
            + 0.5 * min(sound * 10, 1.0)
            + 0.4 * min(found, 2)
            - (0.8 if shake > WIDTH * 0.06 else 0.0)
            - (1.0 if bright < DARK else 0.0)
        )
        changes = tuple(zip([times[i] for i in idx[1:]], diffs, strict=True))
        scenes.append(Scene(a, b, motion, sharp, bright, shake, sound, found, score, changes))
    return scenes


def best_segment(path: Path, seconds: float, faces: bool = True) -> tuple[float, float]:
    """(start, length) of the `seconds` to show from this video: the most active stretch of
    its best scene (all of it when shorter)."""
    scenes = score_scenes(path, faces)
    best = max(scenes, key=lambda s: s.score)
    length = min(seconds, best.end_s - best.start_s)
    if length < min(seconds, 1.0):
        # A very short best scene: show the wanted length starting there instead.
        total = max(s.end_s for s in scenes)
        return max(0.0, min(best.start_s, total - seconds)), min(seconds, total)
    # The window of the scene with the most change in it (its middle when nothing moves).
    start = best.start_s + (best.end_s - best.start_s - length) / 2
    top = -1.0
    for t, _ in ((best.start_s, 0.0), *best.changes):
        if t + length > best.end_s + 1e-3:
            break
        inside = [d for u, d in best.changes if t < u <= t + length]
        mean = sum(inside) / len(inside) if inside else 0.0
        if mean > top + 1e-9:
            start, top = t, mean
    return round(start, 3), round(length, 3)
