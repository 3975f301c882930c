"""Normalise one ExifTool answer (`-json -n -G1 -a`) into `MediaMetadata`.

Capture time is kept as three values: the wall time the camera showed (`taken_at_local`), its UTC
offset (`tz_offset`) and the instant (`taken_at_utc`). `tz_source` says where the offset came from:

- `offset_time`: EXIF OffsetTimeOriginal/OffsetTime/OffsetTimeDigitized, or an offset written into
  the date itself (XMP, IPTC, MKV, M2TS dates).
- `keys`: Apple's QuickTime `Keys:CreationDate`, local time with its offset.
- `gps_time`: local time minus the GPS UTC time, rounded to 15 min, kept only within +-14 h.
- `gps_position`: the time zone at the GPS position (timezonefinder), offset at that local time.
- `quicktime_utc`: a video whose only date is QuickTime's UTC CreateDate; local time is that
  instant moved into the time zone at its GPS position.
- `unknown`: no offset. For a video with a UTC CreateDate and no GPS, `taken_at_utc` is still the
  real instant and `taken_at_local` is that same wall time (the best guess, the offset stays None).

A camera clock far from GPS time (e.g. exif-samples/jpg/gps, camera one day behind) is a wrong
clock, not a 22 h zone: we reject the GPS-time offset, keep the camera's wall time (what the owner
saw and what other tools show), and take the offset from the GPS position instead.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from camroll.media.exiftool import shared_exiftool


@dataclass
class MediaMetadata:
    path: str
    mime: str | None
    width: int | None
    height: int | None
    orientation: int | None
    taken_at_local: str | None
    tz_offset: str | None
    tz_source: str
    taken_at_utc: str | None
    latitude: float | None
    longitude: float | None
    altitude: float | None
    make: str | None
    model: str | None
    lens: str | None
    duration: float | None
    rotation: int | None
    content_identifier: str | None
    file_type: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- raw access ----------------------------------------------------------------------------------


def _get(raw: dict[str, Any], *keys: str) -> Any:
    """First non-empty value among `Group:Tag` keys; `*:Tag` matches the tag in any group."""
    for key in keys:
        if key.startswith("*:"):
            tag = key[1:]
            for k, v in raw.items():
                if k.endswith(tag) and _present(v):
                    return v
        elif _present(raw.get(key)):
            return raw[key]
    return None


def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip())


def _str(v: Any) -> str | None:
    if not _present(v):
        return None
    if isinstance(v, list):
        v = v[0]
    return str(v).strip() or None


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not _present(v):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# -- dates ---------------------------------------------------------------------------------------

_DATE_RE = re.compile(
    r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?(\.\d+)?"
    r"\s*(Z|[+\-]\d{2}:?\d{2})?"
)


@dataclass
class _Stamp:
    """A parsed date: naive wall time plus the offset written next to it, if any."""

    wall: datetime
    frac: str  # sub-seconds as written, e.g. ".001"; kept verbatim in ISO output
    offset: timedelta | None


def _parse_date(v: Any, subsec: Any = None) -> _Stamp | None:
    s = _str(v)
    if s is None:
        return None
    m = _DATE_RE.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, off = m.groups()
    if int(y) == 0 or int(mo) == 0 or int(d) == 0:
        return None  # "0000:00:00 00:00:00" means no date
    try:
        wall = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec or 0))
    except ValueError:
        return None
    if not frac and _present(subsec):
        digits = re.sub(r"\D", "", str(subsec))
        frac = f".{digits}" if digits else ""
    return _Stamp(wall, frac or "", _parse_offset(off))


def _parse_offset(v: Any) -> timedelta | None:
    s = _str(v)
    if s is None:
        return None
    if s == "Z":
        return timedelta(0)
    m = re.fullmatch(r"([+\-])(\d{1,2}):?(\d{2})", s)
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    return sign * delta if delta <= timedelta(hours=14) else None


def _fmt_offset(off: timedelta) -> str:
    minutes = int(off.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _iso(wall: datetime, frac: str) -> str:
    # Not strftime: glibc writes year 1 as "1", which is no ISO date.
    return f"{wall.year:04d}-{wall:%m-%dT%H:%M:%S}{frac}"


# -- time zones ----------------------------------------------------------------------------------

_tzf: Any = None
_tzf_lock = threading.Lock()


def _zone_at(lat: float, lon: float) -> str | None:
    global _tzf
    with _tzf_lock:
        if _tzf is None:
            from timezonefinder import TimezoneFinder  # slow import and load: once per process

            _tzf = TimezoneFinder()
        return _tzf.timezone_at(lng=lon, lat=lat)


def _offset_at_position(
    wall: datetime, lat: float, lon: float, wall_is_utc: bool
) -> timedelta | None:
    name = _zone_at(lat, lon)
    if not name:
        return None
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    if wall_is_utc:
        return wall.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    return wall.replace(tzinfo=zone).utcoffset()


def _gps_utc(raw: dict[str, Any]) -> datetime | None:
    stamp = _parse_date(_get(raw, "Composite:GPSDateTime", "*:GPSDateTime"))
    if stamp is None:
        date, time = _str(_get(raw, "GPS:GPSDateStamp")), _str(_get(raw, "GPS:GPSTimeStamp"))
        if date and time:
            stamp = _parse_date(f"{date} {time}")
    return stamp.wall if stamp else None


def _offset_from_gps_time(local: datetime, gps: datetime) -> timedelta | None:
    quarters = round((local - gps).total_seconds() / 900)
    if abs(quarters) > 14 * 4:
        return None  # a wrong camera clock, not a time zone
    return timedelta(minutes=15 * quarters)


# -- the parser ----------------------------------------------------------------------------------

_VIDEO_TYPES = {"MP4", "MOV", "3GP", "3G2", "M4V", "MKV", "WEBM", "AVI", "MTS", "M2TS", "WMV"}
_QUICKTIME_TYPES = {"MP4", "MOV", "3GP", "3G2", "M4V", "M4A", "CR3", "HEIC", "HEIF", "AVIF"}


def _is_video(mime: str | None, file_type: str | None) -> bool:
    return bool((mime and mime.startswith("video/")) or (file_type or "").upper() in _VIDEO_TYPES)


def _photo_time(raw: dict[str, Any]) -> tuple[_Stamp | None, timedelta | None]:
    """Capture stamp and its EXIF OffsetTime*, by preference."""
    candidates = [
        ("ExifIFD:DateTimeOriginal", "ExifIFD:SubSecTimeOriginal", "ExifIFD:OffsetTimeOriginal"),
        ("ExifIFD:CreateDate", "ExifIFD:SubSecTimeDigitized", "ExifIFD:OffsetTimeDigitized"),
        ("*:DateTimeOriginal", None, None),
        ("Composite:DateTimeCreated", None, None),
        ("XMP-photoshop:DateCreated", None, None),
        ("XMP-xmp:CreateDate", None, None),
        ("*:CreateDate", None, None),
    ]
    for date_key, sub_key, off_key in candidates:
        if date_key == "*:CreateDate":
            # QuickTime-style CreateDate (HEIF, CR3 movie header) is UTC; that is not a wall time.
            keys = [k for k in raw if k.endswith(":CreateDate") and not _is_qt_group(k)]
            value = next((raw[k] for k in keys if _present(raw[k])), None)
        else:
            value = _get(raw, date_key)
        stamp = _parse_date(value, raw.get(sub_key) if sub_key else None)
        if stamp is None:
            continue
        offset = stamp.offset
        if offset is None:
            offset = _parse_offset(
                _get(
                    raw,
                    *([off_key] if off_key else []),
                    "ExifIFD:OffsetTimeOriginal",
                    "ExifIFD:OffsetTime",
                    "ExifIFD:OffsetTimeDigitized",
                    "*:OffsetTimeOriginal",
                    "*:OffsetTime",
                )
            )
        return stamp, offset
    return None, None


def _is_qt_group(key: str) -> bool:
    group = key.split(":", 1)[0]
    return group == "QuickTime" or group.startswith("Track")


def _resolve_time(
    raw: dict[str, Any], video: bool, lat: float | None, lon: float | None
) -> tuple[str | None, str | None, str, str | None]:
    """(taken_at_local, tz_offset, tz_source, taken_at_utc).

    A date whose instant falls outside years 1..9999 (9999-12-31 23:59 at -14:00) cannot be
    held by Python or the database: it is unknown, flagged `out_of_range`, never raised.
    """
    try:
        local, offset, source, utc = _resolve_time_unchecked(raw, video, lat, lon)
    except (OverflowError, ValueError):
        return None, None, "out_of_range", None
    return local, offset, source, utc


def _resolve_time_unchecked(
    raw: dict[str, Any], video: bool, lat: float | None, lon: float | None
) -> tuple[str | None, str | None, str, str | None]:
    has_pos = lat is not None and lon is not None

    def done(stamp: _Stamp, wall: datetime, off: timedelta | None, source: str):
        utc = None
        if off is not None:
            utc = _iso(wall - off, stamp.frac) + "Z"
        return _iso(wall, stamp.frac), (_fmt_offset(off) if off is not None else None), source, utc

    if video:
        keys = _parse_date(_get(raw, "Keys:CreationDate", "*:CreationDate"))
        if keys is not None and keys.offset is not None:
            return done(keys, keys.wall, keys.offset, "keys")
        for key in ("*:DateTimeOriginal", "XMP-xmp:CreateDate", "XMP-exif:DateTimeOriginal"):
            value = _get(raw, key)
            st = _parse_date(value)
            if st is not None and st.offset is not None:
                if str(value).strip().endswith("Z"):
                    # MKV/WebM DateUTC: an instant, not a local wall time.
                    return _from_utc(st, lat, lon)
                return done(st, st.wall, st.offset, "offset_time")
        qt = _parse_date(
            _get(raw, "QuickTime:CreateDate", "*:MediaCreateDate", "*:TrackCreateDate")
        )
        if qt is not None:
            return _from_utc(qt, lat, lon)
        stamp = keys or _parse_date(_get(raw, "*:DateTimeOriginal", "*:CreateDate"))
        if stamp is None:
            return None, None, "unknown", None
        if has_pos:
            off = _offset_at_position(stamp.wall, lat, lon, wall_is_utc=False)  # type: ignore[arg-type]
            if off is not None:
                return done(stamp, stamp.wall, off, "gps_position")
        return done(stamp, stamp.wall, None, "unknown")

    stamp, offset = _photo_time(raw)
    if stamp is None:
        # HEIF sequences and other ISO-BMFF stills may only have the movie header's UTC date.
        qt = _parse_date(_get(raw, "QuickTime:CreateDate"))
        return _from_utc(qt, lat, lon) if qt else (None, None, "unknown", None)
    if offset is not None:
        return done(stamp, stamp.wall, offset, "offset_time")
    gps = _gps_utc(raw)
    if gps is not None:
        off = _offset_from_gps_time(stamp.wall, gps)
        if off is not None:
            return done(stamp, stamp.wall, off, "gps_time")
    if has_pos:
        off = _offset_at_position(stamp.wall, lat, lon, wall_is_utc=False)  # type: ignore[arg-type]
        if off is not None:
            return done(stamp, stamp.wall, off, "gps_position")
    return done(stamp, stamp.wall, None, "unknown")


def _from_utc(
    st: _Stamp, lat: float | None, lon: float | None
) -> tuple[str | None, str | None, str, str | None]:
    utc = _iso(st.wall, st.frac) + "Z"
    if lat is not None and lon is not None:
        off = _offset_at_position(st.wall, lat, lon, wall_is_utc=True)
        if off is not None:
            return _iso(st.wall + off, st.frac), _fmt_offset(off), "quicktime_utc", utc
    return _iso(st.wall, st.frac), None, "unknown", utc


def _gps(raw: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    # Composite GPSLatitude/Longitude already carry the N/S, E/W sign under -n.
    lat = _num(_get(raw, "Composite:GPSLatitude"))
    lon = _num(_get(raw, "Composite:GPSLongitude"))
    if lat is None or lon is None:
        lat, lon = _signed(raw, "Latitude", "S"), _signed(raw, "Longitude", "W")
    if lat is None or lon is None:
        coords = _str(_get(raw, "*:GPSCoordinates", "Composite:GPSPosition"))
        parts = (coords or "").replace(",", " ").split()
        try:
            lat, lon = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            lat = lon = None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None, None, None
    alt = _num(_get(raw, "Composite:GPSAltitude"))
    if alt is None:
        alt = _num(_get(raw, "GPS:GPSAltitude"))
        if alt is not None and _num(_get(raw, "GPS:GPSAltitudeRef")) == 1:
            alt = -alt  # AltitudeRef 1 = below sea level
    return lat, lon, alt


def _signed(raw: dict[str, Any], axis: str, negative_ref: str) -> float | None:
    v = _num(_get(raw, f"GPS:GPS{axis}", f"*:GPS{axis}"))
    if v is None:
        return None
    ref = (_str(_get(raw, f"GPS:GPS{axis}Ref", f"*:GPS{axis}Ref")) or "").upper()
    return -abs(v) if ref.startswith(negative_ref) else v


def _duration(v: Any) -> float | None:
    n = _num(v)
    if n is not None:
        return n
    s = _str(v)  # Matroska under -n: "00:00:13,699000000"
    m = re.fullmatch(r"(\d+):(\d{2}):(\d{2})(?:[.,](\d+))?", s or "")
    if not m:
        return None
    frac = float(f"0.{m.group(4)}") if m.group(4) else 0.0
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3)) + frac


def _dims(raw: dict[str, Any]) -> tuple[int | None, int | None]:
    size = _str(_get(raw, "Composite:ImageSize"))
    if size:
        parts = re.split(r"[ x]", size)
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    w = _num(_get(raw, "File:ImageWidth", "*:ImageWidth", "*:ExifImageWidth"))
    h = _num(_get(raw, "File:ImageHeight", "*:ImageHeight", "*:ExifImageHeight"))
    return (int(w) if w else None), (int(h) if h else None)


def _lens(raw: dict[str, Any]) -> str | None:
    for key in ("*:LensModel", "*:Lens", "Composite:LensID", "*:CameraLensModel"):
        s = _str(_get(raw, key))
        # Under -n some makers' LensID/Lens are numeric codes; a code is no lens name.
        if s and re.search(r"[A-Za-z]", s):
            return s
    return None


def _error(raw: dict[str, Any]) -> str | None:
    err = _str(_get(raw, "ExifTool:Error", "*:Error"))
    if err:
        return err
    if not _present(raw.get("File:FileType")):
        return "Unknown file type"
    return None


# ExifTool 12.57 calls the Apple maker-note ContentIdentifier (0x0011) MediaGroupUUID.
_CONTENT_ID_KEYS = ("Apple:ContentIdentifier", "Apple:MediaGroupUUID", "*:ContentIdentifier")


def parse_metadata(path: str, raw: dict[str, Any]) -> MediaMetadata:
    """Normalise one ExifTool `-json -n -G1 -a` answer."""
    mime = _str(raw.get("File:MIMEType"))
    file_type = _str(raw.get("File:FileType"))
    error = _error(raw)
    video = _is_video(mime, file_type)
    lat, lon, alt = _gps(raw)
    # Audio in MP4/M4A carries the same QuickTime UTC dates as video.
    timed_like_video = video or bool(mime and mime.startswith("audio/"))
    local, offset, source, utc = _resolve_time(raw, timed_like_video, lat, lon)

    orientation_n = _num(_get(raw, "IFD0:Orientation", "*:Orientation"))
    orientation = int(orientation_n) if orientation_n and 1 <= orientation_n <= 8 else None
    rotation_n = _num(_get(raw, "Composite:Rotation", "QuickTime:Rotation", "*:Rotation"))
    rotation = int(rotation_n) % 360 if rotation_n is not None else None

    width, height = _dims(raw)
    turned = (orientation or 1) >= 5 if not video else rotation in (90, 270)
    if turned:
        width, height = height, width

    duration = _duration(_get(raw, "QuickTime:Duration", "*:Duration"))
    if mime and mime.startswith("image/") and file_type not in {"GIF", "WEBP", "HEICS", "HEIFS"}:
        duration = None  # RAW containers (CR3) report a movie-header duration; not a clip
    if duration is not None and mime and mime.startswith("image/") and duration <= 0:
        duration = None

    return MediaMetadata(
        path=path,
        mime=mime,
        width=width,
        height=height,
        orientation=orientation,
        taken_at_local=local,
        tz_offset=offset,
        tz_source=source,
        taken_at_utc=utc,
        latitude=lat,
        longitude=lon,
        altitude=alt,
        make=_str(_get(raw, "IFD0:Make", "*:Make")),
        model=_str(_get(raw, "IFD0:Model", "*:Model")),
        lens=_lens(raw),
        duration=duration,
        rotation=rotation if video or rotation else None,
        content_identifier=_str(
            _get(raw, "Apple:ContentIdentifier", "Apple:MediaGroupUUID", "*:ContentIdentifier")
        ),
        file_type=file_type,
        error=error,
    )


def read_metadata(paths: Iterable[Path | str]) -> list[MediaMetadata]:
    """Metadata for every path, in order, from one shared ExifTool process."""
    items = [Path(p) for p in paths]
    raws = shared_exiftool().read(items)
    return [parse_metadata(str(p), raw) for p, raw in zip(items, raws, strict=True)]
