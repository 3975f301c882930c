"""Recap videos from the shared roll: the MP4 decodes fully, is H.264 High/Main yuv420p at
1920x1080 and 30 fps, runs for the duration it declares, has its index before its media data
(faststart), and shows the moment's own video clip where the timeline puts it."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from camroll.analyze.faces import analyze_faces
from camroll.create.recap import (
    MAX_CLIP_SECONDS,
    ClipSlide,
    PhotoSlide,
    RecapSlide,
    plan_timeline,
    render_recap,
    top_level_boxes,
)

ROLL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camera-roll"
DEMO = ROLL / "pigallery2" / "demo"
# A 1.9 s portrait iPhone Live Photo movie (480x640 H.264).
CLIP = ROLL / "pigallery2" / "test-assets" / "live_photo" / "IMG_7943_HEVC.MOV"
PHOTOS = ["IMG_1252.jpg", "IMG_6263.jpg", "IMG_6297.jpg", "IMG_8751.jpg"]


def _photo(name: str) -> PhotoSlide:
    image = ImageOps.exif_transpose(Image.open(DEMO / name)).convert("RGB")
    return PhotoSlide(image, [f.box for f in analyze_faces(image)])


def _probe(path: Path) -> tuple[int, float, float, str, str, int, int, list[float]]:
    """Decode every frame (all yuv420p): (count, stream duration, container duration, codec,
    profile, w, h, frame times)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        frames = [(float(f.time), f.format.name) for f in container.decode(stream)]
        assert {fmt for _, fmt in frames} == {"yuv420p"}
        times = [t for t, _ in frames]
        return (
            len(times),
            float(stream.duration * stream.time_base),
            container.duration / 1_000_000,
            ctx.name,
            ctx.profile or "",
            stream.width,
            stream.height,
            times,
        )


def _frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time >= t - 1e-3:
                return frame.to_ndarray(format="rgb24")
    raise AssertionError(f"no frame at {t} s in {path}")


@pytest.fixture(scope="module")
def recap(tmp_path_factory: pytest.TempPathFactory) -> dict:
    slides: list[RecapSlide] = [_photo(n) for n in PHOTOS[:2]]
    slides.append(ClipSlide(CLIP, 0.0, 2.0))
    slides += [_photo(n) for n in PHOTOS[2:]]
    out = tmp_path_factory.mktemp("recap") / "recap.mp4"
    seen: list[float] = []
    started = time.perf_counter()
    info = render_recap(
        slides,
        out,
        "Road trip west",
        "12-15 June 2015 · Yosemite",
        seconds=15,
        progress=seen.append,
    )
    elapsed = time.perf_counter() - started
    print(f"recap: {info.duration_s:.1f} s rendered in {elapsed:.1f} s "
          f"({elapsed / info.duration_s:.2f} s per second of video)")  # fmt: skip
    return {"slides": slides, "out": out, "info": info, "progress": seen}


def test_recap_mp4_decodes_fully_at_its_declared_length(recap: dict) -> None:
    info, out = recap["info"], recap["out"]
    assert info.width == 1920 and info.height == 1080 and info.codec == "h264"
    assert info.duration_s == pytest.approx(15.0)
    count, stream_s, container_s, codec, profile, w, h, times = _probe(out)
    assert codec == "h264" and profile in ("High", "Main")
    assert (w, h) == (1920, 1080)
    assert abs(count - info.duration_s * 30) <= 1 and count == info.frames
    assert stream_s == pytest.approx(info.duration_s, abs=1 / 30)
    assert container_s == pytest.approx(info.duration_s, abs=0.1)
    # Constant 30 fps: frames every 1/30 s with no gaps or repeats.
    assert np.allclose(np.diff(times), 1 / 30, atol=1e-3)
    # faststart: the index (moov) comes before the media data, so browsers can play at once.
    boxes = top_level_boxes(out)
    assert "moov" in boxes and "mdat" in boxes
    assert boxes.index("moov") < boxes.index("mdat")
    # Progress reaches the end, only going forward.
    assert recap["progress"][-1] == pytest.approx(1.0)
    assert recap["progress"] == sorted(recap["progress"])


