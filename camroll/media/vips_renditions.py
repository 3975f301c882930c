"""Both renditions of a JPEG from one libvips decode (pyvips with pyvips-binary).

What ingest mostly receives is a JPEG, and its previews were most of process_asset's CPU: a Pillow
draft decode, a LANCZOS resize, an ICC transform, an optimised JPEG, then a second resize and a
WebP. libvips' `thumbnail` shrinks on load (the JPEG decoder's DCT scaling plus a fast reduce),
turns the pixels upright from the EXIF orientation, and the thumbnail is cut from the preview
already in memory. Colour: a profile that is not sRGB (an iPhone's Display P3) is converted to
sRGB, an sRGB or absent one is not touched (the transform costs more than the resize).

Same contract as the Pillow path (`previews.render_previews`): upright 8-bit sRGB RGB, longest
side <= preview_px (progressive JPEG, quality 85) and <= thumbnail_px (WebP, quality 80), no
metadata kept. What this path does not take returns None and Pillow renders it: CMYK, an
orientation known only from ExifTool, and any file libvips fails on or that ends before its
end-of-image marker, so the verdict on a damaged file (truncated, corrupt) stays Pillow's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from camroll.media.renditions import Renditions
from camroll.media.validate import out_of_memory

PREVIEW_QUALITY = 85
THUMBNAIL_QUALITY = 80
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
        if icc and not _is_srgb(icc):
            image = image.icc_transform("srgb", embedded=True, intent="perceptual")
        if image.bands == 1:
            image = image.colourspace("srgb")
        image = image.cast("uchar").copy_memory()  # decoded once; both saves read this
        preview = image.jpegsave_buffer(
            Q=PREVIEW_QUALITY, interlace=True, optimize_coding=True, keep="none"
        )
        thumb = image.thumbnail_image(thumb_px, height=thumb_px, size="down")
        webp = thumb.webpsave_buffer(Q=THUMBNAIL_QUALITY, effort=4, keep="none")
    except vips.Error as exc:
        if (costly := out_of_memory(exc)) is not None:  # Pillow would call it a broken stream
            raise costly from None
        return None  # Pillow decodes it again and gives the verdict (truncated, corrupt, ...)
    return Renditions(
        thumbnail=webp, preview=preview, width=image.width, height=image.height, poster=False
    )
