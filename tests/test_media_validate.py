"""Content-based validation over the real camera roll, plus bombs, truncations and lying names."""

from __future__ import annotations

import collections
import io
import shutil
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from camroll.config import Settings
from camroll.media.previews import Renditions, render_previews
from camroll.media.validate import Quarantined, classify, sniff

ROLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camera-roll"
if not ROLL.is_dir():
    ROLL = Path("/work/shared/data/camera-roll")


SIDECARS = {".json", ".xmp", ".gpx", ".md", ".txt", ".log", ".csv", ".xml", ".kml"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv"}
PHOTO_SUFFIXES = {
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
}

# Quarantined on purpose, with the reason we expect.
EXPECTED_BROKEN = {
    "pigallery2/demo/broken image.JPG": "empty",  # 2,380 zero bytes
    "lychee/Samples/sync/test-folder/somefile": "empty",
    "pigallery2/test-assets/imageSizeError.jpg": "truncated",  # scan data ends early
    "pigallery2/test-assets/edge_case_exif_data/corrupted_city.JPG": "corrupt",
    "exiftool-t/QuickTime.heic": "truncated",  # the roll's truncated HEIF
    "exiftool-t/Matroska.mkv": "truncated",  # stripped media data
    "lychee/Samples/pdf.pdf": "unsupported_type",
    "lychee/Samples/xcf.xcf": "unsupported_type",
    "exiftool-t/Photoshop.psd": "unsupported_type",
    "immich-test-assets/formats/jxl/8bit-sRGB.jxl": "unsupported_type",
}
# Extensions that lie (or are missing): accepted, with the MIME type the content says.
LYING = {
    "lychee/Samples/mongolia": ("image", "image/jpeg"),
    "lychee/Samples/tiff": ("image", "image/tiff"),
    "pigallery2/test-assets/wild-2-small.jpg_original": ("image", "image/jpeg"),
    "pigallery2/test-assets/sidecar/bunny_1sec.mp4": ("video", "video/quicktime"),
    "pigallery2/test-assets/sidecar/bunny_1sec_v2.mp4": ("video", "video/quicktime"),
    "pillow-heif/heif_other/cat.hif": ("image", "image/heic"),
    "exif-samples/heic/samplefilehub.heif": ("image", "image/heic"),
}


def _exiftool_mimes(paths: list[Path]) -> dict[Path, str | None]:
    try:
        from camroll.media.exiftool import shared_exiftool

        rows = shared_exiftool().read(paths)
    except Exception:  # the module is optional for this test: sniffing alone must suffice
        return {}
    return {Path(r["SourceFile"]): r.get("File:MIMEType") for r in rows}


def _process(path: Path, mime: str | None) -> tuple[str, str | None, Renditions | str]:
    """(outcome, kind, renditions-or-detail); outcome is "ok" or a reason code."""
    try:
        kind = classify(path, mime, decode=False)  # the pipeline: headers now, pixels below
        return "ok", kind, render_previews(path, kind)
    except Quarantined as q:
        return q.reason, None, q.detail


@pytest.fixture(scope="module")
def sweep() -> dict[str, tuple[str, str | None, Renditions | str]]:
    files = sorted(p for p in ROLL.rglob("*") if p.is_file())
    mimes = _exiftool_mimes(files)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda p: _process(p, mimes.get(p)), files))
    out = {str(p.relative_to(ROLL)): r for p, r in zip(files, results, strict=True)}

    by_reason = collections.Counter(r[0] for r in out.values())
    by_kind = collections.Counter(r[1] for r in out.values() if r[1])
    print(f"\n{len(files)} files in {time.monotonic() - started:.1f} s")
    print(f"{'outcome':<20}{'count':>6}")
    for reason, n in by_reason.most_common():
        print(f"{reason:<20}{n:>6}")
    print(f"{'kind':<20}{'count':>6}")
    for kind, n in by_kind.most_common():
        print(f"{kind:<20}{n:>6}")
    for rel, (outcome, _, detail) in sorted(out.items()):
        if outcome != "ok" and Path(rel).suffix.lower() not in SIDECARS:
            print(f"  {outcome:<18} {rel}: {detail}")
    return out


def test_sweep_quarantines_known_broken_files(sweep) -> None:
    for rel, reason in EXPECTED_BROKEN.items():
        assert sweep[rel][0] == reason, (rel, sweep[rel])


