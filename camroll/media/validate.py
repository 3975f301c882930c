"""Decide from a file's content whether it is camera-roll media, and of which kind.

Three steps, cheapest first:

1. `sniff` reads at most a few KiB of magic numbers and names the MIME type.
2. `classify(path, mime, decode=False)` adds the checks that need only headers: empty file,
   supported type, and pixel count against `max_image_pixels` (decompression bombs are refused
   before any pixel is decoded).
3. The full decode that proves the pixels are intact is the expensive part, so it is done once:
   `render_previews` decodes through `decode_image` / `decode_video_frame` here and raises
   `Quarantined` on failure. The ingest pipeline calls `classify(..., decode=False)` and then
   `render_previews`; `classify(..., decode=True)` (the default) does the decode itself for callers
   that want a verdict without renditions (`camroll inspect`).

JPEGs are decoded in draft mode (reduced DCT scaling) at the preview size: every entropy-coded byte
is still read, so truncation and corruption are caught at a fraction of the cost.
"""

from __future__ import annotations

import io
import os
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO, Literal

from PIL import Image, ImageFile, UnidentifiedImageError

from camroll.config import get_settings

try:  # HEIC/HEIF through libheif; Pillow decodes AVIF natively.
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
    pass


Kind = Literal["image", "raw", "video"]
Reason = Literal[
    "empty",
    "truncated",
    "corrupt",
    "unsupported_type",
    "decompression_bomb",
    "too_large",
    "too_costly",
    "processing_failed",
]


