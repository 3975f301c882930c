"""The previous recap renderer's drawing and encoding path, kept for bench/creations.py to run
side by side with camroll.create.recap in one process: a copy of camroll/create/recap.py at
commit e186dc5 (0.58x of a 60 s 1080x1920 recap on 2 cores), minus what did not change since
(the timeline, cards, soundtrack), which it imports. Not part of the product.

Per frame: one affine warp per yuv420p plane into new arrays, a blend during crossfades, the
three planes concatenated and copied into an av.VideoFrame, x264 `superfast`; clip frames
converted to RGB, put over a blurred fill drawn per frame, and converted back to YUV.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from camroll.create.recap import (
    FADE,
    FORMATS,
    CardSlide,
    ClipSlide,
    PhotoSlide,
    RecapInfo,
    RecapSlide,
    Segment,
    _card,
    _lines,
    _soundtrack,
    plan_timeline,
)
from camroll.create.soundtrack import MOODS, RATE, Mood

Box = tuple[int, int, int, int]
ZOOM = 1.12
FACE_MARGIN = 1.25
CRF = 21
PRESET = "superfast"
BACKGROUND = (14, 14, 16)
PREFETCH = 4
AUDIO_BITRATE = 160_000


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
    y, u, v = planes
    h, w = y.shape
    packed = np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(packed, format="yuv420p")


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
    return (cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR) * 0.55).astype(
        np.uint8
    )


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

    def frame(self, progress: float) -> Planes:
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
        return (
            cv2.warpAffine(y, luma, (width, height), flags=cv2.INTER_LINEAR),
            cv2.warpAffine(u, chroma, half, flags=cv2.INTER_LINEAR),
            cv2.warpAffine(v, chroma, half, flags=cv2.INTER_LINEAR),
        )


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

    def _fit(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = self.size
        rotation = round(getattr(frame, "rotation", 0) or 0) % 360
        turned = rotation in (90, 270)
        fw, fh = (frame.height, frame.width) if turned else (frame.width, frame.height)
        scale = min(width / fw, height / fh)
        # Let FFmpeg's scaler do the resize during the RGB conversion (one pass).
        tw, th = max(2, round(fw * scale)), max(2, round(fh * scale))
        rgb = frame.to_ndarray(format="rgb24", width=th if turned else tw,
                               height=tw if turned else th)  # fmt: skip
        if rotation:
            # The display matrix angle is counter-clockwise, as np.rot90's is.
            rgb = np.ascontiguousarray(np.rot90(rgb, rotation // 90))
        if (tw, th) == (width, height):
            return rgb
        out = _blurred_fill(rgb, width, height)
        x0, y0 = (width - tw) // 2, (height - th) // 2
        out[y0 : y0 + th, x0 : x0 + tw] = rgb
        return out

    def frame(self, local_s: float) -> Planes:
        """The clip's frame showing at `local_s` seconds into the slide (monotonic calls)."""
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
                self.current = _planes(self._fit(self.pending))
            self.pending = None
        if self.current is None:
            self.current = _planes(np.full((self.size[1], self.size[0], 3), BACKGROUND, np.uint8))
        return self.current

    def close(self) -> None:
        self.container.close()


# --- place captions (helper C) ---
class _Still:
    """A card that holds still for its whole segment."""

    def __init__(self, planes: Planes) -> None:
        self.planes = planes

    def frame(self, local_s: float) -> Planes:
        return self.planes


def _place_card(slide: CardSlide, size: tuple[int, int]) -> Planes:
    return _planes(_card(size, _lines(slide.text, slide.detail, 0.06, 0.032, size), slide.backdrop))


# --- end place captions ---


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
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recap-sound")
    if music:
        audio = pool.submit(_soundtrack, slides, segments, total, mood, seed, track)
    first_photo = next((s.image for s in slides if isinstance(s, PhotoSlide)), None)
    opening = _lines(title, subtitle, 0.075, 0.04, size)
    title_card = _planes(_card(size, opening, first_photo))
    end_card = _planes(_card(size, _lines(title, subtitle, 0.05, 0.032, size), None))
    sources: dict[int, _KenBurns | _Clip | _Still] = {}

    def source(n: int, seg: Segment) -> _KenBurns | _Clip | _Still:
        if n not in sources:
            slide = slides[seg.index]
            if isinstance(slide, PhotoSlide):
                sources[n] = _KenBurns(slide, size, zoom_in=n % 2 == 1)
            elif isinstance(slide, CardSlide):
                sources[n] = _Still(_place_card(slide, size))
            else:
                sources[n] = _Clip(slide, seg.duration_s, size)
        return sources[n]

    def picture(n: int, seg: Segment, t: float) -> Planes:
        if seg.kind == "title":
            return title_card
        if seg.kind == "end":
            return end_card
        src = source(n, seg)
        local = t - seg.start_s
        if isinstance(src, _KenBurns):
            return src.frame(local / seg.duration_s)
        return src.frame(local)

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
                seg = segments[active]
                yuv = picture(active, seg, t)
                nxt = segments[active + 1] if active + 1 < len(segments) else None
                if nxt is not None and t >= nxt.start_s:
                    alpha = (t - nxt.start_s) / FADE
                    other = picture(active + 1, nxt, t)
                    yuv = tuple(cv2.addWeighted(a, 1 - alpha, b, alpha, 0)
                                for a, b in zip(yuv, other, strict=True))  # type: ignore[assignment]  # fmt: skip
                # Drawn in BT.709 limited-range YUV, matching the colour tags written above.
                frame = _frame(yuv)
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
        container.close()
        if not ok:
            out.unlink(missing_ok=True)  # no half-written recap is left to be served
    return RecapInfo(frames / fps, frames, width, height, "h264", mood.name if music else None)


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
