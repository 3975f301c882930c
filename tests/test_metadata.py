"""ExifTool wrapper and metadata normalisation, on the real camera roll.

Run with `-s` to see the agreement table against ExifTool's own reading of the roll.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from camroll.media.exiftool import ExifTool, exiftool_version, shared_exiftool
from camroll.media.inspect import inspect_paths
from camroll.media.metadata import parse_metadata, read_metadata

DATA = Path(os.environ.get("CAMROLL_TEST_DATA", Path(__file__).parents[2] / "shared" / "data"))
if not DATA.exists():
    DATA = Path("/work/shared/data")
ROLL = DATA / "camera-roll"
GROUND_TRUTH = DATA / "camera-roll.exiftool.json"


INSPECT_KEYS = {
    "path",
    "mime",
    "width",
    "height",
    "orientation",
    "taken_at_local",
    "tz_offset",
    "tz_source",
    "taken_at_utc",
    "latitude",
    "longitude",
    "altitude",
    "make",
    "model",
    "duration",
    "error",
}


@cache
def _ground_truth() -> list[dict[str, Any]]:
    return json.loads(GROUND_TRUTH.read_text())


@cache
def _inspected() -> list[dict[str, Any]]:
    return inspect_paths([ROLL / e["SourceFile"] for e in _ground_truth()])


def _gt_wall(v: Any) -> str | None:
    m = re.match(r"(\d{4}):(\d\d):(\d\d) (\d\d):(\d\d):(\d\d)", str(v))
    if not m or m[1] == "0000":
        return None
    return f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}"


def _gt_offset(e: dict[str, Any]) -> str | None:
    if "OffsetTimeOriginal" in e:
        return e["OffsetTimeOriginal"]
    if "DateTimeOriginal" not in e and "OffsetTime" in e:
        return e["OffsetTime"]
    return None


def _groups_holding(path: Path, tag: str, value: Any) -> set[str]:
    """Which ExifTool groups of `path` hold `tag` with exactly `value`."""
    with ExifTool() as et:
        raw = et.execute("-json", "-n", "-G1", "-a", f"-{tag}", str(path))
    item = json.loads(raw)[0]
    return {k.split(":")[0] for k, v in item.items() if k.endswith(f":{tag}") and v == value}


# -- 1. agreement with ExifTool's reading of the roll ---------------------------------------------


def _explain(field: str, e: dict[str, Any], ours: dict[str, Any], gt: Any) -> str | None:
    """A reason for a disagreement, checked by rule; None means unexplained (a bug)."""
    path = ROLL / e["SourceFile"]
    if isinstance(gt, str) and gt.strip() == "" and ours.get(field) is None:
        return "ground truth holds an empty string; we report None (no value)"
    if field == "orientation" and gt not in range(1, 9) and ours["orientation"] is None:
        return "ground truth orientation is outside EXIF 1-8 (0 or a non-EXIF code); we report None"
    if field == "local_time":
        if str(gt).startswith("0000:00:00") and ours["taken_at_local"] is None:
            return "zero date 0000:00:00 means no date; we report None"
        if (
            "DateTimeOriginal" not in e
            and ours["tz_source"] == "keys"
            and (ours["mime"] or "").startswith("video/")
        ):
            return (
                "ground truth CreateDate is QuickTime's UTC container date; we use Apple's "
                "Keys:CreationDate, the local capture time with its offset"
            )
    if field in {"local_time", "make", "model"}:
        tag = {"local_time": "DateTimeOriginal", "make": "Make", "model": "Model"}[field]
        gt_groups = _groups_holding(path, tag, gt)
        if gt_groups and gt_groups.isdisjoint({"IFD0", "ExifIFD"}):
            ours_value: Any = ours["taken_at_local"] if field == "local_time" else ours[field]
            if field == "local_time":
                ours_value = ours_value.replace("-", ":").replace("T", " ")[:19]
            if _groups_holding(path, tag, ours_value) & {"IFD0", "ExifIFD"}:
                return (
                    f"file holds two cameras' metadata; ground truth took {tag} from "
                    f"{sorted(gt_groups)}, we take the file's EXIF (IFD0/ExifIFD)"
                )
    return None


def test_agreement_with_exiftool_ground_truth() -> None:
    gt_all, ours_all = _ground_truth(), _inspected()
    assert len(ours_all) == len(gt_all)
    stats: dict[str, Counter[str]] = {}
    disagreements: list[tuple[str, str, Any, Any, str | None]] = []

    def compare(field: str, e: dict[str, Any], ours: dict[str, Any], gt: Any, mine: Any, ok: bool):
        c = stats.setdefault(field, Counter())
        c["compared"] += 1
        if ok:
            c["agree"] += 1
            return
        c["disagree"] += 1
        reason = _explain(field, e, ours, gt)
        disagreements.append((field, e["SourceFile"], gt, mine, reason))

    for e, ours in zip(gt_all, ours_all, strict=True):
        assert ours["path"] == str(ROLL / e["SourceFile"])
        gt_date = e.get("DateTimeOriginal", e.get("CreateDate"))
        if gt_date is not None:
            mine = (ours["taken_at_local"] or "")[:19] or None  # sub-seconds aside
            compare("local_time", e, ours, gt_date, mine, _gt_wall(gt_date) == mine)
        if (off := _gt_offset(e)) is not None:
            compare("offset", e, ours, off, ours["tz_offset"], off == ours["tz_offset"])
        for tag, field in (("GPSLatitude", "latitude"), ("GPSLongitude", "longitude")):
            if tag in e:
                mine = ours[field]
                ok = isinstance(e[tag], int | float) and mine is not None
                compare(field, e, ours, e[tag], mine, ok and abs(e[tag] - mine) <= 1e-5)
        if "Orientation" in e:
            o = e["Orientation"]
            compare("orientation", e, ours, o, ours["orientation"], o == ours["orientation"])
        for tag, field in (("Make", "make"), ("Model", "model")):
            if tag in e:
                ok = str(e[tag]).strip() == ours[field]
                compare(field, e, ours, e[tag], ours[field], ok)

    print("\nAgreement with camera-roll.exiftool.json")
    print(f"{'field':<12} {'compared':>8} {'agree':>6} {'disagree':>8}")
    for field, c in stats.items():
        print(f"{field:<12} {c['compared']:>8} {c['agree']:>6} {c['disagree']:>8}")
    print("Disagreements:")
    for field, src, gt, mine, reason in disagreements:
        print(
            f"  {field:<11} {src}: truth={gt!r} ours={mine!r}\n      -> {reason or 'UNEXPLAINED'}"
        )

    unexplained = [d for d in disagreements if d[4] is None]
    assert not unexplained, unexplained
    # Fields with no explainable category must agree everywhere.
    assert stats["offset"]["disagree"] == 0
    # Guard against the comparison silently comparing nothing.
    assert stats["local_time"]["compared"] > 200 and stats["latitude"]["compared"] > 90
    assert stats["local_time"]["agree"] / stats["local_time"]["compared"] > 0.97


def test_inspect_has_contract_keys_and_mime_from_content() -> None:
    for d in _inspected():
        assert d.keys() >= INSPECT_KEYS
        assert d["tz_source"] in {
            "offset_time",
            "gps_time",
            "gps_position",
            "unknown",
            "quicktime_utc",
            "keys",
        }
        if d["taken_at_utc"] is not None:
            assert d["taken_at_utc"].endswith("Z")
        if d["tz_offset"] is not None:
            assert re.fullmatch(r"[+-]\d\d:\d\d", d["tz_offset"])
            assert d["taken_at_utc"] is not None
    # MIME comes from ExifTool (magic numbers), so it matches the ground truth file for file.
    for e, d in zip(_ground_truth(), _inspected(), strict=True):
        if "MIMEType" in e:
            assert d["mime"] == e["MIMEType"], e["SourceFile"]


# -- 2. time-zone sources -------------------------------------------------------------------------


def _pigallery_expectations(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (j.with_suffix(".jpg"), json.loads(j.read_text()))
        for j in sorted(folder.glob("*.json"))
        if j.with_suffix(".jpg").exists()
    ]


@pytest.mark.parametrize("folder", ["timestamps", "4MinsAroundTheWorld"])
def test_offsets_match_pigallery2_expectations(folder: str) -> None:
    cases = _pigallery_expectations(ROLL / "pigallery2" / "test-assets" / folder)
    assert len(cases) >= 7
    results = inspect_paths([p for p, _ in cases])
    sources = Counter()
    for (path, want), got in zip(cases, results, strict=True):
        sources[got["tz_source"]] += 1
        expected_instant = datetime.fromtimestamp(want["creationDate"] / 1000, UTC)
        if "creationDateOffset" in want:
            assert got["tz_offset"] == want["creationDateOffset"], path.name
            instant = datetime.fromisoformat(got["taken_at_utc"].replace("Z", "+00:00"))
        else:
            # Unknown offset: pigallery2 stores the wall time as if it were UTC.
            assert got["tz_offset"] is None and got["taken_at_utc"] is None, path.name
            assert got["tz_source"] == "unknown"
            instant = datetime.fromisoformat(got["taken_at_local"]).replace(tzinfo=UTC)
        assert instant == expected_instant, path.name
        if "_no_tsoffset_but_gps_utc" in path.name:
            assert got["tz_source"] == "gps_time", path.name
    if folder == "timestamps":
        assert {"offset_time", "gps_time", "unknown"} <= sources.keys()


def test_clock_skew_walk_falls_back_to_gps_position() -> None:
    files = sorted((ROLL / "exif-samples" / "jpg" / "gps").glob("*.jpg"))
    raws = shared_exiftool().read(files)
    for raw in raws:
        meta = parse_metadata(raw["SourceFile"], raw)
        # The camera clock is ~22 h behind GPS time: no zone is 22 h off, so the GPS-time
        # offset is rejected and the zone at the position (Tuscany, CEST) gives +02:00.
        local = datetime.fromisoformat(meta.taken_at_local or "")
        gps = datetime.strptime(raw["Composite:GPSDateTime"][:19], "%Y:%m:%d %H:%M:%S")
        assert abs((local - gps).total_seconds()) > 14 * 3600
        assert meta.tz_source == "gps_position"
        assert meta.tz_offset == "+02:00"
        assert meta.taken_at_utc is not None


def test_rules_on_synthetic_answers() -> None:
    base = {"File:FileType": "JPEG", "File:MIMEType": "image/jpeg"}
    # GPS time 5h29m behind the camera: rounds to +05:30.
    m = parse_metadata(
        "a.jpg",
        {
            **base,
            "ExifIFD:DateTimeOriginal": "2020:01:01 12:00:00",
            "ExifIFD:SubSecTimeOriginal": "123",
            "GPS:GPSDateStamp": "2020:01:01",
            "GPS:GPSTimeStamp": "06:31:05",
        },
    )
    assert (m.taken_at_local, m.tz_offset, m.tz_source) == (
        "2020-01-01T12:00:00.123",
        "+05:30",
        "gps_time",
    )
    assert m.taken_at_utc == "2020-01-01T06:30:00.123Z"
    # Zero date, GPS below sea level with the ref applied by hand.
    m = parse_metadata(
        "b.jpg",
        {
            **base,
            "ExifIFD:DateTimeOriginal": "0000:00:00 00:00:00",
            "GPS:GPSLatitude": 31.5,
            "GPS:GPSLatitudeRef": "N",
            "GPS:GPSLongitude": 35.5,
            "GPS:GPSLongitudeRef": "E",
            "GPS:GPSAltitude": 430,
            "GPS:GPSAltitudeRef": 1,
        },
    )
    assert m.taken_at_local is None and m.tz_source == "unknown" and m.altitude == -430
    # A video with only QuickTime's UTC CreateDate, in Tokyo; rotated 90 -> width/height swap.
    m = parse_metadata(
        "c.mp4",
        {
            "File:FileType": "MP4",
            "File:MIMEType": "video/mp4",
            "QuickTime:CreateDate": "2024:04:13 20:37:20",
            "Composite:GPSLatitude": 35.68,
            "Composite:GPSLongitude": 139.76,
            "Composite:Rotation": 90,
            "Composite:ImageSize": "1920 1080",
            "QuickTime:Duration": 3.5,
        },
    )
    assert (m.taken_at_local, m.tz_offset, m.tz_source) == (
        "2024-04-14T05:37:20",
        "+09:00",
        "quicktime_utc",
    )
    assert m.taken_at_utc == "2024-04-13T20:37:20Z"
    assert (m.width, m.height, m.duration) == (1080, 1920, 3.5)


# -- 3. broken inputs -----------------------------------------------------------------------------


def test_broken_inputs_keep_order_and_never_raise(tmp_path: Path) -> None:
    rnd = tmp_path / "random.jpg"
    rnd.write_bytes(os.urandom(4096))
    good = ROLL / "pigallery2" / "test-assets" / "timestamps" / "big_ben.jpg"
    paths = [
        ROLL / "pigallery2" / "demo" / "broken image.JPG",
        good,
        ROLL / "exif-samples" / "jpg" / "corrupted.jpg",
        tmp_path / "does-not-exist.jpg",
        rnd,
        tmp_path,
        good,
    ]
    out = inspect_paths(paths)
    assert [d["path"] for d in out] == [str(p) for p in paths]
    assert out[0]["error"] and "zero" in out[0]["error"]
    assert out[1]["error"] is None and out[1]["tz_offset"] == "+01:00"
    assert out[2]["mime"] == "image/jpeg"  # the header still reads
    assert out[3]["error"] == "File not found"
    assert out[4]["error"] and out[4]["mime"] is None and out[4]["taken_at_local"] is None
    assert out[5]["error"]
    assert out[6] == out[1]
    for d in (out[0], out[3], out[4]):
        assert d["width"] is None and d["latitude"] is None and d["tz_source"] == "unknown"


def test_lying_extension_gets_mime_from_content(tmp_path: Path) -> None:
    fake = tmp_path / "really-a-png.jpg"
    fake.write_bytes((ROLL / "pigallery2" / "test-assets" / "test_png.png").read_bytes())
    (d,) = inspect_paths([fake])
    assert d["mime"] == "image/png" and d["error"] is None


# -- 4. videos, HEIC, Live Photos -----------------------------------------------------------------


def test_videos_get_duration() -> None:
    videos = sorted(
        p for p in ROLL.rglob("*") if p.suffix.lower() in {".mp4", ".mov", ".mkv"} and p.is_file()
    )
    assert len(videos) >= 8
    for m in read_metadata(videos):
        assert m.error is None, m.path
        assert m.duration is not None and m.duration >= 0, m.path
        assert m.taken_at_utc or m.taken_at_local, m.path


def test_iphone_heic_offset_and_live_photo_pairs() -> None:
    live = ROLL / "pigallery2" / "test-assets" / "live_photo"
    lychee = ROLL / "lychee" / "Samples"
    items = read_metadata(
        [
            live / "IMG_7943.HEIC",
            lychee / "train.mov",
            live / "IMG_7943_HEVC.MOV",
            lychee / "train.jpg",
        ]
    )
    heic = items[0]
    assert heic.make == "Apple" and heic.file_type == "HEIC"
    assert (heic.tz_offset, heic.tz_source) == ("+01:00", "offset_time")
    assert heic.taken_at_local == "2026-03-23T15:57:20.001"
    assert items[2].tz_source == "keys" and items[2].taken_at_utc == "2026-03-23T14:57:19Z"
    # Each still and its motion clip carry the same Apple ContentIdentifier, and no other does;
    # the pipeline pairs them by it (tests/test_sync_e2e.py checks live_pair_id end to end).
    ids = [m.content_identifier for m in items]
    assert all(ids) and ids[0] == ids[2] and ids[3] == ids[1] and ids[0] != ids[1]
    assert [m.mime.startswith("video/") for m in items] == [False, True, True, False]


def test_extract_binary_preview() -> None:
    dng = ROLL / "pigallery2" / "image-formats" / "test.dng"
    data = shared_exiftool().extract_binary(dng, "PreviewImage")
    assert data is not None and data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert shared_exiftool().extract_binary(dng, "NoSuchTag") is None
    assert shared_exiftool().extract_binary(ROLL / "missing.dng", "PreviewImage") is None


# -- 5. one process, reused -----------------------------------------------------------------------


def test_process_is_reused_and_restarted() -> None:
    files = [ROLL / e["SourceFile"] for e in _ground_truth()[:50]]
    with ExifTool() as et:
        pid = et.pid
        for f in files:
            assert len(et.read([f])) == 1
        assert et.pid == pid
        assert exiftool_version() == et.version()
        # A dead process is replaced transparently.
        assert et._proc is not None
        et._proc.kill()
        et._proc.wait()
        assert et.read([files[0]])[0].get("File:FileType")
        assert et.pid != pid
    assert not et.running
    assert shared_exiftool() is shared_exiftool()


def test_threads_share_one_process_safely() -> None:
    from concurrent.futures import ThreadPoolExecutor

    files = [ROLL / e["SourceFile"] for e in _ground_truth()[50:90]]
    with ExifTool() as et:
        expected = [r.get("File:FileType") for r in et.read(files)]
        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda f: et.read([f])[0].get("File:FileType"), files))
    assert got == expected


def test_exiftool_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    """A SIGKILLed worker must not leave its ExifTool running forever (each holds ~90 MB)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from camroll.media.exiftool import shared_exiftool\n"
        "et = shared_exiftool()\n"
        "et.read([__import__('pathlib').Path(sys.argv[1])])\n"
        "print(et.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    jpeg = ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg"
    out = subprocess.run([sys.executable, "-c", script, str(jpeg)], capture_output=True, text=True)
    pid = int(out.stdout.split()[0])
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"ExifTool {pid} outlived its killed parent")
