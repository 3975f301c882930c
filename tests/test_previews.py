"""Renditions: sizes, formats, orientation, colour, draft decoding and video posters."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from camroll.media.previews import Renditions, render_previews
from camroll.media.validate import Quarantined, classify, decode_image

ROLL = Path(__file__).resolve().parents[2] / "shared" / "data" / "camera-roll"
if not ROLL.is_dir():
    ROLL = Path("/work/shared/data/camera-roll")


ORIENT = ROLL / "exif-samples/jpg/orientation"


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _render(path: Path) -> Renditions:
    return render_previews(path, classify(path, None, decode=False))


@pytest.mark.parametrize("shape", ["landscape", "portrait"])
def test_all_eight_orientations_come_out_upright(shape: str) -> None:
    # README: "Images to test proper reading of orientation tags"; _1 is stored upright and the
    # others store the same picture rotated/flipped with the matching EXIF Orientation.
    reference = _open(render_previews(ORIENT / f"{shape}_1.jpg", "image").preview).convert("L")
    assert (reference.width > reference.height) == (shape == "landscape")
    for n in range(2, 9):
        got = _open(render_previews(ORIENT / f"{shape}_{n}.jpg", "image").preview).convert("L")
        assert got.size == reference.size, n
        diff = ImageStat.Stat(ImageChops.difference(got, reference)).mean[0]
        assert diff < 8, (n, diff)  # a wrong rotation or flip differs by ~50+


def test_orientation_of_pigallery_set_and_iphone_heic() -> None:
    base = ROLL / "pigallery2/test-assets/orientation"
    for name in ("Landscape", "Portrait"):
        for n in range(1, 9):
            r = render_previews(base / f"{name}_{n}.jpg", "image")
            assert (r.width > r.height) == (name == "Landscape"), (name, n)
    # iPhone HEIC stored 5712x4284 with Orientation 6: libheif rotates it already (irot), so it
    # must come out portrait, not rotated a second time.
    r = render_previews(base / "IMG_0307.HEIC", "image", orientation=6)
    assert r.height > r.width


def test_rendition_formats_and_sizes() -> None:
    r = _render(ROLL / "pigallery2/demo/IMG_1252.jpg")
    preview, thumb = _open(r.preview), _open(r.thumbnail)
    assert preview.format == "JPEG" and preview.mode == "RGB"
    assert preview.info.get("progressive") or preview.info.get("progression")
    assert max(preview.size) == 1440 and (r.width, r.height) == preview.size
    assert thumb.format == "WEBP" and max(thumb.size) == 256
    # Fitted, not cropped: same aspect ratio as the preview.
    assert abs(thumb.width / thumb.height - preview.width / preview.height) < 0.02
    assert not r.poster


def test_small_image_is_not_upscaled() -> None:
    r = _render(ROLL / "lychee/Samples/png.png")  # 400 x 300
    assert (r.width, r.height) == (400, 300)
    assert max(_open(r.thumbnail).size) == 256


def test_draft_mode_decodes_large_jpeg_at_reduced_size() -> None:
    path = ROLL / "lychee/Samples/train.jpg"  # 4032 x 3024
    with decode_image(path, "image/jpeg", 1440) as im:
        # DCT scaling 1/2 is the smallest that still covers a 1440 px preview.
        assert im.size == (2016, 1512)
    with decode_image(path, "image/jpeg", 256) as im:
        assert im.size == (504, 378)  # 1/8


@pytest.mark.parametrize(
    "rel",
    [
        "lychee/Samples/train.jpg",  # 4032 x 3024, shrunk on load
        "pigallery2/demo/IMG_1252.jpg",
        "exif-samples/jpg/orientation/portrait_6.jpg",  # turned upright from its EXIF
        "pigallery2/test-assets/orientation/Landscape_8.jpg",
    ],
)
def test_jpegs_render_through_libvips_like_the_pillow_path(
    rel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.media import vips_renditions

    path = ROLL / rel
    fast = vips_renditions.render_jpeg(path, 1440, 256, None)
    assert fast is not None  # a whole JPEG takes the libvips path
    assert _render(path).preview == fast.preview  # and render_previews sends it there
    monkeypatch.setattr(vips_renditions, "render_jpeg", lambda *a: None)  # Pillow's turn
    slow = _render(path)
    assert (fast.width, fast.height) == (slow.width, slow.height)
    a, b = _open(fast.preview), _open(slow.preview)
    assert a.mode == "RGB" and (a.info.get("progressive") or a.info.get("progression"))
    assert max(ImageStat.Stat(ImageChops.difference(a, b)).mean) < 4
    ta, tb = _open(fast.thumbnail), _open(slow.thumbnail)
    assert ta.format == "WEBP" and ta.size == tb.size


def test_cmyk_jpeg_comes_out_srgb(tmp_path: Path) -> None:
    src = Image.open(ROLL / "lychee/Samples/png.png").convert("RGB")
    cmyk = tmp_path / "cmyk.jpg"
    src.convert("CMYK").save(cmyk, "JPEG", quality=95)
    assert Image.open(cmyk).mode == "CMYK"
    out = _open(_render(cmyk).preview)
    assert out.mode == "RGB"
    diff = ImageStat.Stat(ImageChops.difference(out, src)).mean
    assert max(diff) < 12, diff


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    # A Display P3 profile from a real iPhone JPEG, attached to a flat colour.
    p3 = Image.open(ROLL / "pigallery2/test-assets/imageSizeError.jpg").info["icc_profile"]
    path = tmp_path / "p3.jpg"
    Image.new("RGB", (600, 400), (40, 180, 60)).save(path, "JPEG", quality=100, icc_profile=p3)
    out = _open(_render(path).preview)
    assert out.mode == "RGB" and "icc_profile" not in out.info
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), (40, 180, 60)),
        ImageCms.ImageCmsProfile(io.BytesIO(p3)),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))
    got = out.getpixel((300, 200))
    assert expected != (40, 180, 60)  # P3 green really is different in sRGB
    assert all(abs(a - b) <= 3 for a, b in zip(got, expected, strict=True)), (got, expected)


@pytest.mark.parametrize(
    "rel",
    [
        "pigallery2/image-formats/test.png",  # RGBA
        "pigallery2/image-formats/test.webp",  # RGBA
        "exif-samples/tiff/BSG1.tiff",  # RGBA with an LCD profile
        "exiftool-t/GeoTiff.tif",  # palette
        "exiftool-t/PNG.png",  # 1-bit
        "lychee/Samples/gif.gif",
        "immich-test-assets/formats/avif/10bit-HDR-P3-nclx.avif",
        "pillow-heif/heif_other/nokia/alpha.heic",
    ],
)
def test_odd_modes_become_rgb(rel: str) -> None:
    out = _open(_render(ROLL / rel).preview)
    assert out.mode == "RGB"


def test_alpha_is_flattened_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (300, 200), (255, 0, 0, 0)).save(path)
    out = _open(_render(path).preview)
    assert all(c > 245 for c in out.getpixel((150, 100)))


@pytest.mark.parametrize(
    ("rel", "portrait"),
    [
        ("pigallery2/test-assets/video_rotate.mp4", True),  # 80x60 stored, Rotation 270
        ("pigallery2/test-assets/sidecar/20240128_120909.mp4", True),  # 80x46, Rotation 90
        ("pigallery2/test-assets/video.mp4", False),
        ("lychee/Samples/train.mov", None),
        ("pigallery2/test-assets/video_mkv.mkv", None),
    ],
)
def test_video_poster(rel: str, portrait: bool | None) -> None:
    r = render_previews(ROLL / rel, "video")
    assert r.poster
    assert _open(r.thumbnail).format == "WEBP"
    if portrait is not None:
        assert (r.height > r.width) == portrait


def test_raw_uses_largest_embedded_preview_and_orientation() -> None:
    path = ROLL / "pigallery2/image-formats/test.dng"
    upright = render_previews(path, "raw", orientation=1)
    turned = render_previews(path, "raw", orientation=6)
    assert (turned.width, turned.height) == (upright.height, upright.width)


def test_input_file_is_never_modified(tmp_path: Path) -> None:
    path = tmp_path / "x.jpg"
    path.write_bytes((ROLL / "exif-samples/jpg/orientation/landscape_6.jpg").read_bytes())
    before = path.read_bytes(), path.stat().st_mtime_ns
    render_previews(path, "image")
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


def test_decode_failure_raises_quarantined(tmp_path: Path) -> None:
    data = (ROLL / "pigallery2/demo/IMG_1401.jpg").read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Quarantined) as exc:
        render_previews(path, "image")
    assert exc.value.reason == "truncated"
    assert "truncated" in exc.value.detail and f"{len(data) // 2:,}" in exc.value.detail
