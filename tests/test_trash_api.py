"""HTTP Range on originals, and delete / restore / empty the trash, through the API (no browser).

Real files from the shared roll, real ingest (ExifTool, previews), real encrypted blob store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from sqlalchemy import String, func, select

from camroll.crypto.stream import HEADER, SEGMENT, TAG
from tests.conftest import ROLL, make_user, run_cli
from tests.test_api import auth, upload
from tests.test_s3_store import moto_url, s3  # noqa: F401 - fixtures

TRAIN = ROLL / "lychee" / "Samples" / "train.mov"  # 1.5 MB H.264: two 1 MiB segments
PHOTO = ROLL / "pigallery2" / "demo" / "IMG_6220.jpg"
SMALL = ROLL / "exif-samples" / "jpg"
SMALL_NAMES = ["Canon_40D.jpg", "Nikon_D70.jpg", "Pentax_K10D.jpg"]


def ingest(client: httpx.Client, token: str, path: Path) -> str:
    """Upload through tus, then run the real ingest in-process (app_client has no worker)."""
    from camroll.ingest.process import process_asset

    asset_id = upload(client, token, path.read_bytes(), path.name)
    assert process_asset(asset_id) == "ready"
    return asset_id


def rows_mentioning(asset_id: str) -> dict[str, int]:
    """Every row in every table with a text column holding this asset id."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Base

    found: dict[str, int] = {}
    with session_scope() as s:
        for table in Base.metadata.sorted_tables:
            for col in table.c:
                if isinstance(col.type, String):
                    n = s.scalar(select(func.count()).select_from(table).where(col == asset_id))
                    if n:
                        found[f"{table.name}.{col.name}"] = n
    return found


def blobs_of(env: dict, user_id: str, asset_id: str) -> list[str]:
    from camroll.storage import get_store

    return [k for k in get_store().keys(f"u/{user_id}/") if asset_id in k]


@pytest.mark.backends("sqlite")  # HTTP and the blob format; the queries are covered below
def test_original_answers_http_range_decrypting_only_asked_segments(
    app_client: httpx.Client, env: dict
) -> None:
    token = make_user("range@example.org")
    other = make_user("other@example.org")
    data = TRAIN.read_bytes()
    n = len(data)
    assert SEGMENT < n < 2 * SEGMENT
    asset_id = ingest(app_client, token, TRAIN)
    url = f"/api/assets/{asset_id}/original"

    whole = app_client.get(url, headers=auth(token))
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"

    def get(spec: str) -> httpx.Response:
        return app_client.get(url, headers={**auth(token), "Range": spec})

    r = get("bytes=0-")
    assert r.status_code == 206 and r.content == data
    assert r.headers["content-range"] == f"bytes 0-{n - 1}/{n}"
    r = get("bytes=-500")
    assert r.status_code == 206 and r.content == data[-500:]
    assert r.headers["content-range"] == f"bytes {n - 500}-{n - 1}/{n}"
    # Across the segment boundary: the end of segment 0 and the start of segment 1.
    lo, hi = SEGMENT - 1000, SEGMENT + 999
    r = get(f"bytes={lo}-{hi}")
    assert r.status_code == 206 and r.content == data[lo : hi + 1]
    assert r.headers["content-length"] == "2000"
    assert r.headers["content-type"].startswith("video/quicktime")
    r = get(f"bytes=100-{n + 5000}")  # an end past the file is clipped
    assert r.status_code == 206 and r.content == data[100:]
    for bad in (f"bytes={n}-", "bytes=50-10", "bytes=-0", "bytes=abc", "items=0-1"):
        r = get(bad)
        assert r.status_code == 416, bad
        assert r.headers["content-range"] == f"bytes */{n}"
    # Someone else's id is 404, with or without a Range.
    for headers in ({}, {"Range": "bytes=0-9"}):
        r = app_client.get(url, headers={**auth(other), **headers})
        assert r.status_code == 404 and r.json()["detail"] == "asset not found"

    # Only the asked-for segments are decrypted: damage segment 0 in the store, and a range
    # inside segment 1 still reads, while one touching segment 0 fails cleanly (410).
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset

    with session_scope() as s:
        key = s.get(Asset, asset_id).original_key
    blob = Path(env["CAMROLL_DATA_DIR"]) / "blobs" / key
    raw = bytearray(blob.read_bytes())
    assert len(raw) == HEADER + n + 2 * TAG
    raw[HEADER + 10] ^= 0xFF
    blob.write_bytes(bytes(raw))
    r = get(f"bytes={SEGMENT + 10}-{SEGMENT + 20}")
    assert r.status_code == 206 and r.content == data[SEGMENT + 10 : SEGMENT + 21]
    assert get("bytes=0-9").status_code == 410


