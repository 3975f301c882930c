"""Thumbnail (WebP) and preview (JPEG) renditions of a photo, RAW or video, from one decode.

The decode here is also the pixel-level validation (see `validate`): a file that cannot be decoded
raises `Quarantined`. The thumbnail keeps the aspect ratio (longest side `thumbnail_px`): a timeline
grid can crop in CSS, but a crop baked in here could never be undone.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageCms, ImageOps

from camroll.config import get_settings
from camroll.media.renditions import Renditions
from camroll.media.validate import (
    Quarantined,
    decode_image,
    decode_video_frame,
    sniff,
)

if TYPE_CHECKING:  # the decode helper imports this module: no database code at its start
    from sqlalchemy.orm import Session

    from camroll.db.models import Asset

PREVIEW_QUALITY = 85
THUMBNAIL_QUALITY = 80
# Largest embedded JPEG first: JpgFromRaw is usually full size, PreviewImage mid, Thumbnail tiny.
RAW_PREVIEW_TAGS = ("JpgFromRaw", "PreviewImage", "ThumbnailImage")

_SRGB = ImageCms.createProfile("sRGB")


def render_previews(
    path: Path, kind: str, orientation: int | None = None, *, raw_jpeg: bytes | None = None
) -> Renditions:
    """Render both renditions; raise `Quarantined` when the pixels cannot be decoded.

    This decodes in the calling process; ingest goes through `camroll.media.deadline`, which
    runs it in a child process with a time limit. `raw_jpeg` is a RAW file's embedded preview
    when already extracted (`raw_preview`), so the child never needs ExifTool.

    `orientation` (EXIF 1-8, e.g. from ExifTool) is applied to RAW previews, whose embedded JPEG
    carries no reliable orientation of its own. Other images use the orientation in their own
    metadata, which Pillow and pillow-heif interpret per format (libheif has already applied a
    HEIC's irot/imir, so re-applying ExifTool's Orientation would rotate twice); `orientation` is
    only a fallback there when the decoded image states none.
    """
    settings = get_settings()
    if kind == "video":
        image = decode_video_frame(path)
        poster = True
    elif kind == "raw":
        if raw_jpeg is None:
            raw_jpeg, orientation = raw_preview(path, orientation)
        with decode_image(io.BytesIO(raw_jpeg), "image/jpeg", settings.preview_px) as im:
            image = apply_orientation(im, orientation)
        poster = False
    elif kind == "image":
        mime = sniff(path) or "image/jpeg"
        if mime == "image/jpeg" and settings.previews_libvips:  # most of a roll: one decode
            from camroll.media.vips_renditions import render_jpeg

            done = render_jpeg(path, settings.preview_px, settings.thumbnail_px, orientation)
            if done is not None:
                return done
        with decode_image(path, mime, settings.preview_px) as decoded:
            image = _upright(decoded, orientation)
            image.info.setdefault("icc_profile", decoded.info.get("icc_profile"))
        if settings.previews_libvips:  # HEIC and the rest: Pillow decodes, libvips resizes
            from camroll.media.vips_renditions import render_pixels

            done = render_pixels(image, settings.preview_px, settings.thumbnail_px)
            if done is not None:
                return done
        poster = False
    else:
        raise ValueError(f"unknown media kind {kind!r}")
    try:
        return _encode(image, settings.preview_px, settings.thumbnail_px, poster)
    except Quarantined:
        raise
    except (OSError, ValueError) as exc:  # lazy formats can still fail here (e.g. odd modes)
        raise Quarantined("corrupt", f"The image could not be converted: {exc}.") from exc


def _upright(im: Image.Image, fallback: int | None) -> Image.Image:
    exif_orientation = im.getexif().get(0x0112)
    if exif_orientation:
        return ImageOps.exif_transpose(im)
    return apply_orientation(im, fallback)


def apply_orientation(im: Image.Image, orientation: int | None) -> Image.Image:
    """Rotate/flip pixels so an image with EXIF `orientation` displays upright."""
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation or 1)
    return im.transpose(method) if method is not None else im


def raw_preview(path: Path, orientation: int | None) -> tuple[bytes, int | None]:
    """The largest embedded JPEG of a RAW file and the orientation to show it upright (the
    RAW's own when `orientation` is None). ExifTool reads both, under its own time limit."""
    from camroll.media.exiftool import shared_exiftool

    et = shared_exiftool()
    candidates = [data for tag in RAW_PREVIEW_TAGS if (data := et.extract_binary(path, tag))]
    candidates = [d for d in candidates if d[:3] == b"\xff\xd8\xff"]
    if not candidates:
        raise Quarantined(
            "corrupt",
            "The RAW file has no embedded JPEG preview (JpgFromRaw, PreviewImage or "
            "ThumbnailImage) to render; raw sensor data is not decoded.",
        )
    best = max(candidates, key=len)
    if orientation is None:
        info = et.read([path])[0]
        orientation = next(
            (v for k, v in info.items() if k.endswith(":Orientation") and isinstance(v, int)), None
        )
    return best, orientation


def _eight_bit(im: Image.Image) -> Image.Image:
    """One of L, LA, RGB, RGBA, CMYK, so resizing and lcms work on it."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit or float greyscale: keep the top 8 bits rather than clipping at 255.
        return im.convert("I").point(lambda v: v / 256).convert("L")
    if im.mode in ("P", "PA", "RGBa", "La"):
        return im.convert("RGBA")
    if im.mode in ("1", "YCbCr", "LAB", "HSV", "RGBX"):
        return im.convert("RGB")
    return im


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """8-bit sRGB RGB: embedded ICC profile honoured, alpha flattened onto white."""
    if im.mode in ("RGBA", "LA"):
        base = Image.new("RGBA", im.size, (255, 255, 255, 255))
        base.alpha_composite(im.convert("RGBA"))
        # Flattened in the source space, so the profile below still describes these pixels.
        im = base.convert("L" if icc and _profile_space(icc) == "GRAY" else "RGB")
    if icc:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken or mismatched profile is ignored, not a reason to quarantine
    return im.convert("RGB")


def _profile_space(icc: bytes) -> str:
    return icc[16:20].decode("ascii", "replace").strip()


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _encode(image: Image.Image, preview_px: int, thumb_px: int, poster: bool) -> Renditions:
    icc = image.info.get("icc_profile") or None
    image = _eight_bit(image)
    # Resize before the colour transform: fewer pixels through lcms, no visible difference.
    target = _fit(image.size, preview_px)
    if target != image.size:
        image = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    preview = _to_srgb(image, icc)
    buf = io.BytesIO()
    preview.save(buf, "JPEG", quality=PREVIEW_QUALITY, progressive=True, optimize=True)
    thumb = preview.resize(_fit(preview.size, thumb_px), Image.Resampling.LANCZOS)
    tbuf = io.BytesIO()
    thumb.save(tbuf, "WEBP", quality=THUMBNAIL_QUALITY, method=4)
    return Renditions(
        thumbnail=tbuf.getvalue(),
        preview=buf.getvalue(),
        width=preview.width,
        height=preview.height,
        poster=poster,
    )


def preview_image(session: Session, asset: Asset) -> Image.Image | None:
    """The asset's stored preview (upright, sRGB), decrypted and decoded; None before it is made."""
    from sqlalchemy import select

    from camroll.db.models import Rendition
    from camroll.storage.blobs import read_decrypted

    rendition = session.scalars(
        select(Rendition).where(Rendition.asset_id == asset.id, Rendition.kind == "preview")
    ).first()
    if rendition is None:
        return None
    data = b"".join(read_decrypted(session, asset.user_id, rendition.blob_key))
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")