def test_sweep_accepts_lying_extensions(sweep) -> None:
    for rel, (kind, mime) in LYING.items():
        assert sweep[rel][:2] == ("ok", kind), (rel, sweep[rel])
        assert sniff(ROLL / rel) == mime


def test_sweep_renders_every_camera_photo(sweep) -> None:
    # Includes exif-samples/jpg/invalid/* and corrupted.jpg: their EXIF trips EXIF parsers but
    # their pixels decode completely, so they are photos, not quarantine.
    photos = [
        rel
        for rel in sweep
        if Path(rel).suffix.lower() in PHOTO_SUFFIXES and rel not in EXPECTED_BROKEN
    ]
    assert len(photos) > 330
    bad = {rel: sweep[rel] for rel in photos if sweep[rel][0] != "ok"}
    assert not bad
    for rel in photos:
        r = sweep[rel][2]
        assert isinstance(r, Renditions) and r.preview[:3] == b"\xff\xd8\xff" and not r.poster
    for rel in ("exif-samples/jpg/corrupted.jpg", "exif-samples/jpg/invalid/image00971.jpg"):
        assert sweep[rel][0] == "ok"


def test_sweep_videos_get_posters(sweep) -> None:
    videos = [
        rel
        for rel in sweep
        if Path(rel).suffix.lower() in VIDEO_SUFFIXES and not rel.startswith("exiftool-t/")
    ]
    assert len(videos) >= 10
    for rel in videos:
        outcome, kind, r = sweep[rel]
        assert (outcome, kind) == ("ok", "video"), (rel, r)
        assert isinstance(r, Renditions) and r.poster


def test_sweep_refuses_sidecars_and_documents(sweep) -> None:
    for rel, (outcome, _, _) in sweep.items():
        if Path(rel).suffix.lower() in SIDECARS | {".pdf", ".xcf", ".psd", ".jxl"}:
            assert outcome == "unsupported_type", rel
    assert "JPEG XL" in str(sweep["immich-test-assets/formats/jxl/8bit-sRGB.jxl"][2])


def test_raw_renders_from_embedded_preview(sweep) -> None:
    outcome, kind, r = sweep["pigallery2/image-formats/test.dng"]
    assert (outcome, kind) == ("ok", "raw")
    assert isinstance(r, Renditions) and max(r.width, r.height) > 256
    # exiftool-t's RAWs have their image data stripped: no preview, so quarantined, not crashed.
    assert sweep["exiftool-t/Nikon.nef"][0] == "corrupt"


# -- built fixtures --------------------------------------------------------------------------


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose IHDR declares `width` x `height` but whose data is a few bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(30_000, 30_000), (15_000, 14_000)])
def test_decompression_bomb_refused_before_decoding(tmp_path: Path, size) -> None:
    # 900 MP trips Pillow's own guard; 210 MP only ours (limit 200 MP): both are refused.
    path = _png_header_only(tmp_path / "bomb.png", *size)
    started = time.monotonic()
    for attempt in (lambda: classify(path, None), lambda: render_previews(path, "image")):
        with pytest.raises(Quarantined) as exc:
            attempt()
        assert exc.value.reason == "decompression_bomb"
        assert f"{size[0]:,}" in exc.value.detail or "bomb" in exc.value.detail
    assert time.monotonic() - started < 1.0


def test_real_200_megapixel_photo_is_not_a_bomb() -> None:
    # 16320 x 12240 = 199.8 MP: a real phone photo, under the limit, must not be refused.
    path = ROLL / "pillow-heif/heif_special/200MP.heic"
    assert classify(path, None, decode=False) == "image"


@pytest.mark.parametrize(
    "rel",
    [
        "pigallery2/demo/IMG_1252.jpg",
        "lychee/Samples/classic-car.heic",
        "pigallery2/test-assets/video.mp4",
        "lychee/Samples/train.mov",
        "lychee/Samples/png.png",
        "exif-samples/jpg/Canon_40D.jpg",
        # libheif decodes these halves without complaint (missing tiles are filled in): only
        # the ISO-BMFF box sizes tell that the file was cut.
        "exif-samples/heic/mobile/iphone_13_pro_max.HEIC",
        "pigallery2/test-assets/orientation/IMG_0307.HEIC",
    ],
)
@pytest.mark.parametrize("keep", [0.5, 4096])
def test_truncated_copies_are_quarantined(tmp_path: Path, rel: str, keep: float) -> None:
    data = (ROLL / rel).read_bytes()
    cut = tmp_path / Path(rel).name
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(Quarantined) as exc:
        # As the ingest pipeline runs it: headers only, then the one decode in render_previews.
        kind = classify(cut, None, decode=False)
        render_previews(cut, kind)
    assert exc.value.reason in {"truncated", "corrupt"}, exc.value
    assert exc.value.detail