def test_delete_restore_and_empty_the_trash_leave_nothing(
    app_client: httpx.Client, env: dict
) -> None:
    from camroll.db.engine import session_scope
    from camroll.db.models import User

    token = make_user("trash@example.org")
    other = make_user("nosy@example.org")
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == "trash@example.org")).one()
    photo = ingest(app_client, token, PHOTO)
    keep = ingest(app_client, token, TRAIN)
    assert blobs_of(env, user_id, photo)  # original and renditions are stored
    # A collage made from the photo: it must be withdrawn when the photo is erased.
    from camroll.consent.gate import set_scopes

    with session_scope() as s:
        set_scopes(s, user_id, {"creations": True}, client="test")
    others = [ingest(app_client, token, SMALL / n) for n in SMALL_NAMES]
    r = app_client.post(
        "/api/ideas",
        headers=auth(token),
        json={"kind": "collage", "asset_ids": [photo, *others], "title": "Four"},
    )
    assert r.status_code == 201, r.text
    collage = r.json()["id"]
    assert blobs_of(env, user_id, collage)  # its rendered media is stored
    # Idea media answer Range too (recaps must seek on iOS Safari).
    media = app_client.get(f"/api/ideas/{collage}/media", headers=auth(token)).content
    part = app_client.get(
        f"/api/ideas/{collage}/media", headers={**auth(token), "Range": "bytes=-100"}
    )
    assert part.status_code == 206 and part.content == media[-100:]
    assert (
        part.headers["content-range"] == f"bytes {len(media) - 100}-{len(media) - 1}/{len(media)}"
    )

    def listed() -> set[str]:
        page = app_client.get("/api/assets", headers=auth(token)).json()
        return {a["id"] for a in page["items"]}

    assert app_client.delete(f"/api/assets/{photo}", headers=auth(other)).status_code == 404
    r = app_client.delete(f"/api/assets/{photo}", headers=auth(token))
    assert r.status_code == 200 and r.json() == {"ids": [photo], "status": "trashed"}
    assert listed() == {keep, *others}
    # A trashed photo is no input for new ideas (the collage already made waits with it).
    r = app_client.post(
        "/api/ideas", headers=auth(token), json={"kind": "recap", "asset_ids": [photo, *others]}
    )
    assert r.status_code == 404
    assert app_client.get(f"/api/ideas/{collage}", headers=auth(token)).status_code == 200
    trash = app_client.get("/api/trash", headers=auth(token)).json()
    assert [i["id"] for i in trash["items"]] == [photo] and trash["days"] == 30
    item = trash["items"][0]
    waited = dt.datetime.fromisoformat(item["erased_after"]) - dt.datetime.fromisoformat(
        item["trashed_at"]
    )
    assert waited == dt.timedelta(days=30)
    assert app_client.get("/api/trash", headers=auth(other)).json()["items"] == []
    assert app_client.post(f"/api/assets/{photo}/restore", headers=auth(other)).status_code == 404
    assert app_client.post(f"/api/assets/{keep}/restore", headers=auth(token)).status_code == 409

    r = app_client.post(f"/api/assets/{photo}/restore", headers=auth(token))
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert listed() == {photo, keep, *others}

    # Someone else emptying their trash touches nothing of ours.
    assert app_client.delete(f"/api/assets/{photo}", headers=auth(token)).status_code == 200
    assert app_client.delete("/api/trash", headers=auth(other)).json() == {"erased": 0}
    assert app_client.get(f"/api/assets/{photo}", headers=auth(token)).status_code == 200
    # A backup copy of the original, taken while the photo sat in the trash.
    from camroll.crypto.stream import DecryptionError, decrypt_stream
    from camroll.db.models import Asset, AssetKey
    from camroll.keyring import user_data_key

    with session_scope() as s:
        original = s.get(Asset, photo).original_key
        assert s.get(AssetKey, photo) is not None  # the photo has its own key
        owner_key = user_data_key(s, user_id)
    backup = (Path(env["CAMROLL_DATA_DIR"]) / "blobs" / original).read_bytes()
    assert app_client.delete("/api/trash", headers=auth(token)).json() == {"erased": 1}
    # Crypto-shredded: the copy no longer decrypts, even with the owner's (still living) key.
    with pytest.raises(DecryptionError):
        b"".join(decrypt_stream(owner_key, original, [backup]))
    assert app_client.get(f"/api/assets/{photo}", headers=auth(token)).status_code == 404
    assert rows_mentioning(photo) == {}
    assert blobs_of(env, user_id, photo) == []
    assert listed() == {keep, *others} and blobs_of(env, user_id, keep)
    assert app_client.get(f"/api/ideas/{collage}", headers=auth(token)).status_code == 404
    assert blobs_of(env, user_id, collage) == []  # the collage's media is gone too

    # Expiry: `camroll purge --as-of` erases what waited CAMROLL_TRASH_DAYS, not what is newer.
    assert app_client.delete(f"/api/assets/{keep}", headers=auth(token)).status_code == 200
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=29)).isoformat()
    assert run_cli("purge", "--as-of", soon, env=env).returncode == 0
    assert rows_mentioning(keep)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=31)).isoformat()
    r = run_cli("purge", "--as-of", later, env=env)
    assert r.returncode == 0, r.stderr
    assert rows_mentioning(keep) == {} and blobs_of(env, user_id, keep) == []


