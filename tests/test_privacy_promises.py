"""The privacy promises of issue 11, tried from outside through the real server:

- ideas and creations record every scope they drew on; revoking `faces` or `places` deletes
  those that drew on it, rows and media alike, and the report shows each creation's scopes;
- exports are data too: one in flight per owner, deleted at their expiry (`camroll purge
  --as-of`) and at once when a scope is revoked;
- no plaintext at rest after a SIGKILL mid-processing, private file modes, and quarantine
  details that name the problem, never a server path.

One processed library per module (the ideas part), one short-lived server for the crash part.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from camroll.db.engine import session_scope
from camroll.db.models import Export, Idea
from camroll.storage import get_store
from tests.conftest import (
    ROLL,
    SHARED,
    Server,
    clear_caches,
    isolated_env,
    make_user,
    run_cli,
)
from tests.test_export import _wait_ready
from tests.test_sync_e2e import all_assets, sync

pytestmark = pytest.mark.backends("sqlite")
DEMO = ROLL / "pigallery2" / "demo"
DEEPFACE = SHARED / "faces" / "deepface"
FACE_PHOTOS = ["img1.jpg", "img2.jpg", "img26.jpg", "couple.jpg"]
EVERY_SCOPE = {
    "cloud_processing": True,
    "faces": True,
    "places": True,
    "content": True,
    "creations": True,
}


@pytest.fixture(scope="module")
def library(
    module_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, httpx.Client, str]]:
    """The 2015 road trip of the shared roll plus four photos of faces, with every scope
    granted, analysed and made into ideas; plus an owner-made collage of the face photos."""
    roll = tmp_path_factory.mktemp("roll")
    for p in DEMO.glob("*.jpg"):
        shutil.copy(p, roll / p.name)
    for name in FACE_PHOTOS:
        shutil.copy(DEEPFACE / name, roll / name)
    server = Server(module_env).start()
    try:
        token = make_user("promises@example.org")
        client = server.client(token)
        assert client.put("/api/consent", json={"scopes": EVERY_SCOPE}).status_code == 200
        result = sync(server, token, module_env, roll)
        assert result["failed"] == [] and result["jobs"]["failed"] == 0, result
        by_name = {a["filename"]: a["id"] for a in all_assets(client)}
        own = client.post(
            "/api/ideas",
            json={
                "kind": "collage",
                "asset_ids": [by_name[n] for n in FACE_PHOTOS],
                "title": "Faces I made",
            },
        )
        assert own.status_code == 201, own.text
        user_id = client.get("/api/me/report", params={"asset_limit": 1}).json()["user_id"]
        yield server, client, user_id
    finally:
        server.stop()


def _ideas(user_id: str) -> dict[str, tuple[set[str], str | None, str]]:
    with session_scope() as s:
        return {
            i.id: (set(i.scope.split("+")), i.blob_key, i.title)
            for i in s.scalars(select(Idea).where(Idea.user_id == user_id))
        }


def _revoke_and_check(client: httpx.Client, user_id: str, scope: str) -> None:
    before = _ideas(user_id)
    drew = {i: v for i, v in before.items() if scope in v[0]}
    kept = {i: v for i, v in before.items() if scope not in v[0]}
    assert drew, f"no idea drew on {scope}: {[(v[2], v[0]) for v in before.values()]}"
    for _, key, _ in drew.values():
        assert key is None or get_store().exists(key)

    assert client.put("/api/consent", json={"scopes": {scope: False}}).status_code == 200

    after = _ideas(user_id)
    assert not {i for i, v in after.items() if scope in v[0]}
    assert set(after) == set(kept)  # exactly those that drew on it went
    for idea_id, (_, key, _) in drew.items():
        assert key is None or not get_store().exists(key)  # the media went with the row
        assert client.get(f"/api/ideas/{idea_id}").status_code == 404
    listed = {c["id"] for c in client.get("/api/me/report").json()["creations"]}
    assert listed == set(after)


def test_report_shows_each_creation_with_its_scopes(library: tuple) -> None:
    _, client, user_id = library
    creations = client.get("/api/me/report").json()["creations"]
    assert {c["id"] for c in creations} == set(_ideas(user_id))
    by_title = {c["title"]: c for c in creations}
    # Face-aware crops of photos with faces: the owner's collage drew on faces.
    assert set(by_title["Faces I made"]["scopes"]) >= {"creations", "faces"}
    trips = [c for c in creations if c["title"].startswith("Road trip")]
    assert trips and all({"creations", "places"} <= set(c["scopes"]) for c in trips)
    assert all("creations" in c["scopes"] for c in creations)


def test_exports_one_in_flight_and_deleted_at_expiry(library: tuple, module_env: dict) -> None:
    _server, client, user_id = library
    first = client.post("/api/me/export").json()
    again = client.post("/api/me/export")
    # One in flight: the second request answers the running one.
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    assert _wait_ready(client, first["url"], timeout=180).status_code == 200
    listed = client.get("/api/me/report").json()["exports"]
    assert [e["id"] for e in listed] == [first["id"]] and listed[0]["bytes"] > 0
    key = f"u/{user_id}/exports/{first['id']}.zip"
    assert get_store().exists(key)

    # Not yet expired: the purge leaves it; past CAMROLL_EXPORT_DAYS it deletes it.
    soon = (datetime.now(UTC) + timedelta(days=6)).isoformat()
    assert run_cli("purge", "--as-of", soon, env=module_env).returncode == 0
    assert client.get(first["url"]).status_code == 200
    later = (datetime.now(UTC) + timedelta(days=8)).isoformat()
    r = run_cli("purge", "--as-of", later, env=module_env)
    assert r.returncode == 0, r.stderr
    assert client.get(first["url"]).status_code == 404
    assert not get_store().exists(key)
    assert client.get("/api/me/report").json()["exports"] == []


def test_revoking_places_deletes_every_idea_and_export_that_drew_on_places(
    library: tuple,
) -> None:
    _, client, user_id = library
    # An export is deleted at once by any revocation: it holds every scope's data.
    export = client.post("/api/me/export").json()
    assert _wait_ready(client, export["url"], timeout=300).status_code == 200
    key = f"u/{user_id}/exports/{export['id']}.zip"
    assert get_store().exists(key)

    _revoke_and_check(client, user_id, "places")

    assert client.get(export["url"]).status_code == 404
    assert not get_store().exists(key)
    with session_scope() as s:
        assert s.scalars(select(Export).where(Export.user_id == user_id)).first() is None
    assert client.get("/api/me/report").json()["exports"] == []


def test_revoking_faces_deletes_every_idea_that_drew_on_faces(library: tuple) -> None:
    _, client, user_id = library
    _revoke_and_check(client, user_id, "faces")


# --- No plaintext at rest -----------------------------------------------------------------


def _windows(files: list[Path]) -> dict[bytes, str]:
    """A 64-byte window from the middle of each original: if it is anywhere, plaintext is.
    The one nearest the middle that is not padding (a run of zeros is in every file)."""
    out = {}
    for f in files:
        data = f.read_bytes()
        mid = len(data) // 2
        starts = [*range(mid, len(data) - 64, 64), *range(mid, -1, -64)]
        at = next((i for i in starts if len(set(data[i : i + 64])) >= 16), None)
        if at is not None:  # "broken image.JPG" is all zeros: nothing in it to find
            out[data[at : at + 64]] = f.name
    return out


def _plaintext_found(roots: list[Path], windows: dict[bytes, str]) -> list[str]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes()
            found += [f"{name} in {path}" for w, name in windows.items() if w in data]
    return found


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sigkill_mid_processing_leaves_no_plaintext_and_files_are_private(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env["TMPDIR"] = str(tmpdir)
    data = Path(env["CAMROLL_DATA_DIR"])
    roll = tmp_path / "roll"
    roll.mkdir()
    files = [*sorted(DEMO.glob("*.jpg"))[:19], DEMO / "broken image.JPG"]
    assert len(files) == 20
    for f in files:
        shutil.copy(f, roll / f.name)
    # An abandoned half-written blob from before the crash, old enough to be stale.
    stale = data / "blobs" / ".tmp-abandoned"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a blob")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))

    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        clear_caches()
        server = Server(env).start()
        token = make_user("crash-plain@example.org")
        client = server.client(token)
        sync_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "camroll",
                "sync",
                str(roll),
                "--server",
                server.url,
                "--token",
                token,
                "--json",
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # Kill while processing: some files done, others uploaded and waiting or running.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                statuses = [a["status"] for a in all_assets(client)]
                if sum(s != "pending" for s in statuses) >= 3 and "pending" in statuses:
                    break
                time.sleep(0.05)
            server.kill()
            crashed = [p.name for p in (data / "work").glob("*") if p.is_dir()]
            sync_proc.kill()
            sync_proc.wait()

            server = Server(env, port=server.port).start()
            r = run_cli("sync", str(roll), "--server", server.url, "--token", token, "--wait",
                        "--json", env=env, timeout=300)  # fmt: skip
            assert r.returncode in (0, 1), r.stderr
            assets = all_assets(server.client(token))
            assert len(assets) == 20 and all(a["status"] != "pending" for a in assets)

            # No plaintext byte of any original under the data dir or the temp folder.
            windows = _windows(files)
            assert len(windows) == 19
            assert _plaintext_found([data, tmpdir], windows) == [], crashed
            assert not stale.exists()  # the abandoned partial blob was swept at startup
            leftovers = [p.name for p in (data / "work").iterdir()]
            assert not set(crashed) & set(leftovers), (crashed, leftovers)

            # Modes: data dir, work dir and blobs 0700; databases, WAL/SHM and keys 0600.
            assert _mode(data) == 0o700 and _mode(data / "work") == 0o700
            assert _mode(data / "blobs") == 0o700
            private = [p for p in data.iterdir() if p.suffix == ".key" or ".db" in p.name]
            assert {p.name for p in private} >= {"camroll.db", "queue.db", "master.key"}
            assert {p.name: _mode(p) for p in private} == {p.name: 0o600 for p in private}
            for folder in (data / "blobs").rglob("*"):
                if folder.is_dir():
                    assert _mode(folder) == 0o700, folder

            # The broken file's quarantine detail names the problem, not a server path.
            broken = next(a for a in assets if a["filename"] == "broken image.JPG")
            assert broken["status"] == "quarantined" and broken["quarantine_detail"]
            _assert_no_path(broken["quarantine_reason"] + " " + broken["quarantine_detail"])
        finally:
            if sync_proc.poll() is None:
                sync_proc.kill()
            server.stop()
    clear_caches()


_ABSOLUTE = re.compile(r"(?<![\w.])/[^\s/'\"]+/")


def _assert_no_path(text: str) -> None:
    assert not _ABSOLUTE.search(text), text
    for word in ("camroll-work", "original'", "/tmp", "/work/"):
        assert word not in text, text


def _no_movie(b: bytes) -> bytes:
    """The file type box, then only media data: no movie header for the decoder to read."""
    ftyp = struct.unpack(">I", b[:4])[0]
    return b[:ftyp] + struct.pack(">I4s", 4000, b"mdat") + b"\xee" * 3992


@pytest.mark.parametrize(
    "name, damage",
    [
        ("cut.jpg", lambda b: b[: len(b) // 2]),  # truncated JPEG
        ("noise.jpg", lambda b: b[:3] + bytes(range(256)) * 40),  # JPEG magic, then garbage
        ("cut.mp4", lambda b: b[: len(b) // 3]),  # truncated video
        ("nomovie.mp4", _no_movie),  # whole boxes, but nothing a decoder can read
        ("text.heic", lambda b: b"not an image at all\n" * 50),
    ],
)
def test_quarantine_details_name_the_problem_not_a_path(
    name: str, damage: object, tmp_path: Path
) -> None:
    from camroll.media.metadata import read_metadata
    from camroll.media.previews import render_previews
    from camroll.media.validate import Quarantined, classify

    video = min(ROLL.rglob("*.mp4"), key=lambda p: p.stat().st_size)
    source = (video if name.endswith(".mp4") else DEMO / "IMG_6296.jpg").read_bytes()
    deep = tmp_path / "camroll-work-x" / "very-secret-dir"
    deep.mkdir(parents=True)
    path = deep / "original"
    path.write_bytes(damage(source))  # type: ignore[operator]
    mime = read_metadata([path])[0].mime
    with pytest.raises(Quarantined) as caught:
        kind = classify(path, mime, decode=False)
        render_previews(path, kind)
    q = caught.value
    assert q.detail and q.reason
    _assert_no_path(f"{q.reason}: {q.detail}")
    assert str(tmp_path) not in q.detail and "very-secret-dir" not in q.detail


# --- Export lifecycle on both databases (no worker: the zips are never built) -------------


@pytest.mark.backends("sqlite", "postgresql")
def test_export_lifecycle_queries_one_in_flight_expiry_and_account_deletion(
    app_client: httpx.Client, env: dict
) -> None:
    from camroll.privacy.retention import purge_due

    token = make_user("exports@example.org")
    other = make_user("other-exports@example.org")
    me = {"Authorization": f"Bearer {token}"}
    first = app_client.post("/api/me/export", headers=me).json()
    assert app_client.post("/api/me/export", headers=me).json()["id"] == first["id"]
    report = app_client.get("/api/me/report", headers=me).json()
    assert [(e["id"], e["status"]) for e in report["exports"]] == [(first["id"], "pending")]

    # Past its expiry the purge deletes it, and a new request starts a new one.
    purge_due(datetime.now(UTC) + timedelta(days=8))
    assert app_client.get(first["url"], headers=me).status_code == 404
    second = app_client.post("/api/me/export", headers=me).json()
    assert second["id"] != first["id"]
    # Another owner's request is theirs alone, and they cannot see this one.
    theirs = app_client.post("/api/me/export", headers={"Authorization": f"Bearer {other}"})
    assert theirs.json()["id"] != second["id"]
    assert (
        app_client.get(second["url"], headers={"Authorization": f"Bearer {other}"}).status_code
        == 404
    )

    # Account deletion deletes exports at once, long before the purge deadline.
    assert app_client.delete("/api/me", headers=me).status_code == 202
    with session_scope() as s:
        left = {e.id for e in s.scalars(select(Export))}
    assert second["id"] not in left and theirs.json()["id"] in left