def test_noise_and_text_named_like_photos_are_unsupported(tmp_path: Path) -> None:
    noise = tmp_path / "IMG_0002.JPG"
    noise.write_bytes(bytes(range(256)) * 40)
    for path in (noise, ROLL / "exif-samples/jpg/gps/README"):
        with pytest.raises(Quarantined) as exc:
            classify(path, None)
        assert exc.value.reason in ("unsupported_type", "corrupt"), exc.value


def test_empty_and_zero_files(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"\0" * 5000)
    for name in ("a.jpg", "b.jpg"):
        with pytest.raises(Quarantined) as exc:
            classify(tmp_path / name, None)
        assert exc.value.reason == "empty"


def test_file_over_upload_limit_is_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    small = Settings(max_upload_bytes=1000)
    monkeypatch.setattr("camroll.media.validate.get_settings", lambda: small)
    with pytest.raises(Quarantined) as exc:
        classify(ROLL / "lychee/Samples/png.png", None)
    assert exc.value.reason == "too_large"


def test_content_wins_over_extension(tmp_path: Path) -> None:
    png_as_jpg = tmp_path / "photo.jpg"
    shutil.copy(ROLL / "lychee/Samples/png.png", png_as_jpg)
    jpg_as_png = tmp_path / "photo.png"
    shutil.copy(ROLL / "pigallery2/demo/IMG_1252.jpg", jpg_as_png)
    heic_as_jpg = tmp_path / "heic.jpg"
    shutil.copy(ROLL / "lychee/Samples/classic-car.heic", heic_as_jpg)
    text_as_jpg = tmp_path / "notes.jpg"
    text_as_jpg.write_text("not a photo\n")

    assert sniff(png_as_jpg) == "image/png"
    assert sniff(jpg_as_png) == "image/jpeg"
    assert sniff(heic_as_jpg) == "image/heic"
    for p in (png_as_jpg, jpg_as_png, heic_as_jpg):
        assert classify(p, None) == "image"
        assert Image.open(io.BytesIO(render_previews(p, "image").preview)).size
    with pytest.raises(Quarantined) as exc:
        classify(text_as_jpg, "text/plain")
    assert exc.value.reason == "unsupported_type"


@pytest.mark.parametrize(
    ("rel", "mime", "kind"),
    [
        ("exif-samples/jpg/Canon_40D.jpg", "image/jpeg", "image"),
        ("lychee/Samples/png.png", "image/png", "image"),
        ("lychee/Samples/gif.gif", "image/gif", "image"),
        ("lychee/Samples/webp.webp", "image/webp", "image"),
        ("lychee/Samples/tiff.tif", "image/tiff", "image"),
        ("immich-test-assets/formats/avif/8bit-sRGB.avif", "image/avif", "image"),
        ("immich-test-assets/formats/heic/IMG_2682.heic", "image/heic", "image"),
        ("pigallery2/image-formats/test.dng", "image/x-adobe-dng", "raw"),
        ("exiftool-t/Nikon.nef", "image/x-nikon-nef", "raw"),
        ("exiftool-t/CanonRaw.cr2", "image/x-canon-cr2", "raw"),
        ("exiftool-t/CanonRaw.cr3", "image/x-canon-cr3", "raw"),
        ("exiftool-t/FujiFilm.raf", "image/x-fujifilm-raf", "raw"),
        ("exiftool-t/Panasonic.rw2", "image/x-panasonic-rw2", "raw"),
        ("pigallery2/test-assets/video.mp4", "video/mp4", "video"),
        ("lychee/Samples/train.mov", "video/quicktime", "video"),
        ("pigallery2/test-assets/video_mkv.mkv", "video/x-matroska", "video"),
    ],
)
def test_sniff_and_kind(rel: str, mime: str, kind: str) -> None:
    assert sniff(ROLL / rel) == mime
    assert classify(ROLL / rel, mime, decode=False) == kind
