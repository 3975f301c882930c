"""The owner's export: a zip of byte-identical originals, XMP sidecars ExifTool reads back, and
JSON of everything held, built in the background and stored encrypted."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx
from sqlalchemy import select

from camroll.db.engine import session_scope
from camroll.db.models import User
from camroll.privacy.export import _unique
from tests.conftest import ROLL, Server, make_user
from tests.test_sync_e2e import all_assets, sync

FOLDERS = {
    "gps": ROLL / "exif-samples" / "jpg" / "gps",
    "world": ROLL / "pigallery2" / "test-assets" / "4MinsAroundTheWorld",
}
XMP_DATE = re.compile(r"^(\d{4}):(\d\d):(\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d:\d\d|Z)?$")


def _roll(tmp_path: Path) -> Path:
    """The two folders side by side, as one camera roll with subfolders."""
    root = tmp_path / "roll"
    for name, src in FOLDERS.items():
        shutil.copytree(src, root / name)
    return root


def _wait_ready(client: httpx.Client, url: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(url)
        if r.status_code != 202:
            return r
        assert r.json()["status"] in ("pending", "running"), r.json()
        time.sleep(0.3)
    raise AssertionError(f"export not ready after {timeout} s")


def test_export_zip_originals_json_and_sidecars(server: Server, env: dict, tmp_path: Path) -> None:
    token = make_user("export@example.org")
    roll = _roll(tmp_path)
    local = {p.relative_to(roll).as_posix(): p.read_bytes() for p in roll.rglob("*") if p.is_file()}
    assert sync(server, token, env, roll)["failed"] == []
    client = server.client(token)
    assets = all_assets(client)
    assert len(assets) == len(local)

    r = client.post("/api/me/export")
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["status"] == "pending" and started["url"] == f"/api/me/export/{started['id']}"
    r = _wait_ready(client, started["url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None

    # Originals: every synced file, byte-identical, at its device path.
    for rel, raw in local.items():
        got = zf.read(f"originals/{rel}")
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(raw).hexdigest(), rel

    # camroll.json: the transparency report with every asset, each pointing into the zip.
    report = json.loads(zf.read("camroll.json"))
    items = report["assets"]["items"]
    assert report["assets"]["total"] == len(assets)
    assert sorted(i["id"] for i in items) == sorted(a["id"] for a in assets)
    assert {i["export_path"] for i in items} == {f"originals/{rel}" for rel in local}
    assert report["categories"]["originals"]["count"] == len(assets)
    assert report["export"]["id"] == started["id"] and report["export"]["not_included"]

    # Sidecars: ExifTool reads the date (with offset) and GPS back as the API shows them.
    out = tmp_path / "unzipped"
    zf.extractall(out)
    sidecars = sorted(str(p) for p in out.rglob("*.xmp"))
    assert len(sidecars) == len(local)
    read = json.loads(
        subprocess.run(
            ["exiftool", "-json", "-n", *sidecars], capture_output=True, check=True
        ).stdout
    )
    by_path = {Path(x["SourceFile"]).relative_to(out / "originals").as_posix(): x for x in read}
    with_date = with_gps = with_offset = 0
    for item in items:
        xmp = by_path[item["export_path"].removeprefix("originals/") + ".xmp"]
        api = client.get(f"/api/assets/{item['id']}").json()
        assert xmp["PreservedFileName"] == api["filename"]
        if api["latitude"] is not None:
            with_gps += 1
            assert abs(xmp["GPSLatitude"] - api["latitude"]) < 1e-5, (api, xmp)
            assert abs(xmp["GPSLongitude"] - api["longitude"]) < 1e-5, (api, xmp)
        else:
            assert "GPSLatitude" not in xmp
        if api["taken_at_local"]:
            with_date += 1
            m = XMP_DATE.match(str(xmp["DateTimeOriginal"]))
            assert m, xmp["DateTimeOriginal"]
            assert f"{m[1]}-{m[2]}-{m[3]}T{m[4]}" == api["taken_at_local"], (api, xmp)
            assert m[5] == api["tz_offset"], (api, xmp)
            with_offset += api["tz_offset"] is not None
        else:
            assert "DateTimeOriginal" not in xmp
    assert with_gps >= 15 and with_date >= 17 and with_offset >= 15, (with_gps, with_date)

    # Only the owner can see it; unknown ids look the same.
    other = server.client(make_user("other@example.org"))
    assert other.get(started["url"]).status_code == 404
    assert client.get("/api/me/export/" + "0" * 32).status_code == 404
    assert httpx.get(server.url + started["url"]).status_code == 401

    # At rest the zip is ciphertext: no 64-byte window of any original, nor of the JSON.
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == "export@example.org")).one()
    at_rest = Path(env["CAMROLL_DATA_DIR"]) / "blobs" / "u" / user_id / "exports"
    stored = next(at_rest.glob(f"{started['id']}*")).read_bytes()
    # Whole headers, not 4-byte magics: a short pattern turns up in megabytes of random bytes.
    assert r.content[:64] not in stored and r.content[-64:] not in stored
    for rel, raw in [*local.items(), ("camroll.json", zf.read("camroll.json"))]:
        windows = [raw[i : i + 64] for i in range(len(raw) // 2, len(raw) - 64, 4096)][:4]
        for window in (w for w in windows if len(set(w)) >= 24):
            assert window not in stored, rel


def test_unique_names_never_collide() -> None:
    taken: set[str] = set()
    names = [_unique(n, taken) for n in ["a.jpg", "A.JPG", "a.jpg", "a.jpg.xmp", "b"]]
    assert names == ["a.jpg", "A (2).JPG", "a (3).jpg", "a.jpg (2).xmp", "b"]
