"""Both renditions of a JPEG from one libvips decode (pyvips with pyvips-binary), and of
other stills from Pillow's decode.

What ingest mostly receives is a JPEG, and its previews were most of process_asset's CPU: a Pillow
draft decode, a LANCZOS resize, an ICC transform, an optimised JPEG, then a second resize and a
WebP. libvips' `thumbnail` shrinks on load (the JPEG decoder's DCT scaling plus a fast reduce),
turns the pixels upright from the EXIF orientation, and the thumbnail is cut from the preview
already in memory. Colour: a profile that is not sRGB (an iPhone's Display P3) is converted to
sRGB, an sRGB or absent one is not touched (the transform costs more than the resize).

Other stills (HEIC, which this libvips build cannot decode, PNG, TIFF...) are decoded by Pillow
and pillow-heif as before, and their pixels finished here (`render_pixels`).

Same contract as the Pillow path (`previews.render_previews`): upright 8-bit sRGB RGB, longest
side <= preview_px (progressive JPEG, quality 85) and <= thumbnail_px (WebP, quality 80), no
metadata kept. What this path does not take returns None and Pillow renders it: CMYK, an
orientation known only from ExifTool, and any file libvips fails on or that ends before its
end-of-image marker, so the verdict on a damaged file (truncated, corrupt) stays Pillow's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from camroll.media.renditions import Renditions
from camroll.media.validate import out_of_memory

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

PREVIEW_QUALITY = 85
THUMBNAIL_QUALITY = 80
# WebP effort 2, not 4: on 60 large-roll thumbnails 4.8 ms instead of 8.3 ms of CPU each, for
# 3% more bytes (7.1 KiB vs 6.9) and 0.24 dB less PSNR at the same quality setting.
THUMBNAIL_EFFORT = 2
_vips: Any = None


def _pyvips() -> Any:
    global _vips
    if _vips is None:
        import pyvips

        # Files are private temp paths, often reused names: an operation cache could hand back
        # another file's pixels. One thread per decode: ingest runs decodes side by side.
        pyvips.cache_set_max(0)
        pyvips.concurrency_set(1)
        _vips = pyvips
    return _vips


def _is_srgb(icc: bytes) -> bool:
    import io

    from PIL import ImageCms

    try:
        desc = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))
    except (ImageCms.PyCMSError, OSError, ValueError):
        return True  # a broken profile is ignored, as the Pillow path does
    return "srgb" in desc.lower().replace(" ", "")


def _ends_whole(path: Path) -> bool:
    """Whether the file ends with the JPEG end-of-image marker (zero padding allowed)."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 4096))
        tail = f.read().rstrip(b"\x00")
    return tail.endswith(b"\xff\xd9")


def render_jpeg(
    path: Path, preview_px: int, thumb_px: int, orientation: int | None
) -> Renditions | None:
    if not _ends_whole(path):
        return None  # a cut-off JPEG: Pillow gives the verdict (libvips shows what it has)
    vips = _pyvips()
    try:
        header = vips.Image.new_from_file(str(path), access="sequential")
        has_orientation = header.get_typeof("orientation") != 0
        if header.interpretation == "cmyk" or header.bands not in (1, 3):
            return None
        if not has_orientation and orientation not in (None, 1):
            return None
        icc = (
            bytes(header.get("icc-profile-data")) if header.get_typeof("icc-profile-data") else b""
        )
        image = vips.Image.thumbnail(str(path), preview_px, height=preview_px, size="down")
        return _encode(image, icc, thumb_px)
    except vips.Error as exc:
        if (costly := out_of_memory(exc)) is not None:  # Pillow would call it a broken stream
            raise costly from None
        return None  # Pillow decodes it again and gives the verdict (truncated, corrupt, ...)


def render_pixels(image: PILImage, preview_px: int, thumb_px: int) -> Renditions | None:
    """Both renditions of an upright 8-bit RGB or L still that Pillow decoded (HEIC through
    pillow-heif, PNG, TIFF...), made as libvips' `thumbnail` makes a JPEG's: an integer box
    shrink (Pillow's `reduce`, before the pixels are copied out), then a Lanczos reduce, the
    colour conversion and both encodes in libvips. Pillow's one full-size Lanczos resize cost a
    12 MP HEIC about half as much CPU again as its decode (tail 314 -> 120 ms, load ~8). None
    for any other mode, or when libvips fails: Pillow renders it as before."""
    if image.mode not in ("RGB", "L"):
        return None
    icc = image.info.get("icc_profile") or b""
    # The preview's size from the decoded size, as the Pillow path rounds it (not the shrunk).
    scale = min(1.0, preview_px / max(image.size))
    width, height = (max(1, round(side * scale)) for side in image.size)
    if (shrink := max(image.size) // preview_px) >= 2:  # still >= preview_px: Lanczos finishes
        image = image.reduce(shrink)
    vips = _pyvips()
    try:
        pixels = vips.Image.new_from_memory(
            image.tobytes(), image.width, image.height, len(image.mode), "uchar"
        ).copy(interpretation="srgb" if image.mode == "RGB" else "b-w")
        if icc:
            pixels.set_type(vips.GValue.blob_type, "icc-profile-data", icc)
        preview = pixels.thumbnail_image(width, height=height, size="force")
        return _encode(preview, icc, thumb_px)
    except vips.Error as exc:
        if (costly := out_of_memory(exc)) is not None:
            raise costly from None
        return None


def _encode(image: Any, icc: bytes, thumb_px: int) -> Renditions:
    """The preview (already fitted) in sRGB as a progressive JPEG, and the thumbnail cut from
    it in memory as a WebP."""
    if icc and not _is_srgb(icc):
        image = image.icc_transform("srgb", embedded=True, intent="perceptual")
    if image.bands == 1:
        image = image.colourspace("srgb")
    image = image.cast("uchar").copy_memory()  # decoded once; both saves read this
    preview = image.jpegsave_buffer(
        Q=PREVIEW_QUALITY, interlace=True, optimize_coding=True, keep="none"
    )
    thumb = image.thumbnail_image(thumb_px, height=thumb_px, size="down")
    webp = thumb.webpsave_buffer(Q=THUMBNAIL_QUALITY, effort=THUMBNAIL_EFFORT, keep="none")
    return Renditions(
        thumbnail=webp, preview=preview, width=image.width, height=image.height, poster=False
    )