class _Unnamed(io.RawIOBase):
    """A read-only file that does not know its own path."""

    def __init__(self, path: Path) -> None:
        self._f = io.FileIO(os.open(path, os.O_RDONLY), "rb", closefd=True)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._f.readinto(buffer)

    def seek(self, pos: int, whence: int = 0) -> int:
        return self._f.seek(pos, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()
        super().close()


def open_unnamed(path: Path) -> io.BufferedReader:
    """Open `path` for a decoder without telling it the path. Decoders put their input's name
    into their error messages, and those become quarantine details the owner reads: a server
    path must never be among them, so it is never handed over."""
    return io.BufferedReader(_Unnamed(path))


class Quarantined(Exception):
    """The file is not usable media; `reason` is a stable code, `detail` a sentence for people."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Reason = reason
        self.detail = detail


IMAGE_MIMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WebP",
    "image/tiff": "TIFF",
    "image/heic": "HEIC",
    "image/heif": "HEIF",
    "image/heic-sequence": "HEIC",
    "image/heif-sequence": "HEIF",
    "image/avif": "AVIF",
}
RAW_MIMES = {
    "image/x-adobe-dng": "DNG",
    "image/x-nikon-nef": "NEF",
    "image/x-canon-cr2": "CR2",
    "image/x-canon-cr3": "CR3",
    "image/x-sony-arw": "ARW",
    "image/x-olympus-orf": "ORF",
    "image/x-panasonic-rw2": "RW2",
    "image/x-fujifilm-raf": "RAF",
    "image/x-pentax-pef": "PEF",
    "image/x-samsung-srw": "SRW",
}
VIDEO_MIMES = {
    "video/mp4": "MP4",
    "video/quicktime": "QuickTime",
    "video/3gpp": "3GP",
    "video/3gpp2": "3GP",
    "video/x-matroska": "Matroska",
    "video/webm": "WebM",
}
# Recognised but refused: named so the quarantine detail can say what the file is.
UNSUPPORTED_NAMES = {
    "application/pdf": "a PDF document",
    "image/x-xcf": "a GIMP XCF image",
    "image/vnd.adobe.photoshop": "a Photoshop PSD file",
    "image/jxl": "a JPEG XL image (this Pillow build has no JPEG XL decoder)",
    "image/jp2": "a JPEG 2000 image",
    "image/bmp": "a BMP image",
    "image/x-icon": "an icon file",
    "video/x-msvideo": "an AVI video",
    "video/x-ms-wmv": "a Windows Media file",
    "video/x-flv": "a Flash video",
    "audio/mp4": "an audio file",
    "audio/mpeg": "an audio file",
}

_TIFF_MAKER_RAW = {
    "NIKON": "image/x-nikon-nef",
    "SONY": "image/x-sony-arw",
    "PENTAX": "image/x-pentax-pef",
    "RICOH": "image/x-pentax-pef",
    "SAMSUNG": "image/x-samsung-srw",
}

_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis"}
_HEIC_SEQ_BRANDS = {b"hevc", b"hevx", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"mif2", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot", b"uuid"}


def _kind_of(mime: str) -> Kind | None:
    if mime in IMAGE_MIMES:
        return "image"
    if mime in RAW_MIMES:
        return "raw"
    if mime in VIDEO_MIMES:
        return "video"
    return None


def _ftyp_mime(head: bytes) -> str | None:
    """ISO base media: the ftyp major brand decides, compatible brands break ties."""
    size = struct.unpack(">I", head[:4])[0]
    major = head[8:12]
    compat = {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    brands = [major, *sorted(compat)]
    if major == b"crx ":
        return "image/x-canon-cr3"
    if major in {b"jxl "}:
        return "image/jxl"
    if major in _AVIF_BRANDS or (major in _HEIF_BRANDS and compat & _AVIF_BRANDS):
        return "image/avif"
    if major in _HEIC_BRANDS or (major in _HEIF_BRANDS and compat & _HEIC_BRANDS):
        return "image/heic"
    if major in _HEIC_SEQ_BRANDS:
        return "image/heic-sequence"
    if major == b"msf1":
        return "image/heif-sequence"
    if major in _HEIF_BRANDS:
        return "image/heif"
    if major == b"qt  ":
        return "video/quicktime"
    for brand in brands:
        if brand.startswith(b"3gp") or brand.startswith(b"3ge") or brand.startswith(b"3gs"):
            return "video/3gpp"
        if brand.startswith(b"3g2"):
            return "video/3gpp2"
        if brand in {b"M4A ", b"M4B ", b"M4P "}:
            return "audio/mp4"
    # isom, iso2..iso9, mp41, mp42, avc1, dash, M4V, mmp4, MSNV, XAVC, ... are all MP4.
    return "video/mp4"


def _tiff_mime(f: BinaryIO, head: bytes) -> str:
    """Plain TIFF or a TIFF-based RAW: look at IFD0 for DNGVersion, SubIFDs and Make."""
    if head[8:10] == b"CR":
        return "image/x-canon-cr2"
    endian = "<" if head[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(endian + "I", head[4:8])
        f.seek(ifd)
        (count,) = struct.unpack(endian + "H", f.read(2))
        if count > 1000:
            return "image/tiff"
        entries = f.read(12 * count)
        tags: dict[int, tuple[int, int, bytes]] = {}
        for i in range(0, len(entries) - 11, 12):
            tag, typ, n = struct.unpack(endian + "HHI", entries[i : i + 8])
            tags[tag] = (typ, n, entries[i + 8 : i + 12])
        if 50706 in tags:  # DNGVersion
            return "image/x-adobe-dng"
        if 330 in tags and 271 in tags:  # SubIFDs + Make: a camera's raw container
            typ, n, raw = tags[271]
            if n <= 4:
                make = raw[:n]
            else:
                f.seek(struct.unpack(endian + "I", raw)[0])
                make = f.read(min(n, 64))
            make_s = make.rstrip(b"\0").decode("latin-1").upper()
            for maker, mime in _TIFF_MAKER_RAW.items():
                if make_s.startswith(maker):
                    return mime
    except (struct.error, OSError):
        pass
    return "image/tiff"


def sniff(path: Path) -> str | None:
    """MIME type from magic numbers, or None when the content is not recognised."""
    with open(path, "rb") as f:
        head = f.read(512)
        if head[:3] == b"\xff\xd8\xff":
            return "image/jpeg"
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            return "image/png"
        if head[:6] in (b"GIF87a", b"GIF89a"):
            return "image/gif"
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            return "image/webp"
        if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
            return "video/x-msvideo"
        if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
            return "image/x-olympus-orf"
        if head[:4] == b"IIU\0":
            return "image/x-panasonic-rw2"
        if head[:4] in (b"II*\0", b"MM\0*"):
            return _tiff_mime(f, head)
        if head[:16] == b"FUJIFILMCCD-RAW ":
            return "image/x-fujifilm-raf"
        if head[:4] == b"\x1a\x45\xdf\xa3":
            return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
        if head[:2] == b"\xff\x0a" or head[:12] == b"\0\0\0\x0cJXL \r\n\x87\n":
            return "image/jxl"
        if head[:12] == b"\0\0\0\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
            return "image/jp2"
        if len(head) >= 12 and head[4:8] == b"ftyp":
            return _ftyp_mime(head)
        if len(head) >= 8 and head[4:8] in _QT_ATOMS:
            return "video/quicktime"  # old QuickTime without an ftyp box
        if head[:5] == b"%PDF-":
            return "application/pdf"
        if head[:9] == b"gimp xcf ":
            return "image/x-xcf"
        if head[:4] == b"8BPS":
            return "image/vnd.adobe.photoshop"
        if head[:2] == b"BM" and len(head) >= 14:
            return "image/bmp"
        if head[:4] == b"\0\0\1\0":
            return "image/x-icon"
        if head[:4] == b"\x30\x26\xb2\x75":
            return "video/x-ms-wmv"
        if head[:3] == b"FLV":
            return "video/x-flv"
        if head[:3] == b"ID3":
            return "audio/mpeg"
    return None


def _resolve_mime(sniffed: str | None, exiftool_mime: str | None) -> str | None:
    """Our sniff decides; ExifTool (also content-based) refines TIFF into RAW and fills gaps."""
    if exiftool_mime:
        exiftool_mime = exiftool_mime.lower()
    if sniffed is None:
        return exiftool_mime if exiftool_mime and _kind_of(exiftool_mime) else None
    if sniffed == "image/tiff" and exiftool_mime in RAW_MIMES:
        return exiftool_mime
    return sniffed


def classify(path: Path, mime: str | None = None, *, decode: bool = True) -> Kind:
    """Kind of media in `path`, or raise `Quarantined`.

    `mime` is ExifTool's content-derived MIMEType when known. With `decode=False` only headers are
    read; the caller must then decode through `render_previews`, which quarantines bad pixels.
    """
    resolved, kind = _check_type(path, mime)
    if resolved in BMFF_MIMES:
        check_box_sizes(path)
    if kind == "image":
        if decode:
            decode_image(path, resolved, get_settings().preview_px).close()
        else:
            open_image(path, resolved).close()
    elif kind == "video" and decode:
        decode_video_frame(path).close()
    return kind


# ISO base media files: HEIF/HEIC, AVIF, MP4, MOV, 3GP.
BMFF_MIMES = {
    "image/heic",
    "image/heif",
    "image/heic-sequence",
    "image/heif-sequence",
    "image/avif",
    "video/mp4",
    "video/quicktime",
    "video/3gpp",
    "video/3gpp2",
    "video/x-m4v",
}


def check_box_sizes(path: Path) -> None:
    """Walk the top-level boxes; one that claims to run past the end means the file was cut.

    Decoders do not always notice: libheif fills missing HEIC tiles silently, and a video whose
    first frame survived still yields a poster. The box sizes tell the truth cheaply.
    """
    size = path.stat().st_size
    pos = 0
    with path.open("rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            box_len, box_type = struct.unpack(">I4s", head[:8])
            if box_len == 1 and len(head) >= 16:
                box_len = struct.unpack(">Q", head[8:16])[0]
            elif box_len == 0:  # "extends to the end of the file"
                return
            if box_len < 8:
                raise Quarantined("corrupt", f"Box at byte {pos:,} has an impossible size.")
            if pos + box_len > size:
                name = box_type.decode("latin-1", "replace")
                raise Quarantined(
                    "truncated",
                    f"The file ends after {size:,} bytes, inside its '{name}' box, which needs "
                    f"{pos + box_len:,}; the file is truncated.",
                )
            pos += box_len


def _check_type(path: Path, mime: str | None) -> tuple[str, Kind]:
    try:
        size = path.stat().st_size
        if size == 0:
            raise Quarantined("empty", "The file is empty (0 bytes).")
        limit = get_settings().max_upload_bytes
        if size > limit:
            raise Quarantined(
                "too_large", f"The file is {size:,} bytes, more than the limit of {limit:,} bytes."
            )
        sniffed = sniff(path)
    except OSError as exc:  # strerror alone: the exception's text would name the path
        reason = exc.strerror or type(exc).__name__
        raise Quarantined("corrupt", f"The file could not be read: {reason}.") from exc
    resolved = _resolve_mime(sniffed, mime)
    if resolved is None:
        if _is_all_zero(path):
            raise Quarantined("empty", f"The file holds {size:,} zero bytes and no data.")
        hint = f" (ExifTool calls it {mime})" if mime else ""
        raise Quarantined(
            "unsupported_type", f"The content is not a recognised photo or video format{hint}."
        )
    kind = _kind_of(resolved)
    if kind is None:
        what = UNSUPPORTED_NAMES.get(resolved, resolved)
        raise Quarantined(
            "unsupported_type", f"The file is {what} ({resolved}), not a camera photo or video."
        )
    return resolved, kind


def _is_all_zero(path: Path) -> bool:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            if chunk.count(0) != len(chunk):
                return False
    return True


def _format_name(mime: str) -> str:
    return IMAGE_MIMES.get(mime) or RAW_MIMES.get(mime) or VIDEO_MIMES.get(mime) or mime


def check_pixels(width: int, height: int, label: str) -> None:
    """Refuse images whose header declares more pixels than `max_image_pixels`."""
    limit = get_settings().max_image_pixels
    if width * height > limit:
        raise Quarantined(
            "decompression_bomb",
            f"{label} declares {width:,} x {height:,} = {width * height:,} pixels, "
            f"more than the limit of {limit:,}; it was not decoded.",
        )


def open_image(src: Path | BinaryIO, mime: str, label: str | None = None) -> Image.Image:
    """Open lazily (headers only) and enforce the pixel limit before any decode."""
    name = label or _format_name(mime)
    # Pillow's own bomb guard must agree with ours (a 200 MP phone photo is legitimate).
    Image.MAX_IMAGE_PIXELS = get_settings().max_image_pixels
    # Truncated data must fail loudly; a half-grey photo is not a photo. Set on every open:
    # a library in the same process may flip it (face_recognition sets it True on import).
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    stream = open_unnamed(src) if isinstance(src, Path) else src
    try:
        im = Image.open(stream)
    except Image.DecompressionBombError as exc:
        stream.close()
        raise Quarantined(
            "decompression_bomb", f"{name} is a likely decompression bomb: {exc}"
        ) from exc
    except (UnidentifiedImageError, SyntaxError, ValueError, EOFError, OSError) as exc:
        raise _decode_error(src, name, exc) from exc
    try:
        check_pixels(im.width, im.height, name)
    except Quarantined:
        im.close()
        raise
    return im


def decode_image(src: Path | BinaryIO, mime: str, max_side: int) -> Image.Image:
    """Fully decode an image, as small as `max_side` allows (JPEG draft mode), or quarantine it.

    JPEG draft picks the largest DCT scale (1/2, 1/4, 1/8) that keeps the image at least as large
    as its fitted `max_side` box, so the later resize still has enough pixels.
    """
    name = _format_name(mime)
    im = open_image(src, mime, name)
    try:
        if im.format == "JPEG":
            w, h = im.size
            scale = max_side / max(w, h)
            if scale < 1:
                im.draft("RGB", (max(1, round(w * scale)), max(1, round(h * scale))))
        im.load()
    except Quarantined:
        im.close()
        raise
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, RuntimeError...
        im.close()
        raise _decode_error(src, name, exc) from exc
    return im


_TRUNCATION = re.compile(
    r"truncat|end of (file|data|stream)|premature|unexpected end|not enough data|"
    r"moov atom not found|ran out|incomplete|buffer is not large enough",
    re.IGNORECASE,
)


# How decoders say an allocation failed (libjpeg, libvips, libheif, libavif, glib, C++, errno).
_OUT_OF_MEMORY = re.compile(
    r"out of memory|insufficient memory|memory allocation|cannot allocate memory|"
    r"allocat\w* [0-9]+ bytes failed|failed to allocate|bad_alloc|MemoryError",
    re.IGNORECASE,
)


def out_of_memory(exc: BaseException | str) -> Quarantined | None:
    """The verdict on a decode that ran out of memory: in the decode helper that is its
    `decode_memory_mb` limit (RLIMIT_DATA), so the file is too costly, not corrupt."""
    msg = exc if isinstance(exc, str) else str(exc) or type(exc).__name__
    if not isinstance(exc, MemoryError) and not _OUT_OF_MEMORY.search(msg):
        return None
    limit = get_settings().decode_memory_mb
    return Quarantined(
        "too_costly",
        f"too costly to decode: it needs more than the decoder's memory limit of {limit} MiB "
        f"({' '.join(msg[:200].split())})",
    )


def _decode_error(src: Path | BinaryIO, name: str, exc: BaseException) -> Quarantined:
    size = _size_of(src)
    msg = str(exc) or type(exc).__name__
    if (costly := out_of_memory(exc)) is not None:
        return costly
    if isinstance(exc, EOFError) or _TRUNCATION.search(msg):
        return Quarantined(
            "truncated", f"{name} data ends after {size:,} bytes; the file is truncated ({msg})."
        )
    return Quarantined("corrupt", f"{name} data could not be decoded ({msg}).")


def _size_of(src: Path | BinaryIO) -> int:
    if isinstance(src, Path):
        try:
            return src.stat().st_size
        except OSError:
            return 0
    if isinstance(src, io.BytesIO):
        return len(src.getbuffer())
    return 0


def decode_video_frame(path: Path, at_seconds: float | None = None) -> Image.Image:
    """One upright RGB frame of the first video stream, streamed from disk (never fully loaded).

    `at_seconds` None picks the poster time: 1 s or 10 % of the duration, whichever is smaller.
    """
    import av  # PyAV is heavy; import only when a video is actually handled.

    name = "Video"
    try:
        with open_unnamed(path) as f, av.open(f, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise Quarantined("unsupported_type", "The container holds no video stream.")
            stream = container.streams.video[0]
            name = VIDEO_MIMES.get(sniff(path) or "", "Video")
            if stream.width and stream.height:
                check_pixels(stream.width, stream.height, f"{name} frame")
            duration = _duration_s(container, stream)
            target = min(1.0, 0.1 * duration) if at_seconds is None else at_seconds
            frame = _frame_at(container, stream, target)
            if frame is None:
                raise Quarantined(
                    "corrupt", f"{name} file opened but no video frame could be decoded."
                )
            image = frame.to_image()
            rotation = round(getattr(frame, "rotation", 0) or 0) % 360
    except Quarantined:
        raise
    except Exception as exc:  # av.error.* are OSError/ValueError subclasses, but be complete
        raise _decode_error(path, name, exc) from exc
    # The display matrix angle is counter-clockwise, as PIL's ROTATE_* transposes are.
    if rotation == 90:
        image = image.transpose(Image.Transpose.ROTATE_90)
    elif rotation == 180:
        image = image.transpose(Image.Transpose.ROTATE_180)
    elif rotation == 270:
        image = image.transpose(Image.Transpose.ROTATE_270)
    return image


def video_duration(path: Path) -> float:
    """The first video stream's duration in seconds; 0.0 when unknown or there is none."""
    import av

    try:
        with open_unnamed(path) as f, av.open(f, metadata_errors="ignore") as container:
            if not container.streams.video:
                return 0.0
            return max(0.0, _duration_s(container, container.streams.video[0]))
    except Exception as exc:  # av.error.*: the frames then give the verdict
        if (costly := out_of_memory(exc)) is not None:
            raise costly from exc
        return 0.0


def _duration_s(container: object, stream: object) -> float:
    if getattr(stream, "duration", None) and getattr(stream, "time_base", None):
        return float(stream.duration * stream.time_base)  # type: ignore[attr-defined]
    if getattr(container, "duration", None):
        return container.duration / 1_000_000  # type: ignore[attr-defined]
    return 0.0


def _frame_at(container, stream, target: float):  # PyAV objects: untyped
    """Seek to the keyframe before `target`, then decode forward to it (bounded)."""
    if target > 0 and stream.time_base:
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except Exception:  # unseekable: decode from the start instead
            container.seek(0)
    last = None
    for n, frame in enumerate(container.decode(stream)):
        last = frame
        if frame.time is None or frame.time >= target - 1e-3 or n >= 300:
            return frame
    return last  # the stream ended before `target`: its last frame will do
