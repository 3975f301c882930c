"""Per-file decoding budgets, checked from headers before ExifTool or any decoder sees the file.

A 78 MB JPEG of 1,200 EXIF segments took Pillow 39 s and 758 MB to open; a PNG can declare a
million animation frames in a few bytes. Such files are quarantined as `too_costly` after a
walk over their segment headers, which reads a few bytes per segment: the check's cost grows
with the number of segments (so with the size), never with what they claim to hold. A JPEG's
scans are counted in one sequential read (linear in the size). What headers cannot announce is
bounded by the decode's deadline (`deadline.py`).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from camroll.media.validate import Quarantined

MAX_METADATA_SEGMENTS = 512  # APPn + COM segments of one JPEG (phones write under 40)
MAX_METADATA_BYTES = 32 * 1024**2  # their total size
MAX_FRAMES = 10_000  # animation frames an APNG declares
# Scans of one JPEG: baseline has 1, progressive about 10; each scan is a pass over every
# block, so 6,000 repeated scans make a 280 KB file cost a minute of decoding.
MAX_SCANS = 256
_CHUNK = 1024**2
_JPEG_SOS, _JPEG_EOI = 0xDA, 0xD9


def check_costs(path: Path) -> None:
    """Raise Quarantined("too_costly", ...) when the headers promise more work than a photo."""
    with path.open("rb") as f:
        head = f.read(12)
        f.seek(0)
        if head.startswith(b"\xff\xd8"):
            _check_jpeg(f)
        elif head.startswith(b"\x89PNG\r\n\x1a\n"):
            _check_png(f)


def _too_costly(detail: str) -> Quarantined:
    return Quarantined("too_costly", f"too costly to decode: {detail}")


def _check_jpeg(f: BinaryIO) -> None:
    f.seek(2)
    segments = total = 0
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return  # not a well-formed header run: the decoder gives the verdict
        code = marker[1]
        while code == 0xFF:  # fill bytes
            nxt = f.read(1)
            if not nxt:
                return
            code = nxt[0]
        if code == _JPEG_SOS:
            _check_scans(f, f.tell() - 2)
            return
        if code == _JPEG_EOI or 0xD0 <= code <= 0xD7 or code == 0x01:
            return  # entropy-coded data starts: the headers are behind us
        raw = f.read(2)
        if len(raw) < 2:
            return
        (length,) = struct.unpack(">H", raw)
        if 0xE0 <= code <= 0xEF or code == 0xFE:  # APPn and COM: metadata
            segments += 1
            total += length
            if segments > MAX_METADATA_SEGMENTS:
                raise _too_costly(f"more than {MAX_METADATA_SEGMENTS} metadata segments")
            if total > MAX_METADATA_BYTES:
                raise _too_costly(f"over {MAX_METADATA_BYTES // 1024**2} MiB of metadata")
        f.seek(length - 2, 1)


def _check_scans(f: BinaryIO, first_sos: int) -> None:
    """Count SOS markers from the first scan on: entropy-coded data stuffs every 0xFF with
    0x00, so a 0xFF 0xDA there is always a marker. One sequential read, counted in C."""
    f.seek(first_sos)
    scans, carry = 0, b""
    while chunk := f.read(_CHUNK):
        data = carry + chunk
        scans += data.count(b"\xff\xda")
        if scans > MAX_SCANS:
            raise _too_costly(f"more than {MAX_SCANS} scans (each a full pass over the image)")
        # A marker split over two reads is counted once, with the next read.
        carry = data[-1:] if data[-1:] == b"\xff" else b""


def _check_png(f: BinaryIO) -> None:
    f.seek(8)
    chunks = 0
    while chunks < 64:  # acTL comes before the first IDAT; do not walk the whole file
        raw = f.read(8)
        if len(raw) < 8:
            return
        length, kind = struct.unpack(">I4s", raw)
        if kind == b"acTL" and length >= 8:
            body = f.read(8)
            if len(body) < 8:
                return  # truncated: the decoder gives the verdict (found by fuzz/fuzz_sniff.py)
            frames, _plays = struct.unpack(">II", body)
            if frames > MAX_FRAMES:
                raise _too_costly(f"declares {frames:,} animation frames")
            return
        if kind == b"IDAT":
            return
        f.seek(length + 4, 1)  # data and CRC
        chunks += 1
