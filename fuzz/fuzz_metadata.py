"""atheris target: the ExifTool-answer normaliser (camroll.media.metadata.parse_metadata).

Feeds it dictionaries of the keys it reads, with fuzzed strings, numbers and lists as values
(dates, offsets, GPS, sizes, durations). Any exception is a bug: hostile metadata must come out
as unknown fields, never as an error.

    .venv/bin/python fuzz/fuzz_metadata.py -atheris_runs=1000000 fuzz/corpus/metadata
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["camroll"]):
    from camroll.media.metadata import parse_metadata

KEYS = [
    "File:MIMEType",
    "File:FileType",
    "ExifIFD:DateTimeOriginal",
    "ExifIFD:OffsetTimeOriginal",
    "ExifIFD:SubSecTimeOriginal",
    "ExifIFD:CreateDate",
    "XMP-xmp:CreateDate",
    "QuickTime:CreateDate",
    "Keys:CreationDate",
    "Composite:GPSLatitude",
    "Composite:GPSLongitude",
    "GPS:GPSLatitude",
    "GPS:GPSLatitudeRef",
    "GPS:GPSDateStamp",
    "GPS:GPSTimeStamp",
    "Composite:GPSDateTime",
    "Composite:ImageSize",
    "File:ImageWidth",
    "File:ImageHeight",
    "IFD0:Orientation",
    "Composite:Rotation",
    "QuickTime:Duration",
    "Matroska:Duration",
    "Composite:GPSAltitude",
    "Apple:ContentIdentifier",
    "ExifTool:Error",
    "IFD0:Make",
    "ExifIFD:LensModel",
    "QuickTime:GPSCoordinates",
]
MIMES = ["image/jpeg", "video/mp4", "image/heic", "audio/mp4", "video/x-matroska", None]


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    raw: dict[str, object] = {"File:MIMEType": MIMES[fdp.ConsumeIntInRange(0, len(MIMES) - 1)]}
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        key = KEYS[fdp.ConsumeIntInRange(0, len(KEYS) - 1)]
        kind = fdp.ConsumeIntInRange(0, 4)
        if kind == 0:
            raw[key] = fdp.ConsumeUnicodeNoSurrogates(40)
        elif kind == 1:
            raw[key] = fdp.ConsumeRegularFloat()
        elif kind == 2:
            raw[key] = fdp.ConsumeInt(8)
        elif kind == 3:  # date-shaped: the parser's main input
            raw[key] = (
                f"{fdp.ConsumeIntInRange(0, 9999):04d}:{fdp.ConsumeIntInRange(0, 99):02d}:"
                f"{fdp.ConsumeIntInRange(0, 99):02d} {fdp.ConsumeIntInRange(0, 99):02d}:"
                f"{fdp.ConsumeIntInRange(0, 99):02d}:{fdp.ConsumeIntInRange(0, 99):02d}"
                f"{fdp.PickValueInList(['', 'Z', '+14:00', '-14:00', '+00:01', '-99:99'])}"
            )
        else:
            raw[key] = [fdp.ConsumeUnicodeNoSurrogates(8), fdp.ConsumeRegularFloat()]
    parse_metadata("fuzz", raw)


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
