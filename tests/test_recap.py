"""Recap videos from the shared road trip: the MP4 decodes fully, is H.264 High/Main yuv420p
at 1080x1920 (phone portrait) and 30 fps with an AAC soundtrack at -16 LUFS (measured by
ffmpeg's own ebur128 filter), runs for the duration it declares, has its index before its media
data (faststart), cuts on the music's beat, keeps faces in frame and shows the moment's own
video clip (its most active scene) where the timeline puts it."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageOps

from camroll.analyze.faces import analyze_faces
from camroll.create.clips import best_segment, score_scenes
from camroll.create.recap import (
    FADE,
    MAX_CLIP_SECONDS,
    ClipSlide,
    PhotoSlide,
    RecapSlide,
    plan_timeline,
    render_recap,
    top_level_boxes,
)
from camroll.create.soundtrack import (
    DUCK,
    MOODS,
    RATE,
    MomentFeel,
    choose_mood,
    clip_audio,
    mix,
    render_score,
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
    slides.append(ClipSlide(CLIP, *best_segment(CLIP, 3.0)))
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
        mood=MOODS["sunny"],
    )
    elapsed = time.perf_counter() - started
    print(f"recap: {info.duration_s:.1f} s rendered in {elapsed:.1f} s "
          f"({elapsed / info.duration_s:.2f} s per second of video)")  # fmt: skip
    return {"slides": slides, "out": out, "info": info, "progress": seen}


def test_recap_mp4_decodes_fully_at_its_declared_length(recap: dict) -> None:
    info, out = recap["info"], recap["out"]
    assert info.width == 1080 and info.height == 1920 and info.codec == "h264"
    assert info.duration_s == pytest.approx(15.0)
    count, stream_s, container_s, codec, profile, w, h, times = _probe(out)
    assert codec == "h264" and profile in ("High", "Main")
    assert (w, h) == (1080, 1920)
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
    beat = MOODS["sunny"].beat
    segments, total = plan_timeline(slides, 15, beat=beat)
    assert total == pytest.approx(15.0)
    clip = next(s for s in segments if s.kind == "clip")
    # Trimmed at the file's end (1.93 s) to whole beats plus the fade.
    assert clip.duration_s == pytest.approx(2 * beat + FADE)
    # Mid-clip, the frame's middle band is the clip itself, scaled to the full width.
    local = clip.duration_s / 2
    shown = _frame_at(out, clip.start_s + local)
    source = _frame_at(CLIP, local)
    sh, sw = source.shape[:2]
    fh = round(sh * 1080 / sw)
    expected = np.asarray(Image.fromarray(source).resize((1080, fh), Image.Resampling.BILINEAR))
    y0 = (1920 - fh) // 2
    diff = np.abs(shown[y0 : y0 + fh].astype(int) - expected.astype(int)).mean()
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
    # The per-slide motion, checked on its frames (drawn as yuv420p planes).
    from camroll.create.recap import _KenBurns, planes_to_rgb

    faces_dir = ROLL.parent / "faces" / "face_recognition" / "examples"
    image = ImageOps.exif_transpose(Image.open(faces_dir / "two_people.jpg")).convert("RGB")
    slide = PhotoSlide(image, [f.box for f in analyze_faces(image)])
    assert len(slide.faces) == 2
    motion = _KenBurns(slide, (1920, 1080), zoom_in=True)
    first, last = planes_to_rgb(motion.frame(0.0)), planes_to_rgb(motion.frame(1.0))
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
    # Phone portrait and square: no face is cut by the frame at any point of the motion. (The
    # detector scales a frame's long side down, so a portrait frame is checked on its middle
    # square, where this wide photo is shown.)
    for size in [(1080, 1920), (1080, 1080)]:
        motion = _KenBurns(slide, size, zoom_in=True)
        for p in (0.0, 0.5, 1.0):
            frame = planes_to_rgb(motion.frame(p))
            top = (size[1] - size[0]) // 2
            assert faces_centre(frame[top : top + size[0]])[2] == 2, (size, p)


def _ebur128(path: Path) -> float:
    """Integrated loudness of the file's audio as ffmpeg's ebur128 filter measures it."""
    run = subprocess.run(
        ["ffmpeg", "-nostats", "-hide_banner", "-i", str(path), "-map", "0:a",
         "-af", "ebur128", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", run.stderr)[-1])


def test_recap_is_phone_video_with_music_at_minus_16_lufs(recap: dict) -> None:
    """What ffprobe says of the road-trip recap: the must-show of the recap issue."""
    probe = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
             "-show_format", str(recap["out"])],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1080, 1920)
    assert video["pix_fmt"] == "yuv420p" and video["avg_frame_rate"] == "30/1"
    assert audio["codec_name"] == "aac" and int(audio["sample_rate"]) == RATE
    assert 15 <= float(probe["format"]["duration"]) <= 60
    assert float(audio["duration"]) == pytest.approx(15.0, abs=0.1)
    assert _ebur128(recap["out"]) == pytest.approx(-16.0, abs=1.0)
    assert recap["info"].mood == "sunny"


def test_cuts_fall_on_the_beat_and_moods_differ() -> None:
    photo = PhotoSlide(Image.new("RGB", (8, 6)), [])
    for mood in MOODS.values():
        segments, _ = plan_timeline([photo] * 7, clip_lengths=[0.0] * 7, beat=mood.beat)
        starts = [s.start_s / mood.beat for s in segments]
        assert np.allclose(starts, np.round(starts), atol=1e-6), (mood.name, starts)
    # A few clearly different moods: tempo, key and instruments all differ.
    sounds = {(m.bpm, m.root, m.scale, m.chords, m.melody, m.drums) for m in MOODS.values()}
    assert len(sounds) == len(MOODS) >= 4
    assert len({m.bpm for m in MOODS.values()}) == len(MOODS)
    # The moment picks the mood.
    assert choose_mood(MomentFeel(tags=["beach", "sea", "person"])).name == "sunny"
    assert choose_mood(MomentFeel(tags=["party", "cake", "person"])).name == "party"
    assert choose_mood(MomentFeel(tags=["snow", "mountain"])).name == "cozy"
    assert choose_mood(MomentFeel(tags=["street", "building", "car"])).name == "city"
    assert choose_mood(MomentFeel(hours=[21, 22, 23], photos_per_hour=30)).name == "party"
    assert choose_mood(MomentFeel(smiles=[0.9, 0.8], hours=[11, 12])).name == "sunny"
    assert choose_mood(MomentFeel(smiles=[0.1], hours=[10])).name == "tender"


def test_music_ducks_under_a_clips_own_sound() -> None:
    music = render_score(MOODS["city"], 12.0, seed=3)
    voice = clip_audio(CLIP, 0.0, 1.9)
    assert voice is not None and np.abs(voice).max() > 0.01  # the Live Photo has sound
    alone = mix(music, 12.0, [])
    spoken = mix(music, 12.0, [(5.0, voice)])
    before = slice(int(2 * RATE), int(4 * RATE))
    assert np.allclose(spoken[before], alone[before])  # untouched away from the clip
    # Inside the clip (past its 0.25 s ramps): take the music away at the ducked level and
    # what is left is the clip's own sound alone, so the music was ducked by exactly DUCK.
    window = slice(int(5.3 * RATE), int(6.6 * RATE))
    residual = spoken[window] - DUCK * alone[window]
    own = voice[int(0.3 * RATE) : int(1.6 * RATE)]
    corr = np.corrcoef(residual.ravel(), own.ravel())[0, 1]
    assert corr > 0.99, corr
    # And the clip's sound is on top: louder than the ducked music there.
    assert (residual**2).mean() > ((DUCK * alone[window]) ** 2).mean()


def test_a_clips_chosen_segment_is_its_most_active_scene() -> None:
    video = ROLL / "pigallery2" / "test-assets" / "video.mp4"  # 13.7 s, three scenes
    scenes = score_scenes(video)
    assert len(scenes) >= 2
    start, length = best_segment(video, 3.0)
    assert length == pytest.approx(3.0)

    # Activity measured independently: every frame, full size, mean change per frame.
    with av.open(str(video)) as container:
        frames = [(float(f.time), f.to_ndarray(format="gray").astype(np.int16))
                  for f in container.decode(video=0)]  # fmt: skip

    def activity(a: float, b: float) -> float:
        inside = [g for t, g in frames if a <= t < b]
        return float(np.mean([np.abs(q - p).mean() for p, q in itertools.pairwise(inside)]))

    most = max(scenes, key=lambda s: activity(s.start_s, s.end_s))
    assert most.start_s <= start and start + length <= most.end_s + 1e-3
    assert activity(start, start + length) > max(
        activity(s.start_s, s.end_s) for s in scenes if s != most
    )


def test_portrait_title_card_breaks_a_long_title_instead_of_cutting_it() -> None:
    from PIL import ImageDraw

    from camroll.create.collage import fit_text
    from camroll.create.recap import _lines

    title = "Road trip: Yosemite Valley, Moab and Williams"
    lines = _lines(
        title, "12 June to 3 July 2015 · Yosemite Valley, Moab", 0.075, 0.04, (1080, 1920)
    )
    assert " ".join(t for t, _, bold in lines if bold) == title
    assert [t for t, _, bold in lines if not bold] == [
        "12 June to 3 July 2015",
        "Yosemite Valley, Moab",
    ]
    draw = ImageDraw.Draw(Image.new("RGB", (1080, 1920)))
    for text, frac, bold in lines:  # every line fits the width whole: no ellipsis
        assert not fit_text(draw, text, round(1080 * 0.86), round(1920 * frac), bold)[1].endswith(
            "…"
        )


@pytest.mark.parametrize(
    ("path", "matrix"),
    [
        (ROLL.parent / "faces" / "face_recognition" / "examples" / "short_hamilton_clip.mp4",
         "ITU709"),  # BT.709, as the output: scaled as YUV; its first frame is at 0.85 s
        (ROLL / "lychee" / "Samples" / "train.mov", "ITU601"),  # BT.601 full range: via RGB
        (ROLL / "pigallery2" / "test-assets" / "video_rotate.mp4", "ITU601"),  # turned 90°
    ],
)  # fmt: skip
def test_a_clip_is_shown_upright_and_in_place(path: Path, matrix: str) -> None:
    """The clip's picture in the recap frame is its source frame as a player shows it (upright,
    decoded with the clip's own colour matrix), full width and centred over a blurred fill."""
    from camroll.create.recap import _Clip, planes_to_rgb

    clip = _Clip(ClipSlide(path, 0.0, 2.0), 2.0, (1080, 1920))
    try:
        shown = planes_to_rgb(clip.frame(0.5))
    finally:
        clip.close()
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    # What _Clip shows at 0.5 s: the last frame by then, or the first if none is that early.
    frame = ([f for f in frames if f.time <= 0.5 + 1e-3] or frames[:1])[-1]
    source = frame.to_ndarray(format="rgb24", src_colorspace=matrix)
    source = np.ascontiguousarray(np.rot90(source, round(frame.rotation or 0) // 90))
    sh, sw = source.shape[:2]
    fh = round(sh * 1080 / sw / 2) * 2
    expected = np.asarray(Image.fromarray(source).resize((1080, fh), Image.Resampling.BILINEAR))
    y0 = (1920 - fh) // 4 * 2
    diff = shown[y0 : y0 + fh].astype(int) - expected.astype(int)
    # Two bilinear scalers (FFmpeg's, Pillow's) differ most on small sources magnified 13-18x.
    assert np.median(np.abs(diff)) <= 2, np.median(np.abs(diff))
    assert np.abs(diff.mean(axis=(0, 1))).max() < 3.5, diff.mean(axis=(0, 1))
    # Above the picture: the blurred fill, not a flat colour and not the picture itself.
    fill = shown[: y0 - 4].astype(int)
    assert fill.std() > 3
