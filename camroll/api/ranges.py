"""HTTP Range for originals (RFC 9110 section 14): what iOS Safari needs to play and seek video."""

from __future__ import annotations

import re

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from camroll.crypto.keys import KeyDestroyed
from camroll.crypto.stream import DecryptionError
from camroll.storage import BlobNotFound
from camroll.storage.ranged import read_decrypted_range

_SPEC = re.compile(r"bytes=(\d*)-(\d*)")


class Unsatisfiable(HTTPException):
    def __init__(self, size: int, why: str) -> None:
        super().__init__(416, why, headers={"Content-Range": f"bytes */{size}"})


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte, inclusive; None means "send it all" (several ranges are answered
    with the whole file, which RFC 9110 allows). Raises Unsatisfiable (416)."""
    spec = header.strip()
    if "," in spec:
        return None
    m = _SPEC.fullmatch(spec.replace(" ", ""))
    if m is None or (not m.group(1) and not m.group(2)):
        raise Unsatisfiable(size, f"unsupported Range {header[:60]!r}: use bytes=FIRST-LAST")
    first, last = m.group(1), m.group(2)
    if not first:  # bytes=-N: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable(size, "empty suffix range")
        return max(size - n, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise Unsatisfiable(size, f"range {header[:60]!r} is outside the file's {size} bytes")
    return start, end


def ranged_response(
    session: Session,
    user_id: str,
    key: str,
    size: int,
    mime: str,
    header: str,
    headers: dict[str, str],
) -> StreamingResponse | None:
    """A 206 with just the asked-for bytes, or None when the whole file should be sent."""
    span = parse_range(header, size)
    if span is None:
        return None
    start, end = span
    try:
        body = read_decrypted_range(session, user_id, key, size, start, end)
    except (KeyDestroyed, BlobNotFound, DecryptionError) as e:
        raise HTTPException(410, f"this file can no longer be read: {e}") from None
    out = {k: v for k, v in headers.items() if k.lower() != "content-length"}
    out |= {
        "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {start}-{end}/{size}",
        "Content-Length": str(end - start + 1),
    }
    return StreamingResponse(body, status_code=206, media_type=mime, headers=out)
