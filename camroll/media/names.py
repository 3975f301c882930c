"""Clean file names and device paths: what a client sends is shown, downloaded and zipped, so
it must not carry control or bidi characters (`photo\\u202egpj.exe` displays as
`photoexe.jpg`), NUL, parent or absolute parts, or unbounded length.

Names are NFC-normalised (macOS sends NFD), stripped of every Unicode control, format (bidi
overrides, zero-width), surrogate, private-use and unassigned character, and cut to a length
that keeps the extension. The name exactly as sent is kept only encrypted
(`original_name`, bytes), for the owner's export.
"""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import quote

MAX_NAME = 120  # characters of a file name, extension included
MAX_EXT = 12
MAX_PATH = 1024
_DROP = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _clean_part(part: str) -> str:
    part = unicodedata.normalize("NFC", part)
    part = "".join(c for c in part if unicodedata.category(c) not in _DROP)
    return part.strip()  # inner spaces and dots are the owner's; only the ends are trimmed


def _cut(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, ext = posixpath.splitext(name)
    ext = ext if 1 < len(ext) <= MAX_EXT else ""
    return stem[: limit - len(ext)].rstrip() + ext


def clean_name(raw: str | None, fallback: str = "unnamed") -> str:
    """The last part of whatever path was sent, cleaned and cut; `fallback` if nothing is left."""
    text = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _cut(_clean_part(text), MAX_NAME)
    return fallback if name in ("", ".", "..") else name


def clean_device_path(raw: str | None) -> str | None:
    """A relative path inside the synced folder: no absolute root, drive, `.` or `..` parts."""
    if not raw:
        return None
    parts = []
    for part in raw.replace("\\", "/").split("/"):
        cleaned = _cut(_clean_part(part), MAX_NAME)
        if not cleaned or cleaned in (".", "..") or cleaned.endswith(":"):
            continue  # empty, parent, current, or a drive ("C:")
        parts.append(cleaned)
    path = "/".join(parts)
    while len(path) > MAX_PATH and len(parts) > 1:
        parts.pop(0)  # keep the end: the file and its nearest folders
        path = "/".join(parts)
    return path[-MAX_PATH:] or None


def as_sent(raw: str) -> bytes:
    """The bytes of a name as the client sent it, for the encrypted `original_name` only:
    UTF-8, with undecodable bytes (kept as surrogates by WSGI) given back as they came."""
    try:
        return raw.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that was sent as such
        return raw.encode("utf-8", "surrogatepass")


def attachment(name: str) -> str:
    """A Content-Disposition that every browser saves under the cleaned name: an ASCII
    fallback plus the UTF-8 form (RFC 6266)."""
    name = clean_name(name, "download")
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;%' else "_" for c in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
