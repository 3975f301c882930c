"""Validation and previews on real and deliberately broken files: what gets in, what is
quarantined and why, and what the previews look like."""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from camroll.client.sync import walk
from camroll.media.metadata import read_metadata
from camroll.media.previews import render_previews
from camroll.media.validate import Quarantined, classify
from tests.conftest import ROLL

ORIENT = ROLL / "exif-samples" / "jpg" / "orientation"


def ingest(path: Path) -> tuple[str, object]:
    """What the pipeline does: content type from ExifTool, classify, one decode for previews."""
    meta = read_metadata([path])[0]
    try:
        kind = classify(path, meta.mime, decode=False)
        return kind, render_previews(path, kind, meta.orientation)
    except Quarantined as q:
        return "quarantined", q


def test_every_file_in_the_roll_is_either_media_with_previews_or_quarantined_with_a_reason() -> (
    None
):
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for path in walk(ROLL):
        kind, result = ingest(path)  # anything but Quarantined escaping fails the test
        outcomes[kind] += 1
        if isinstance(result, Quarantined):
            assert result.reason in {
                "empty",
                "truncated",
                "corrupt",
                "unsupported_type",
                "decompression_bomb",
                "too_large",
            }
            assert len(result.detail) > 10
            reasons[result.reason] += 1
        else:
            assert result.thumbnail[8:12] == b"WEBP" and result.preview[:3] == b"\xff\xd8\xff"
    print("\noutcomes", dict(outcomes), "\nreasons", dict(reasons))
    assert outcomes["image"] > 250 and outcomes["video"] >= 5 and outcomes["raw"] >= 2


@pytest.mark.parametrize(
    "rel",
    [
        "exif-samples/jpg/Canon_40D.jpg",
        "exif-samples/heic/mobile/iphone_13_pro_max.HEIC",
        "pigallery2/image-formats/test.dng",
    ],
)
def test_real_camera_photos_render_upright_previews(rel: str) -> None:
    kind, r = ingest(ROLL / rel)
    assert kind in ("image", "raw"), r
    thumb = Image.open(io.BytesIO(r.thumbnail))
    preview = Image.open(io.BytesIO(r.preview))
    assert thumb.format == "WEBP" and max(thumb.size) <= 256
    assert preview.format == "JPEG" and max(preview.size) <= 1440 and preview.mode == "RGB"


def test_zero_byte_and_all_zero_files_are_empty(tmp_path: Path) -> None:
    zero = tmp_path / "IMG_0001.JPG"
    zero.write_bytes(b"")
    for path in (zero, ROLL / "pigallery2/demo/broken image.JPG"):
        kind, q = ingest(path)
        assert kind == "quarantined" and q.reason == "empty", q


@pytest.mark.parametrize(
    "rel",
    [
        "exif-samples/jpg/Canon_40D.jpg",
        "exif-samples/heic/mobile/iphone_13_pro_max.HEIC",
        "pigallery2/test-assets/orientation/IMG_0307.HEIC",
    ],
)
def test_truncated_files_are_quarantined_not_crashing(tmp_path: Path, rel: str) -> None:
    data = (ROLL / rel).read_bytes()
    cut = tmp_path / Path(rel).name
    cut.write_bytes(data[: len(data) // 2])
    kind, q = ingest(cut)
    assert kind == "quarantined" and q.reason in ("truncated", "corrupt"), q


def test_truncated_video_is_quarantined(tmp_path: Path) -> None:
    video = max(
        (p for p in walk(ROLL) if p.suffix.lower() == ".mp4"), key=lambda p: p.stat().st_size
    )
    cut = tmp_path / video.name
    cut.write_bytes(video.read_bytes()[:4096])
    kind, q = ingest(cut)
    assert kind == "quarantined" and q.reason in ("truncated", "corrupt"), q


def _png(width: int, height: int) -> bytes:
    """A valid PNG header declaring a huge canvas, with a tiny compressed body."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(60_000, 60_000))  # 3.6 gigapixels in a few KB
    assert bomb.stat().st_size < 100_000
    kind, q = ingest(bomb)
    assert kind == "quarantined" and q.reason == "decompression_bomb", q
    assert "limit" in q.detail


def test_unknown_and_non_media_files_are_unsupported(tmp_path: Path) -> None:
    noise = tmp_path / "IMG_0002.JPG"
    noise.write_bytes(bytes(range(256)) * 40)
    for path in (noise, ROLL / "exif-samples/jpg/gps/README"):
        kind, q = ingest(path)
        assert kind == "quarantined" and q.reason in ("unsupported_type", "corrupt"), q


def test_type_comes_from_content_not_extension(tmp_path: Path) -> None:
    png_named_jpg = tmp_path / "photo.jpg"
    Image.new("RGB", (64, 48), "red").save(png_named_jpg, format="PNG")
    meta = read_metadata([png_named_jpg])[0]
    assert meta.mime == "image/png"
    kind, r = ingest(png_named_jpg)
    assert kind == "image" and Image.open(io.BytesIO(r.preview)).size == (64, 48)


def test_all_eight_orientations_come_out_upright() -> None:
    """The sample set shows one scene under orientations 1-8; every preview must match 1's."""
    files = sorted(p for p in ORIENT.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    previews = {}
    for p in files:
        meta = read_metadata([p])[0]
        if meta.orientation:
            kind, r = ingest(p)
            assert kind == "image"
            previews[meta.orientation] = Image.open(io.BytesIO(r.preview)).convert("L")
    assert set(previews) == set(range(1, 9)), sorted(previews)
    ref = previews[1].resize((64, 64))
    for o, im in previews.items():
        assert abs(im.width / im.height - previews[1].width / previews[1].height) < 0.02, o
        diff = sum(
            abs(a - b) for a, b in zip(im.resize((64, 64)).getdata(), ref.getdata(), strict=True)
        )
        assert diff / (64 * 64) < 20, (o, diff / (64 * 64))


def test_video_gets_a_poster_frame() -> None:
    video = next(p for p in walk(ROLL) if p.suffix.lower() == ".mp4")
    kind, r = ingest(video)
    assert kind == "video" and r.poster
    assert Image.open(io.BytesIO(r.preview)).format == "JPEG"


def test_cmyk_jpeg_comes_out_rgb(tmp_path: Path) -> None:
    src = Image.open(ROLL / "exif-samples/jpg/Canon_40D.jpg").convert("CMYK")
    path = tmp_path / "cmyk.jpg"
    src.save(path, quality=90)
    kind, r = ingest(path)
    preview = Image.open(io.BytesIO(r.preview))
    assert kind == "image" and preview.mode == "RGB"
    # The colours survive: CMYK→RGB must not invert or wash out the photo.
    ref = Image.open(ROLL / "exif-samples/jpg/Canon_40D.jpg").convert("RGB").resize(preview.size)
    diff = sum(
        abs(a - b)
        for a, b in zip(preview.convert("L").getdata(), ref.convert("L").getdata(), strict=True)
    )
    assert diff / (preview.width * preview.height) < 40
