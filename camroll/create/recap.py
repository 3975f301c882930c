"""Recap videos: a title card, the moment's photos with a slow Ken Burns zoom towards their faces,
the best few seconds of the moment's own videos, crossfades between them, and an end card, set
to music (camroll.create.soundtrack) and encoded as a browser-playable MP4 (H.264 High, yuv420p,
30 fps, faststart; AAC at -16 LUFS). Phone portrait 1080x1920 by default, 16:9 and 1:1 on request.

Cuts fall on the music's beat: every segment starts a whole number of beats after the last.
Crops are face-aware: the moving window never leaves a face half out of the frame.

Speed on a small CPU: each photo is scaled once to just above the output size and converted to
yuv420p planes once (on a helper thread, while the slide before shows); every frame is then one
affine warp per plane (OpenCV, half the bytes of RGB and no per-frame colour conversion) written
straight into the frame x264 reads, a blend during crossfades, and x264 on its own threads.
Clips are decoded lazily, one frame ahead, so memory stays flat whatever their length; FFmpeg
scales each clip frame to yuv420p over a blurred fill made once per clip.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import struct
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw

from camroll.create.collage import fit_text, load_font
from camroll.create.soundtrack import (
    MOODS,
    RATE,
    Mood,
    clip_audio,
    fit_track,
    mix,
    normalise,
    render_score,
)

__all__ = [
    "FORMATS",
    "CardSlide",
    "ClipSlide",
    "PhotoSlide",
    "RecapInfo",
    "RecapSlide",
    "plan_timeline",
    "render_recap",
    "top_level_boxes",
]

Box = tuple[int, int, int, int]

MIN_SECONDS, MAX_SECONDS = 15.0, 60.0
PHOTO_SECONDS = 3.0  # default time per photo
MIN_PHOTO_SECONDS = 1.5  # below this a photo is a flicker: later slides are dropped instead
MAX_CLIP_SECONDS = 3.0
TITLE_SECONDS = 2.5
CARD_SECONDS = 1.8  # a place caption between slides, when the place changes
END_SECONDS = 2.0
FADE = 0.5  # crossfade between consecutive segments
ZOOM = 1.12  # Ken Burns: the most a photo is magnified over its slide
FACE_MARGIN = 1.25  # the faces' union, grown by this, stays inside every frame
CRF = 21  # visually clean at 1080p; x264's default is 23
PRESET = "superfast"  # measured (bench/creations.py): half of veryfast's CPU, 30-46% more bytes
BACKGROUND = (14, 14, 16)
PREFETCH = 4  # frames drawn ahead of the encoder (4 x 3 MB at 1080p)
FORMATS: dict[str, tuple[int, int]] = {
    "9:16": (1080, 1920),  # phone portrait, the default
    "16:9": (1920, 1080),
    "1:1": (1080, 1080),
}
AUDIO_BITRATE = 160_000


@dataclass(frozen=True)
class PhotoSlide:
    image: Image.Image  # upright RGB
    faces: list[Box]  # x, y, w, h in the image's pixels


@dataclass(frozen=True)
class ClipSlide:
    path: Path
    start_s: float = 0.0
    duration_s: float = MAX_CLIP_SECONDS  # trimmed to MAX_CLIP_SECONDS and to the clip's end


# --- place captions (helper C) ---
@dataclass(frozen=True)
class CardSlide:
    """A caption in the story's order: the place's name (and day) where the place changes,
    over the next photo, darkened and blurred."""

    text: str
    detail: str = ""
    backdrop: Image.Image | None = None


RecapSlide = PhotoSlide | ClipSlide | CardSlide
# --- end place captions ---


@dataclass(frozen=True)
class RecapInfo:
    duration_s: float
    frames: int
    width: int
    height: int
    codec: str
    mood: str | None = None  # the music's mood; None for a silent render


@dataclass(frozen=True)
class Segment:
    kind: str  # "title" | "photo" | "clip" | "end"
    index: int  # into the slides for "photo" and "clip", else -1
    start_s: float
    duration_s: float


# --- timeline -----------------------------------------------------------------------------------


def _clip_length(clip: ClipSlide) -> float:
    """Seconds of the clip that will be shown: the request, capped, and cut at the file's end."""
    with av.open(str(clip.path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        if stream.duration and stream.time_base:
            total = float(stream.duration * stream.time_base)
        else:
            total = (container.duration or 0) / 1_000_000
    return max(0.0, min(clip.duration_s, MAX_CLIP_SECONDS, total - clip.start_s))


def _on_beats(length: float, beat: float) -> float:
    """`length` shortened so the segment's solo part (all but its closing fade) is whole beats:
    the next segment then starts on a beat."""
    return max(1, int((length - FADE) / beat + 1e-6)) * beat + FADE


def plan_timeline(
    slides: list[RecapSlide],
    seconds: float | None = None,
    clip_lengths: list[float] | None = None,
    beat: float = 0.5,
) -> tuple[list[Segment], float]:
    """Segments with their start times and the total length (clamped to 15-60 s). Clips keep
    their own length; photos share the rest. Every segment starts on a whole beat (`beat`
    seconds) of the music. Slides that would leave photos under MIN_PHOTO_SECONDS are dropped
    from the end."""
    if not slides:
        raise ValueError("A recap needs at least one photo or clip.")
    lengths = clip_lengths or [_clip_length(s) if isinstance(s, ClipSlide) else 0.0 for s in slides]
    lengths = [_on_beats(x, beat) if x >= 0.5 else 0.0 for x in lengths]
    # Captions take a fixed few beats, as clips take their own length.
    lengths = [_on_beats(CARD_SECONDS, beat) if isinstance(s, CardSlide) else x
               for s, x in zip(slides, lengths, strict=True)]  # fmt: skip
    kept = [i for i, s in enumerate(slides) if isinstance(s, PhotoSlide) or lengths[i] >= 0.5]
    if not any(not isinstance(slides[i], CardSlide) for i in kept):
        raise ValueError("None of the recap's clips has half a second of video to show.")
    title_s = _on_beats(TITLE_SECONDS, beat)
    while True:
        while isinstance(slides[kept[-1]], CardSlide):
            kept.pop()  # a caption with nothing after it
        photos = sum(isinstance(slides[i], PhotoSlide) for i in kept)
        clips = sum(lengths[i] for i in kept if not isinstance(slides[i], PhotoSlide))
        segments = len(kept) + 2
        wanted = title_s + END_SECONDS + clips + PHOTO_SECONDS * photos
        total = wanted - FADE * (segments - 1) if seconds is None else seconds
        total = min(MAX_SECONDS, max(MIN_SECONDS, total))
        # Each fade overlaps two segments, so segments sum to total + fades.
        room = total + FADE * (segments - 1) - title_s - END_SECONDS - clips
        per_photo = room / photos if photos else 0.0
        if photos == 0 or per_photo >= MIN_PHOTO_SECONDS or len(kept) == 1:
            break
        kept.pop()
    # Whole beats for each photo's solo part, the spare beats going to the first photos.
    beats = max(photos, int((room - FADE * photos) / beat + 1e-6)) if photos else 0
    share = [beats // photos + (k < beats % photos) for k in range(photos)] if photos else []
    out = [Segment("title", -1, 0.0, title_s)]
    t = title_s - FADE
    for i in kept:
        photo = isinstance(slides[i], PhotoSlide)
        length = share.pop(0) * beat + FADE if photo else lengths[i]
        kind = {PhotoSlide: "photo", ClipSlide: "clip", CardSlide: "card"}[type(slides[i])]
        out.append(Segment(kind, i, t, length))
        t += length - FADE
    # The end card (and the title, for clips alone) takes what is left of the total.
    end = max(END_SECONDS if photos else FADE * 2, total - t)
    if photos == 0 and total - t > END_SECONDS:
        grow = int((total - t - END_SECONDS) / 2 / beat) * beat
        out[0] = Segment("title", -1, 0.0, title_s + grow)
        out[1:] = [Segment(s.kind, s.index, s.start_s + grow, s.duration_s) for s in out[1:]]
        t += grow
        end = total - t
    out.append(Segment("end", -1, t, end))
    return out, t + end


# --- frame sources ------------------------------------------------------------------------------


def _smooth(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y, U, V of yuv420p (chroma at half size)

# RGB -> BT.709 limited-range YCbCr (HD's standard, as the stream is tagged), with offsets.
_BT709 = np.array([[0.1826, 0.6142, 0.0620, 16.0],
                   [-0.1006, -0.3386, 0.4392, 128.0],
                   [0.4392, -0.3989, -0.0403, 128.0]], dtype=np.float32)  # fmt: skip


def _planes(rgb: np.ndarray) -> Planes:
    """yuv420p planes of an RGB picture (even sides): drawing in YUV skips a per-frame
    RGB->YUV conversion and warps half the bytes."""
    h, w = rgb.shape[:2]
    yuv = cv2.transform(rgb, _BT709)
    uv = cv2.resize(yuv[:, :, 1:], (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    return (np.ascontiguousarray(yuv[:, :, 0]), np.ascontiguousarray(uv[:, :, 0]),
            np.ascontiguousarray(uv[:, :, 1]))  # fmt: skip


def planes_to_rgb(planes: Planes) -> np.ndarray:
    """RGB of yuv420p planes (for checks and tests), through FFmpeg's BT.709 conversion."""
    return _frame(planes).to_ndarray(format="rgb24", src_colorspace="ITU709",
                                     src_color_range="MPEG")  # fmt: skip


def _frame(planes: Planes) -> av.VideoFrame:
    frame, views = _new_frame(planes[0].shape[1], planes[0].shape[0])
    for view, plane in zip(views, planes, strict=True):
        np.copyto(view, plane)
    return frame


def _new_frame(width: int, height: int) -> tuple[av.VideoFrame, Planes]:
    """An empty yuv420p frame and writable numpy views of its planes: a frame is drawn straight
    into the encoder's input, with no copy or packing afterwards."""
    frame = av.VideoFrame(width, height, "yuv420p")
    return frame, _views(frame)


def _views(frame: av.VideoFrame) -> Planes:
    """Numpy views (no copy) of a yuv420p frame's planes, without their row padding."""
    width, height = frame.width, frame.height
    views = []
    for plane, (w, h) in zip(frame.planes, [(width, height)] + [(width // 2, height // 2)] * 2,
                             strict=True):  # fmt: skip
        rows = np.frombuffer(plane, np.uint8)[: h * plane.line_size].reshape(h, plane.line_size)
        views.append(rows[:, :w])
    return views[0], views[1], views[2]


def _blank(width: int, height: int) -> Planes:
    return (np.empty((height, width), np.uint8), np.empty((height // 2, width // 2), np.uint8),
            np.empty((height // 2, width // 2), np.uint8))  # fmt: skip


def _copy_into(out: Planes, planes: Planes) -> Planes:
    for dst, src in zip(out, planes, strict=True):
        np.copyto(dst, src)
    return out


def _blurred_fill(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """The picture itself, tiny, blurred and stretched to cover the frame: cheap and calm."""
    h, w = rgb.shape[:2]
    scale = max(width / w, height / h) / 24
    small = cv2.resize(rgb, (max(2, round(w * scale)), max(2, round(h * scale))),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    sh, sw = small.shape[:2]
    cw, ch = width / 24, height / 24
    x0, y0 = max(0, round((sw - cw) / 2)), max(0, round((sh - ch) / 2))
    crop = small[y0 : y0 + max(1, round(ch)), x0 : x0 + max(1, round(cw))]
    # Darkened while tiny: the full-size frame is only ever resized, never multiplied.
    crop = (crop * 0.55).astype(np.uint8)
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)


def _contain(rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, int, int]:
    """`rgb` fitted inside width x height over its blurred fill; returns the scale and offset."""
    h, w = rgb.shape[:2]
    scale = min(width / w, height / h)
    fw, fh = max(1, round(w * scale)), max(1, round(h * scale))
    out = _blurred_fill(rgb, width, height)
    inter = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    x0, y0 = (width - fw) // 2, (height - fh) // 2
    out[y0 : y0 + fh, x0 : x0 + fw] = cv2.resize(rgb, (fw, fh), interpolation=inter)
    return out, scale, x0, y0


class _KenBurns:
    """A photo drifting from its full frame towards its faces (or the other way round)."""

    def __init__(self, slide: PhotoSlide, size: tuple[int, int], zoom_in: bool) -> None:
        width, height = size
        self.size = size
        image = slide.image if slide.image.mode == "RGB" else slide.image.convert("RGB")
        iw, ih = image.size
        aspect = iw / ih
        # Photos near the frame's shape fill it; others are shown whole over a blurred fill,
        # because filling would crop away most of them. Filling is face-aware: a photo whose
        # faces do not all fit in the cropped window is shown whole instead.
        ratio = aspect / (width / height)
        cover = 0.66 <= ratio <= 1.5
        if cover and slide.faces:
            crop_w, crop_h = (iw, iw * height / width) if ratio <= 1 else (ih * width / height, ih)
            span_w = max(f[0] + f[2] for f in slide.faces) - min(f[0] for f in slide.faces)
            span_h = max(f[1] + f[3] for f in slide.faces) - min(f[1] for f in slide.faces)
            cover = span_w * FACE_MARGIN <= crop_w and span_h * FACE_MARGIN <= crop_h
        sw, sh = round(width * ZOOM), round(height * ZOOM)
        if cover:
            scale = max(sw / iw, sh / ih)
            # Pillow's reducing resize is the fastest good downscale for a big JPEG.
            src = image.resize((max(sw, round(iw * scale)), max(sh, round(ih * scale))),
                               Image.Resampling.BILINEAR, reducing_gap=2.0)  # fmt: skip
            self.src = np.asarray(src)
            ox = oy = 0.0
        else:
            rgb = np.asarray(image)
            self.src, scale, ox, oy = _contain(rgb, sw, sh)
        h, w = self.src.shape[:2]
        h, w = h - h % 2, w - w % 2
        self.src = self.src[:h, :w]
        self.planes = _planes(self.src)
        faces = [(x * scale + ox, y * scale + oy, fw * scale, fh * scale)
                 for x, y, fw, fh in slide.faces]  # fmt: skip
        # Window sizes in source pixels at zoom 1 (whole cover) and at the end zoom.
        full = (w, w * height / width) if w / h <= width / height else (h * width / height, h)
        if faces:
            weight = sum(f[2] * f[3] for f in faces)
            fx = sum((f[0] + f[2] / 2) * f[2] * f[3] for f in faces) / weight
            fy = sum((f[1] + f[3] / 2) * f[2] * f[3] for f in faces) / weight
            # Zoom no further than keeps every face (with a margin) in the window.
            ux0, uy0 = min(f[0] for f in faces), min(f[1] for f in faces)
            ux1 = max(f[0] + f[2] for f in faces)
            uy1 = max(f[1] + f[3] for f in faces)
            need = max((ux1 - ux0) * 1.3 / full[0], (uy1 - uy0) * 1.3 / full[1])
            end_zoom = max(1.0, min(ZOOM, 1 / need if need > 0 else ZOOM))
            # The face union with a margin: the window is held around it at every zoom.
            mx, my = (ux1 - ux0) * (FACE_MARGIN - 1) / 2, (uy1 - uy0) * (FACE_MARGIN - 1) / 2
            self.keep: tuple[float, ...] | None = (ux0 - mx, uy0 - my, ux1 + mx, uy1 + my)
        else:
            fx, fy = w / 2, h / 2
            end_zoom = ZOOM
            self.keep = None
        self.full = full
        self.focus = (fx, fy)
        self.centre = (w / 2, h / 2)
        self.zooms = (1.0, end_zoom) if zoom_in else (end_zoom, 1.0)
        self.zoom_in = zoom_in

    def frame(self, progress: float, out: Planes | None = None) -> Planes:
        """The picture at `progress` (0-1) of the slide, warped into `out` (new planes if None)."""
        width, height = self.size
        h, w = self.src.shape[:2]
        p = _smooth(progress)
        z = self.zooms[0] + (self.zooms[1] - self.zooms[0]) * p
        ww, wh = self.full[0] / z, self.full[1] / z
        # The window's centre moves from the photo's centre to the faces as it zooms in.
        toward = p if self.zoom_in else 1 - p
        cx = self.centre[0] + (self.focus[0] - self.centre[0]) * toward
        cy = self.centre[1] + (self.focus[1] - self.centre[1]) * toward
        x0, y0 = cx - ww / 2, cy - wh / 2
        if self.keep is not None:
            # No face cut by the frame: the window covers the faces wherever it drifts.
            kx0, ky0, kx1, ky1 = self.keep
            if kx1 - kx0 <= ww:
                x0 = min(max(x0, kx1 - ww), kx0)
            if ky1 - ky0 <= wh:
                y0 = min(max(y0, ky1 - wh), ky0)
        # One source pixel of margin on the far sides: no sample ever reaches past the picture,
        # so the border mode never shows and OpenCV's faster constant-border path is used.
        x0 = max(min(x0, w - ww - 1.0), 0.0)
        y0 = max(min(y0, h - wh - 1.0), 0.0)
        k = width / ww
        luma = np.array([[k, 0, -x0 * k], [0, k, -y0 * k]], dtype=np.float32)
        chroma = np.array([[k, 0, -x0 * k / 2], [0, k, -y0 * k / 2]], dtype=np.float32)
        y, u, v = self.planes
        half = (width // 2, height // 2)
        if out is None:
            out = _blank(width, height)
        cv2.warpAffine(y, luma, (width, height), dst=out[0], flags=cv2.INTER_LINEAR)
        cv2.warpAffine(u, chroma, half, dst=out[1], flags=cv2.INTER_LINEAR)
        cv2.warpAffine(v, chroma, half, dst=out[2], flags=cv2.INTER_LINEAR)
        return out


class _Clip:
    """A trimmed video clip, decoded one frame ahead, fitted to the output frame."""

    def __init__(self, slide: ClipSlide, length: float, size: tuple[int, int]) -> None:
        self.size = size
        self.start, self.length = slide.start_s, length
        self.container = av.open(str(slide.path), metadata_errors="ignore")
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        if slide.start_s > 0:
            self.container.seek(int(slide.start_s / stream.time_base), stream=stream)
        self.frames: Iterator[av.VideoFrame] = self.container.decode(stream)
        self.current: Planes | None = None
        self.pending: av.VideoFrame | None = None

    def _fit(self, frame: av.VideoFrame) -> Planes:
        """The frame scaled by FFmpeg straight to yuv420p (no RGB round trip), centred over a
        blurred fill made once, from the clip's first frame: only the picture changes."""
        width, height = self.size
        rotation = round(getattr(frame, "rotation", 0) or 0) % 360
        turned = rotation in (90, 270)
        fw, fh = (frame.height, frame.width) if turned else (frame.width, frame.height)
        scale = min(width / fw, height / fh)
        # Even sides and offsets keep the half-size chroma aligned with the luma.
        tw, th = max(2, round(fw * scale / 2) * 2), max(2, round(fh * scale / 2) * 2)
        tw, th = min(tw, width), min(th, height)
        sw, sh = (th, tw) if turned else (tw, th)
        if frame.colorspace == 1:  # BT.709 already, as the output: FFmpeg scales the YUV as is
            planes = _views(frame.reformat(width=sw, height=sh, format="yuv420p"))
        else:  # BT.601 (FFmpeg's default for untagged video) is re-coded through RGB
            planes = _planes(frame.to_ndarray(format="rgb24", width=sw, height=sh))
        # The display matrix angle is counter-clockwise, as np.rot90's is.
        picture = [np.rot90(p, rotation // 90) for p in planes]
        if self.current is None:
            if (tw, th) == (width, height):
                self.current = _blank(width, height)
            else:
                small = frame.to_ndarray(format="rgb24", width=max(2, sw // 8),
                                         height=max(2, sh // 8))  # fmt: skip
                self.current = _planes(_blurred_fill(np.rot90(small, rotation // 90), width,
                                                     height))  # fmt: skip
        x0, y0 = (width - tw) // 4 * 2, (height - th) // 4 * 2
        for k, (dst, src) in enumerate(zip(self.current, picture, strict=True)):
            d = 2 if k else 1
            dst[y0 // d : (y0 + th) // d, x0 // d : (x0 + tw) // d] = src
        return self.current

    def frame(self, local_s: float, out: Planes | None = None) -> Planes:
        """The clip's frame showing at `local_s` seconds into the slide (monotonic calls), copied
        into `out` when given."""
        want = self.start + min(local_s, self.length)
        while True:
            if self.pending is None:
                self.pending = next(self.frames, None)
                if self.pending is None:
                    break
            t = self.pending.time if self.pending.time is not None else 0.0
            if t > want + 1e-3 and self.current is not None:
                break
            if t >= self.start - 1e-3 or self.current is None:
                self._fit(self.pending)
            self.pending = None
        if self.current is None:
            self.current = _planes(np.full((self.size[1], self.size[0], 3), BACKGROUND, np.uint8))
        return self.current if out is None else _copy_into(out, self.current)

    def close(self) -> None:
        self.container.close()


# --- place captions (helper C) ---
class _Still:
    """A card that holds still for its whole segment."""

    def __init__(self, planes: Planes) -> None:
        self.planes = planes

    def frame(self, local_s: float, out: Planes | None = None) -> Planes:
        return self.planes if out is None else _copy_into(out, self.planes)


def _place_card(slide: CardSlide, size: tuple[int, int]) -> Planes:
    return _planes(_card(size, _lines(slide.text, slide.detail, 0.06, 0.032, size), slide.backdrop))


# --- end place captions ---


def _card(
    size: tuple[int, int], lines: list[tuple[str, float, bool]], backdrop: Image.Image | None
) -> np.ndarray:
    """A text card: lines of (text, size as a fraction of the height, bold), centred, over a
    dark blurred backdrop photo when one is given."""
    width, height = size
    if backdrop is not None:
        canvas = _blurred_fill(np.asarray(backdrop.convert("RGB")), width, height)
        canvas = (canvas * 0.6).astype(np.uint8)
        image = Image.fromarray(canvas)
    else:
        image = Image.new("RGB", size, BACKGROUND)
    draw = ImageDraw.Draw(image)
    fonts = [fit_text(draw, text, round(width * 0.86), round(height * frac), bold)
             for text, frac, bold in lines]  # fmt: skip
    # The lines of one broken title share the size of its longest line.
    smallest: dict[tuple[float, bool], int] = {}
    for (font, _), (_, frac, bold) in zip(fonts, lines, strict=True):
        size_px = int(getattr(font, "size", 0))
        smallest[frac, bold] = min(smallest.get((frac, bold), size_px), size_px)
    fonts = [(load_font(smallest[frac, bold], bold), text) if "…" not in text else (font, text)
             for (font, text), (_, frac, bold) in zip(fonts, lines, strict=True)]  # fmt: skip
    gaps = [round(int(getattr(font, "size", height * 0.04)) * 1.45) for font, _ in fonts]
    y = height / 2 - sum(gaps) / 2
    for (font, text), gap, (_, _, bold) in zip(fonts, gaps, lines, strict=True):
        fill = (250, 250, 250) if bold else (205, 205, 210)
        draw.text((width / 2, y + gap / 2), text, font=font, fill=fill, anchor="mm")
        y += gap
    return np.asarray(image)


def _lines(
    title: str, subtitle: str, big: float, small: float, size: tuple[int, int]
) -> list[tuple[str, float, bool]]:
    """The card's lines. A narrow (portrait or square) frame breaks a long title over two or
    three lines and the subtitle at its " · ", rather than shrinking them to an ellipsis."""
    width, height = size
    if width >= height * 1.2:
        return [(title, big, True), (subtitle, small, False)]
    scale = width / height * 1.6  # sizes are fractions of the height
    words, parts = title.split(), max(1, min(3, round(len(title) / 18)))
    lines: list[str] = []
    current = ""
    for word in words:
        full = current and len(current) + 1 + len(word) > len(title) / parts * 1.15
        if full and len(lines) < parts - 1:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    lines.append(current)
    out = [(line, big * scale, True) for line in lines]
    out += [(part, small * scale, False) for part in subtitle.split(" · ") if part]
    return out or [("", small, False)]


# --- encoding -----------------------------------------------------------------------------------


def render_recap(
    slides: list[RecapSlide],
    out: Path,
    title: str,
    subtitle: str,
    seconds: float | None = None,
    fps: int = 30,
    size: tuple[int, int] = FORMATS["9:16"],
    progress: Callable[[float], None] | None = None,
    mood: Mood | None = None,
    music: bool = True,
    seed: int = 0,
    preset: str = PRESET,
    track: np.ndarray | None = None,
    beat: float | None = None,
) -> RecapInfo:
    """Render the recap to `out` (MP4). `subtitle` is the dates and place line of the title card.
    `seconds` defaults to about 3 s per photo plus the clips and cards, clamped to 15-60 s.
    `mood` picks the music (camroll.create.soundtrack.choose_mood); `music=False` makes the
    silent video alone (the benchmark's previous-renderer comparison). `track` is the owner's
    own music (float32 stereo at RATE) instead of the mood's score, `beat` its beat in seconds."""
    mood = mood or MOODS["tender"]
    width, height = size
    if width % 2 or height % 2:
        raise ValueError("H.264 in yuv420p needs even frame dimensions.")
    segments, total = plan_timeline(slides, seconds, beat=beat or mood.beat)
    frames = round(total * fps)
    # The sound is made first (a second or two): the timeline says where clips speak.
    # The sound is made on its own thread while the first frames are drawn and encoded (the
    # score, the mix and the loudness pass take a few seconds of one core).
    audio: concurrent.futures.Future[np.ndarray] | None = None
    # Two helpers: the sound, and the next slide's source (scaled photo, opened clip).
    pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="recap-helper")
    if music:
        audio = pool.submit(_soundtrack, slides, segments, total, mood, seed, track)
    first_photo = next((s.image for s in slides if isinstance(s, PhotoSlide)), None)
    opening = _lines(title, subtitle, 0.075, 0.04, size)
    title_card = _planes(_card(size, opening, first_photo))
    end_card = _planes(_card(size, _lines(title, subtitle, 0.05, 0.032, size), None))
    sources: dict[int, _KenBurns | _Clip | _Still] = {}
    ready: dict[int, concurrent.futures.Future[_KenBurns | _Clip | _Still]] = {}

    def build(n: int, seg: Segment) -> _KenBurns | _Clip | _Still:
        slide = slides[seg.index]
        if isinstance(slide, PhotoSlide):
            return _KenBurns(slide, size, zoom_in=n % 2 == 1)
        if isinstance(slide, CardSlide):
            return _Still(_place_card(slide, size))
        return _Clip(slide, seg.duration_s, size)

    def source(n: int, seg: Segment) -> _KenBurns | _Clip | _Still:
        if n not in sources:
            early = ready.pop(n, None)
            sources[n] = early.result() if early is not None else build(n, seg)
            # The next slide's source is made on a helper while this one shows, so drawing
            # never stops for a photo's resize or a clip's opening seek.
            k = n + 1
            if k < len(segments) - 1 and k not in ready:
                ready[k] = pool.submit(build, k, segments[k])
        return sources[n]

    if len(segments) > 2:
        ready[1] = pool.submit(build, 1, segments[1])  # the first slide, while the title shows

    def picture(n: int, seg: Segment, t: float, into: Planes) -> None:
        """Segment `n`'s picture at `t`, drawn into `into`."""
        if seg.kind == "title":
            _copy_into(into, title_card)
        elif seg.kind == "end":
            _copy_into(into, end_card)
        else:
            src = source(n, seg)
            local = t - seg.start_s
            if isinstance(src, _KenBurns):
                src.frame(local / seg.duration_s, into)
            else:
                src.frame(local, into)

    out.parent.mkdir(parents=True, exist_ok=True)
    # faststart: the muxer rewrites the file with the index (moov) first, so browsers can start
    # playing before the whole file has arrived.
    container = av.open(str(out), "w", format="mp4", options={"movflags": "+faststart"})
    ahead: Generator[av.VideoFrame] | None = None
    ok = False
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {
            "preset": preset,
            "crf": str(CRF),
            "profile": "high",
            "g": str(fps * 2),  # a keyframe every 2 s keeps seeking quick
        }
        # Tag BT.709 limited range (HD's standard), matching the conversion below.
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 1, 1, 1, 1
        sound = _AudioTrack(container, audio) if audio is not None else None

        def render() -> Iterator[av.VideoFrame]:
            active = 0
            other = _blank(width, height)  # the incoming segment during a crossfade
            for i in range(frames):
                t = i / fps
                # Segments are in time order; at most two overlap (during a crossfade).
                while (
                    active + 1 < len(segments)
                    and segments[active].start_s + segments[active].duration_s <= t
                ):
                    done = sources.pop(active, None)
                    if isinstance(done, _Clip):
                        done.close()
                    active += 1
                # Drawn in BT.709 limited-range YUV (matching the colour tags written above),
                # straight into the frame x264 reads.
                frame, yuv = _new_frame(width, height)
                seg = segments[active]
                picture(active, seg, t, yuv)
                nxt = segments[active + 1] if active + 1 < len(segments) else None
                if nxt is not None and t >= nxt.start_s:
                    alpha = (t - nxt.start_s) / FADE
                    picture(active + 1, nxt, t, other)
                    for a, b in zip(yuv, other, strict=True):
                        cv2.addWeighted(a, 1 - alpha, b, alpha, 0, dst=a)
                frame.pts = i
                frame.time_base = Fraction(1, fps)
                yield frame

        ahead = _ahead(render(), PREFETCH)
        for i, frame in enumerate(ahead):
            if sound is not None and sound.ready():
                sound.until((i + 1) / fps)  # interleaved: the muxer holds little in memory
            container.mux(stream.encode(frame))
            if progress is not None and (i % fps == 0 or i == frames - 1):
                progress((i + 1) / frames)
        container.mux(stream.encode(None))
        if sound is not None:
            sound.ready(wait=True)
            sound.until(None)
        ok = True
    finally:
        if ahead is not None:
            ahead.close()  # stops and joins the drawing thread before its sources close
        for src in sources.values():
            if isinstance(src, _Clip):
                src.close()
        pool.shutdown(wait=True, cancel_futures=True)
        for early in ready.values():  # made ahead but never shown (an error stopped the render)
            if not early.cancelled() and early.exception() is None:
                made = early.result()
                if isinstance(made, _Clip):
                    made.close()
        container.close()
        if not ok:
            out.unlink(missing_ok=True)  # no half-written recap is left to be served
    return RecapInfo(frames / fps, frames, width, height, "h264", mood.name if music else None)


def _soundtrack(
    slides: list[RecapSlide],
    segments: list[Segment],
    total: float,
    mood: Mood,
    seed: int,
    track: np.ndarray | None = None,
) -> np.ndarray:
    """The mood's music (or the owner's track) fitted to the recap, the clips' own sound over
    it, at -16 LUFS."""
    voices = []
    for seg in segments:
        slide = slides[seg.index] if seg.kind == "clip" else None
        if isinstance(slide, ClipSlide):
            pcm = clip_audio(slide.path, slide.start_s, seg.duration_s)
            if pcm is not None:
                voices.append((seg.start_s, pcm))
    music = fit_track(track, total) if track is not None else render_score(mood, total, seed)
    return normalise(mix(music, total, voices))


class _AudioTrack:
    """AAC in the MP4, fed in 1024-sample frames up to the video's time once the sound is made
    (the stream is added at once: an MP4's streams are fixed before its first packet)."""

    def __init__(
        self, container: av.container.OutputContainer, pcm: concurrent.futures.Future[np.ndarray]
    ) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=RATE, layout="stereo")
        self.stream.bit_rate = AUDIO_BITRATE
        self.pcm = pcm
        self.planar = np.zeros((2, 0), np.float32)
        self.done = 0

    def ready(self, wait: bool = False) -> bool:
        if self.planar.shape[1] == 0 and (wait or self.pcm.done()):
            self.planar = np.ascontiguousarray(self.pcm.result().T.astype(np.float32))
        return self.planar.shape[1] > 0

    def until(self, t: float | None) -> None:
        n = self.planar.shape[1]
        end = n if t is None else min(n, int(t * RATE))
        while self.done + 1024 <= end or (t is None and self.done < n):
            chunk = self.planar[:, self.done : self.done + 1024]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp",
                                               layout="stereo")  # fmt: skip
            frame.sample_rate, frame.pts = RATE, self.done
            self.container.mux(self.stream.encode(frame))
            self.done += chunk.shape[1]
        if t is None:
            self.container.mux(self.stream.encode(None))


def _ahead(frames: Iterator[av.VideoFrame], depth: int) -> Generator[av.VideoFrame]:
    """Run the frame generator in a thread, `depth` frames ahead: OpenCV, swscale and x264 all
    release the GIL, so drawing the next frames overlaps encoding this one."""
    if depth <= 0:
        yield from frames
        return
    box: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    return
                box.put((True, frame))
            box.put((False, None))
        except BaseException as exc:  # re-raised in the consumer
            box.put((False, exc))

    worker = threading.Thread(target=run, name="recap-frames", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                if isinstance(item, BaseException):
                    raise item
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                box.get(timeout=0.05)
        worker.join()


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (e.g. ftyp, moov, mdat for faststart)."""
    boxes = []
    with path.open("rb") as f:
        size_total = path.stat().st_size
        pos = 0
        while pos + 8 <= size_total:
            f.seek(pos)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:
                size = size_total - pos
            boxes.append(kind.decode("latin-1"))
            if size < 8:
                break
            pos += size
    return boxes
