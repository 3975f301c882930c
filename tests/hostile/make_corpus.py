"""A hostile-input corpus for the ingest pipeline, generated (nothing is checked in).

`make_corpus(folder)` writes well over 100 files and returns one `Entry` per file: the file on
disk (a safe name), the name to upload it under (which may itself be hostile) and what the
server must make of it: "ready", "quarantined", or "either" where both are fair. Every entry
must end ready or quarantined with a reason; never pending, never a 5xx.

Run as a script to write the corpus to a folder: `python -m tests.hostile.make_corpus DIR`.
"""

from __future__ import annotations

import base64
import io
import random
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

ROLL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "camera-roll"
REAL_JPEG = ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg"
REAL_PNG = ROLL / "exiftool-t" / "PNG.png"
REAL_MP4 = ROLL / "pigallery2" / "test-assets" / "video.mp4"
REAL_HEIC = ROLL / "exiftool-t" / "QuickTime.heic"


@dataclass
class Entry:
    path: Path
    upload_name: str
    expect: str  # "ready" | "quarantined" | "either"
    group: str
    reason: str | None = None  # the quarantine reason code when it must be this one


class _Corpus:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.entries: list[Entry] = []
        self.n = 0

    def add(
        self,
        group: str,
        data: bytes,
        expect: str,
        name: str | None = None,
        ext: str = ".jpg",
        reason: str | None = None,
    ) -> Entry:
        self.n += 1
        path = self.folder / f"{self.n:03d}-{group}{ext}"
        path.write_bytes(data)
        entry = Entry(path, name or path.name, expect, group, reason)
        self.entries.append(entry)
        return entry


