"""How an original goes out. Only a file that passed validation is served as its media type;
anything quarantined (HTML, SVG, PHP, polyglots) goes out as application/octet-stream, as an
attachment, under a cleaned name that no program will open as a page or script."""

from __future__ import annotations

from camroll.media.names import attachment
from camroll.media.validate import IMAGE_MIMES, RAW_MIMES, VIDEO_MIMES

OCTET = "application/octet-stream"
QUARANTINED_SUFFIX = ".quarantined"
_SERVABLE = set(IMAGE_MIMES) | set(RAW_MIMES) | set(VIDEO_MIMES)


def served_mime(status: str, mime: str | None) -> str:
    return mime if status == "ready" and mime in _SERVABLE else OCTET


def original_disposition(status: str, filename: str) -> str:
    name = filename if status == "ready" else f"{filename}{QUARANTINED_SUFFIX}"
    return attachment(name)
