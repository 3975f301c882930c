"""Truncation and junk, the pipeline's way (ExifTool's type, headers-only classify, one decode).

Decoders do not always notice a cut file (libheif fills missing HEIC tiles silently; a video whose
first frame survived still yields a poster), so these pin the box-size check in validate.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from camroll.client.sync import walk
from camroll.media.metadata import read_metadata
from camroll.media.previews import render_previews
from camroll.media.validate import Quarantined, classify
from tests.conftest import ROLL


def ingest(path: Path) -> tuple[str, object]:
    """What the pipeline does: content type from ExifTool, classify, one decode for previews."""
    meta = read_metadata([path])[0]
    try:
        kind = classify(path, meta.mime, decode=False)
        return kind, render_previews(path, kind, meta.orientation)
    except Quarantined as q:
        return "quarantined", q


@pytest.mark.parametrize(
    "rel",
    [
        "exif-samples/jpg/Canon_40D.jpg",
        "exif-samples/heic/mobile/iphone_13_pro_max.HEIC",
        "pigallery2/test-assets/orientation/IMG_0307.HEIC",
    ],
)
def test_truncated_files_are_quarantined_not_crashing(tmp_path: Path, rel: str) -> None:
    data = (ROLL / rel).read_bytes()
    cut = tmp_path / Path(rel).name
    cut.write_bytes(data[: len(data) // 2])
    kind, q = ingest(cut)
    assert kind == "quarantined" and q.reason in ("truncated", "corrupt"), q


def test_truncated_video_is_quarantined(tmp_path: Path) -> None:
    video = max(
        (p for p in walk(ROLL) if p.suffix.lower() == ".mp4"), key=lambda p: p.stat().st_size
    )
    cut = tmp_path / video.name
    cut.write_bytes(video.read_bytes()[:4096])
    kind, q = ingest(cut)
    assert kind == "quarantined" and q.reason in ("truncated", "corrupt"), q


def test_unknown_and_non_media_files_are_unsupported(tmp_path: Path) -> None:
    noise = tmp_path / "IMG_0002.JPG"
    noise.write_bytes(bytes(range(256)) * 40)
    for path in (noise, ROLL / "exif-samples/jpg/gps/README"):
        kind, q = ingest(path)
        assert kind == "quarantined" and q.reason in ("unsupported_type", "corrupt"), q