def _jpeg(seed: int, size: tuple[int, int] = (64, 48), exif: Image.Exif | None = None) -> bytes:
    """A small valid JPEG whose pixels differ by seed (so no two are duplicates)."""
    rng = random.Random(seed)
    im = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    im.putpixel((seed % size[0], (seed // size[0]) % size[1]), (seed % 256, 7, 99))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90, exif=exif if exif is not None else Image.Exif())
    return out.getvalue()


def _scan_bomb(side: int, repeats: int) -> bytes:
    """A grey progressive JPEG whose last scan is repeated: libjpeg makes a full pass over the
    image for each (it only warns), so a few hundred KB cost minutes of decoding."""
    out = io.BytesIO()
    Image.new("L", (side, side), 128).save(out, "JPEG", progressive=True, quality=90)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")
    return data[:-2] + data[last:-2] * repeats + b"\xff\xd9"


def _png(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    im = Image.new("RGB", size, (seed % 256, (seed * 7) % 256, 50))
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _with_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _exif_date(date: str, offset: str | None) -> Image.Exif:
    exif = Image.Exif()
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = date  # DateTimeOriginal
    if offset is not None:
        sub[0x9011] = offset  # OffsetTimeOriginal
    return exif


def _exif_gps(lat: float, lon: float, alt: float | None = None) -> Image.Exif:
    def dms(v: float) -> tuple[IFDRational, IFDRational, IFDRational]:
        v = abs(v)
        d = int(v)
        m = int((v - d) * 60)
        s = (v - d - m / 60) * 3600
        return IFDRational(d, 1), IFDRational(m, 1), IFDRational(round(s * 100), 100)

    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1] = "N" if lat >= 0 else "S"
    gps[2] = dms(lat)
    gps[3] = "E" if lon >= 0 else "W"
    gps[4] = dms(lon)
    if alt is not None:
        gps[5] = b"\x00" if alt >= 0 else b"\x01"
        gps[6] = IFDRational(round(abs(alt)), 1)
    return exif


def _video(width: int, height: int, frames: int = 3) -> bytes:
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            arr = np.full((height, width, 3), (i * 40) % 256, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return out.getvalue()


def _patch_box(mp4: bytes, box: bytes, offset_in_box: int, value: bytes) -> bytes:
    i = mp4.find(box)
    if i < 0:
        return mp4
    j = i + 4 + offset_in_box
    return mp4[:j] + value + mp4[j + len(value) :]


def make_corpus(folder: Path, flood_mb: int = 0) -> list[Entry]:
    """Write the corpus into `folder`; `flood_mb` > 0 adds the big metadata-flood JPEG."""
    for real in (REAL_JPEG, REAL_PNG, REAL_MP4, REAL_HEIC):
        if not real.is_file():
            raise FileNotFoundError(f"the shared camera roll is missing {real}")
    folder.mkdir(parents=True, exist_ok=True)
    c = _Corpus(folder)
    jpeg, png, mp4, heic = (p.read_bytes() for p in (REAL_JPEG, REAL_PNG, REAL_MP4, REAL_HEIC))
    rng = random.Random(12)
    seed = iter(range(1000, 100_000))

    # Empty and nearly empty.
    c.add("empty", b"", "quarantined", reason="empty")
    c.add("one-byte", b"\xff", "quarantined")
    c.add("soi-only", b"\xff\xd8", "quarantined")
    c.add("png-signature-only", b"\x89PNG\r\n\x1a\n", "quarantined", ext=".png")
    c.add("zeros", bytes(4096), "quarantined")

    # Truncated real files.
    for frac in (0.1, 0.5, 0.9):
        c.add(f"truncated-jpeg-{frac}", jpeg[: int(len(jpeg) * frac)], "quarantined")
    for frac in (0.3, 0.8):
        c.add(f"truncated-png-{frac}", png[: int(len(png) * frac)], "quarantined", ext=".png")
    for frac in (0.2, 0.6):
        c.add(f"truncated-mp4-{frac}", mp4[: int(len(mp4) * frac)], "quarantined", ext=".mp4")
    c.add("truncated-heic", heic[: len(heic) // 2], "quarantined", ext=".heic")

    # Polyglots and lies about the type.
    html = b"<!doctype html><html><script>alert(document.cookie)</script></html>"
    c.add("html-as-jpg", html, "quarantined")
    c.add(
        "svg-script",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "quarantined",
        ext=".svg",
    )
    c.add("php-as-jpg", b"<?php system($_GET['c']); ?>", "quarantined")
    c.add("pdf-as-jpg", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "quarantined")
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("evil.html", html)
    c.add("jpeg-plus-zip", _jpeg(next(seed)) + zipped.getvalue(), "either")
    c.add("jpeg-html-comment", _with_segments(_jpeg(next(seed)), [_segment(0xFE, html)]), "ready")
    c.add("png-after-iend", _png(next(seed)) + html, "either", ext=".png")
    c.add("gif-html", b"GIF89a" + html, "quarantined", ext=".gif")
    c.add("zip-as-jpg", zipped.getvalue(), "quarantined")
    xxe = (
        b'<?xpacket begin=""?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta><?xpacket end="w"?>'
    )
    c.add(
        "xmp-xxe",
        _with_segments(
            _jpeg(next(seed)), [_segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + xxe)]
        ),
        "ready",
    )

    # Bombs by header: the declared size alone is refused.
    idat = _chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + _chunk(b"IEND", b"")
    c.add("png-100k-square", _png_header(100_000, 100_000) + idat, "quarantined", ext=".png")
    c.add("png-max-width", _png_header(2**31 - 1, 1) + idat, "quarantined", ext=".png")
    small = _jpeg(next(seed))  # no EXIF thumbnail: the first SOF is the image's own
    sof = small.find(b"\xff\xc0")
    big = small[: sof + 5] + struct.pack(">HH", 65000, 65000) + small[sof + 9 :]
    c.add("jpeg-sof-65000", big, "quarantined")
    c.add(
        "gif-65535",
        b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00;",
        "quarantined",
        ext=".gif",
    )
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + (16383).to_bytes(3, "little") * 2
    c.add(
        "webp-canvas-16k",
        b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x,
        "quarantined",
        ext=".webp",
    )
    tiff = (
        b"II*\x00\x08\x00\x00\x00"
        + struct.pack("<H", 2)
        + struct.pack("<HHII", 256, 4, 1, 200_000)
        + struct.pack("<HHII", 257, 4, 1, 200_000)
        + b"\x00" * 4
    )
    c.add("tiff-200k-square", tiff, "quarantined", ext=".tif")
    actl = _png_header(4, 4) + _chunk(b"acTL", struct.pack(">II", 1_000_000, 0)) + idat
    c.add("apng-million-frames", actl, "quarantined", ext=".png", reason="too_costly")
    # fuzz/fuzz_sniff.py found this one: an acTL chunk cut short (once a crash in the budgets).
    cut = base64.b64decode("iVBORw0KGgoAAAABAAAEGgoAAABUTEAAAGFjVExAAAAA")
    c.add("apng-actl-cut", cut, "quarantined", ext=".png")

    # Metadata floods.
    flood = [_segment(0xE1, b"Exif\x00\x00" + bytes(1000)) for _ in range(600)]
    c.add(
        "exif-flood-600",
        _with_segments(_jpeg(next(seed)), flood),
        "quarantined",
        reason="too_costly",
    )
    # Scan bombs: cost that headers only show by counting (6,000 scans), and cost no header
    # shows (250 scans of 36 MP, ~9 s of decoding): the decode's deadline stops that one.
    c.add("jpeg-scans-6000", _scan_bomb(4000, 6000), "quarantined", reason="too_costly")
    c.add("jpeg-scans-250-36mp", _scan_bomb(6000, 250), "quarantined", reason="too_costly")
    comments = [_segment(0xFE, f"comment {i}".encode() * 10) for i in range(300)]
    c.add("com-300", _with_segments(_jpeg(next(seed)), comments), "ready")
    app_mix = [_segment(0xE0 + (i % 16), bytes(200)) for i in range(200)]
    c.add("app-mix-200", _with_segments(_jpeg(next(seed)), app_mix), "either")
    xmp = (
        b"http://ns.adobe.com/xap/1.0/\x00"
        + b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>"
        + (b"<rdf:li>x</rdf:li>" * 3000)
        + b"</x:xmpmeta>"
    )
    c.add("xmp-3000-items", _with_segments(_jpeg(next(seed)), [_segment(0xE1, xmp)]), "ready")
    text = b"".join(_chunk(b"tEXt", b"k%d\x00v" % i) for i in range(2000))
    p = _png(next(seed))
    c.add("png-2000-text", p[:33] + text + p[33:], "either", ext=".png")
    if flood_mb:
        n = flood_mb * 1024 * 1024 // 65533
        big_flood = [_segment(0xE1, b"Exif\x00\x00" + bytes(65525)) for _ in range(n)]
        c.add(
            "exif-flood-big",
            _with_segments(_jpeg(next(seed)), big_flood),
            "quarantined",
            reason="too_costly",
        )

    # Extreme dates: unknown and flagged when they cannot be held, never an error.
    for date, off in [
        ("9999:12:31 23:59:59", "-14:00"),
        ("0001:01:01 00:00:00", "+14:00"),
        ("9999:12:31 23:59:59", "+14:00"),
        ("0001:01:01 00:00:00", "-14:00"),
        ("0000:00:00 00:00:00", None),
        ("2016:13:45 25:61:61", "+01:00"),
        ("1601:01:01 00:00:00", "+00:00"),
        ("2038:01:19 03:14:08", "+00:00"),
        ("1970:01:01 00:00:00", "-99:99"),
        ("    :  :     :  :  ", None),
        ("2020:02:30 12:00:00", "+05:45"),
        ("9999:99:99 99:99:99", "+00:00"),
    ]:
        c.add("date", _jpeg(next(seed), exif=_exif_date(date, off)), "ready")

    # Extreme coordinates.
    for lat, lon, alt in [
        (90.0, 180.0, None),
        (-90.0, -180.0, None),
        (89.9999, 179.9999, 1e6),
        (0.0, 0.0, -1e6),
        (91.0, 10.0, None),
        (10.0, 181.0, None),
        (-0.0001, -0.0001, 0.0),
        (64.1466, -21.9426, 8848.0),
    ]:
        c.add("gps", _jpeg(next(seed), exif=_exif_gps(lat, lon, alt)), "ready")

    # Videos with absurd boxes.
    tiny = _video(2, 2)
    c.add("video-2x2", tiny, "either", ext=".mp4")  # decoded 2x2: ready if its frame decodes
    c.add(
        "video-timescale-0",
        _patch_box(tiny, b"mvhd", 12, b"\x00\x00\x00\x00"),
        "either",
        ext=".mp4",
    )
    c.add(
        "video-duration-max",
        _patch_box(tiny, b"mvhd", 16, b"\xff\xff\xff\xff"),
        "either",
        ext=".mp4",
    )
    c.add(
        "video-tkhd-huge",
        _patch_box(tiny, b"tkhd", 80, b"\x7f\xff\x00\x00\x7f\xff\x00\x00"),
        "either",
        ext=".mp4",
    )
    moov = tiny.find(b"moov")
    c.add(
        "video-moov-oversized",
        tiny[: moov - 4] + struct.pack(">I", 0x7FFFFFF0) + tiny[moov:],
        "either",
        ext=".mp4",
    )
    c.add(
        "video-stsz-huge", _patch_box(tiny, b"stsz", 12, b"\x7f\xff\xff\xff"), "either", ext=".mp4"
    )
    c.add(
        "video-largesize",
        tiny[:8] + struct.pack(">I", 1) + b"free" + struct.pack(">Q", 2**62) + tiny[8:],
        "either",
        ext=".mp4",
    )
    c.add("video-ftyp-only", tiny[: tiny.find(b"moov") - 4], "quarantined", ext=".mp4")

    # Hostile names on valid photos.
    for name in [
        "photo\u202egpj.exe",
        "nul\x00byte.jpg",
        "bell\x07\x1b[31mred.jpg",
        "line\nbreak.jpg",
        "../../etc/passwd",
        "/etc/passwd",
        "C:\\Windows\\system32\\x.jpg",
        "CON",
        "..",
        "x" * 1000 + ".jpg",
        "cafe\u0301.jpg",
        "\u200b\u200d\ufeffzero-width.jpg",
        "<script>alert(1)</script>.jpg",
        "emoji \U0001f600\U0001f3f3\ufe0f\u200d\U0001f308.jpg",
        "tab\tand\rreturn.jpg",
        "\u2066isolate\u2069.jpg",
        "%2e%2e%2fencoded.jpg",
        " ",
    ]:
        c.add("name", _jpeg(next(seed)), "ready", name=name)

    # Garbage and bit flips of a real photo.
    for size in (17, 512, 4096, 65536):
        c.add("random", rng.randbytes(size), "quarantined")
    for i in range(12):
        data = bytearray(jpeg)
        for _ in range(20):
            data[rng.randrange(200, len(data))] = rng.randrange(256)
        c.add(f"bitflip-{i}", bytes(data), "either")
    for i in range(4):
        data = bytearray(png)
        data[rng.randrange(8, 40)] ^= 0xFF  # the IHDR: a bad CRC or absurd dimensions
        c.add(f"png-header-flip-{i}", bytes(data), "either", ext=".png")

    # Tiny images that must still end somewhere (and never become a "best shot").
    c.add("apng-8x8", _png(next(seed), (8, 8)), "ready", ext=".png")
    c.add("jpeg-1x1", _jpeg(next(seed), (1, 1)), "ready")
    return c.entries


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
    made = make_corpus(out, flood_mb=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(f"{len(made)} files in {out}")