def test_recap_shows_the_clip_and_the_cards(recap: dict) -> None:
    out, slides = recap["out"], recap["slides"]
    segments, total = plan_timeline(slides, 15)
    assert total == pytest.approx(15.0)
    clip = next(s for s in segments if s.kind == "clip")
    assert clip.duration_s == pytest.approx(1.93, abs=0.05)  # trimmed at the file's end
    # Mid-clip, the frame's centre column is the clip itself, scaled to the full height.
    local = clip.duration_s / 2
    shown = _frame_at(out, clip.start_s + local)
    source = _frame_at(CLIP, local)
    sh, sw = source.shape[:2]
    fw = round(sw * 1080 / sh)
    expected = np.asarray(Image.fromarray(source).resize((fw, 1080), Image.Resampling.BILINEAR))
    x0 = (1920 - fw) // 2
    diff = np.abs(shown[:, x0 : x0 + fw].astype(int) - expected.astype(int)).mean()
    assert diff < 12, diff
    # The title card opens on text over a dark backdrop; the end card is dark with light text.
    first = _frame_at(out, 0.5)
    assert first.mean() < 110 and first.max() > 200
    last = _frame_at(out, total - 0.2)
    assert last.mean() < 40 and last.max() > 200


def test_timeline_lengths() -> None:
    photo = PhotoSlide(Image.new("RGB", (8, 6)), [])
    clip = ClipSlide(CLIP, 0.0, 10.0)
    # Default ~3 s per photo, clamped to 15-60 s.
    assert plan_timeline([photo] * 2)[1] == pytest.approx(15.0)
    assert plan_timeline([photo] * 8)[1] == pytest.approx(24.0)  # 10 segments, 9 fades
    assert plan_timeline([photo] * 40)[1] == pytest.approx(60.0)
    assert plan_timeline([photo] * 4, seconds=300)[1] == pytest.approx(60.0)
    # Clips keep their (trimmed) length; too many slides for 60 s drop from the end.
    segments, total = plan_timeline([photo, clip, photo], clip_lengths=[0.0, 3.0, 0.0])
    assert [s.kind for s in segments] == ["title", "photo", "clip", "photo", "end"]
    assert segments[2].duration_s == MAX_CLIP_SECONDS
    segments, total = plan_timeline([photo] * 60)
    assert total == pytest.approx(60.0)
    assert min(s.duration_s for s in segments if s.kind == "photo") >= 1.5
    # Consecutive segments overlap by exactly one crossfade and fill the whole length.
    for a, b in itertools.pairwise(segments):
        assert a.start_s + a.duration_s - b.start_s == pytest.approx(0.5)
    assert segments[-1].start_s + segments[-1].duration_s == pytest.approx(total)
    with pytest.raises(ValueError):
        plan_timeline([])


@pytest.mark.slow
def test_long_recap_with_two_clips(tmp_path: Path) -> None:
    names = sorted(p.name for p in DEMO.glob("IMG_*.jpg"))[:14]
    slides: list[RecapSlide] = [_photo(n) for n in names]
    slides.insert(3, ClipSlide(CLIP, 0.0, 3.0))
    slides.insert(9, ClipSlide(ROLL / "lychee" / "Samples" / "train.mov", 0.0, 3.0))
    out = tmp_path / "long.mp4"
    started = time.perf_counter()
    info = render_recap(slides, out, "Road trip west", "June 2015")
    elapsed = time.perf_counter() - started
    print(f"long recap: {info.duration_s:.1f} s in {elapsed:.1f} s")
    count, _, container_s, codec, _, w, h, _ = _probe(out)
    assert codec == "h264" and (w, h) == (1920, 1080)
    assert count == info.frames and container_s == pytest.approx(info.duration_s, abs=0.1)
    assert 40 <= info.duration_s <= 60


def test_ken_burns_moves_towards_the_faces() -> None:
    from camroll.create.recap import _KenBurns  # the per-slide motion, checked on its frames

    faces_dir = ROLL.parent / "faces" / "face_recognition" / "examples"
    image = ImageOps.exif_transpose(Image.open(faces_dir / "two_people.jpg")).convert("RGB")
    slide = PhotoSlide(image, [f.box for f in analyze_faces(image)])
    assert len(slide.faces) == 2
    motion = _KenBurns(slide, (1920, 1080), zoom_in=True)
    first, last = motion.frame(0.0), motion.frame(1.0)
    assert first.shape == last.shape == (1080, 1920, 3)

    def faces_centre(frame: np.ndarray) -> tuple[float, float, int]:
        found = analyze_faces(Image.fromarray(frame))
        xs = [f.box[0] + f.box[2] / 2 for f in found]
        ys = [f.box[1] + f.box[3] / 2 for f in found]
        return sum(xs) / len(xs), sum(ys) / len(ys), len(found)

    x0, y0, n0 = faces_centre(first)
    x1, y1, n1 = faces_centre(last)
    # Both faces stay in view, and the zoom ends nearer to them than it began.
    assert n0 == n1 == 2
    assert np.hypot(x1 - 960, y1 - 540) < np.hypot(x0 - 960, y0 - 540)