@pytest.mark.backends("sqlite")  # about the blob format, not the database
def test_plaintext_size_is_known_from_the_stored_length(env: dict) -> None:
    """Idea media have no size column: Range needs it from the blob's length, at every edge."""
    import io

    from camroll.db.engine import session_scope
    from camroll.db.models import User
    from camroll.storage.blobs import put_encrypted
    from camroll.storage.ranged import plain_size

    make_user("sizes@example.org")
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == "sizes@example.org")).one()
        for n in (0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 2 * SEGMENT, 2 * SEGMENT + 7):
            key = f"u/{user_id}/sizes/{n}"
            put_encrypted(s, user_id, key, io.BytesIO(b"x" * n))
            assert plain_size(key) == n, n


@pytest.mark.backends("sqlite")
def test_ranges_on_s3(env: dict, s3: tuple[str, object], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The same ranged reads against a real S3 API (moto server): only the asked-for bytes."""
    import io
    import os

    from camroll.config import get_settings
    from camroll.db.engine import session_scope
    from camroll.db.models import User
    from camroll.storage import BlobNotFound, _cached, get_store
    from camroll.storage.blobs import put_encrypted
    from camroll.storage.ranged import plain_size, read_decrypted_range

    bucket, _ = s3
    monkeypatch.setenv("CAMROLL_STORAGE_URL", f"s3://{bucket}/camroll")
    get_settings.cache_clear()
    _cached.cache_clear()
    store = get_store()
    assert type(store).__name__ == "S3BlobStore"
    store.put("raw", [b"0123456789"])
    assert b"".join(store.get_range("raw", 2, 5)) == b"23456"
    assert store.size("raw") == 10
    with pytest.raises(BlobNotFound):
        store.size("absent")

    make_user("s3range@example.org")
    data = os.urandom(SEGMENT + 5000)
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == "s3range@example.org")).one()
        key = f"u/{user_id}/x/original"
        put_encrypted(s, user_id, key, io.BytesIO(data))
        assert plain_size(key) == len(data)
        lo, hi = SEGMENT - 10, SEGMENT + 10
        got = b"".join(read_decrypted_range(s, user_id, key, len(data), lo, hi))
        assert got == data[lo : hi + 1]
