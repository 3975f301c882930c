"""The REST API as a client sees it: auth, consent, tus uploads, dedupe, ownership, paging."""

from __future__ import annotations

import base64
import hashlib

import httpx
import pytest

from tests.conftest import ROLL, make_user

JPEG = ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg"
TUS = {"Tus-Resumable": "1.0.0"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def meta(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def create(client: httpx.Client, token: str, data: bytes, name: str = "a.jpg", **extra: str):
    fields = {"filename": name, "filetype": "image/jpeg", **extra}
    return client.post(
        "/api/uploads",
        headers={
            **auth(token),
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": meta(**fields),
        },
    )


def patch(client: httpx.Client, token: str, url: str, offset: int, body: bytes) -> httpx.Response:
    return client.patch(
        url,
        content=body,
        headers={
            **auth(token),
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )


def upload(client: httpx.Client, token: str, data: bytes, name: str = "a.jpg") -> str:
    r = create(client, token, data, name)
    assert r.status_code == 201, r.text
    r = patch(client, token, r.headers["Location"], 0, data)
    assert r.status_code == 204, r.text
    return r.headers["Camroll-Asset-Id"]


def test_health_and_openapi(app_client: httpx.Client) -> None:
    health = app_client.get("/api/health").json()
    assert health["status"] == "ok"
    paths = app_client.get("/api/openapi.json").json()["paths"]
    for p in ["/api/assets", "/api/assets/{asset_id}", "/api/consent", "/api/jobs", "/api/uploads"]:
        assert p in paths


def test_requests_without_a_valid_token_are_refused(app_client: httpx.Client) -> None:
    assert app_client.get("/api/assets").status_code == 401
    assert app_client.get("/api/assets", headers=auth("crl_nope")).status_code == 401
    assert app_client.get("/api/assets", headers=auth("garbage")).status_code == 401
    r = app_client.get("/api/jobs", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401 and "token create" in r.json()["detail"]


def test_consent_put_changes_only_the_scopes_given_and_keeps_history(
    app_client: httpx.Client,
) -> None:
    token = make_user("c@example.org", consent=False)
    got = app_client.get("/api/consent", headers=auth(token)).json()
    assert got["scopes"] == dict.fromkeys(
        ["cloud_processing", "faces", "places", "content", "creations"], False
    )
    assert all(v is None for v in got["changed_at"].values())
    assert "never" in got["training"]

    r = app_client.put(
        "/api/consent",
        headers=auth(token),
        json={"scopes": {"cloud_processing": True, "faces": True}},
    )
    assert r.status_code == 200
    r = app_client.put("/api/consent", headers=auth(token), json={"scopes": {"faces": False}})
    got = r.json()
    assert got["scopes"]["cloud_processing"] is True and got["scopes"]["faces"] is False
    assert got["changed_at"]["cloud_processing"] is not None and got["changed_at"]["places"] is None

    history = app_client.get("/api/consent/history", headers=auth(token)).json()
    assert [(h["scope"], h["granted"]) for h in history] == [
        ("cloud_processing", True),
        ("faces", True),
        ("faces", False),
    ]
    assert all(h["client"] == "token:test" and len(h["policy_sha256"]) == 64 for h in history)

    bad = app_client.put("/api/consent", headers=auth(token), json={"scopes": {"training": True}})
    assert bad.status_code == 422 and "training" in bad.json()["detail"]


def test_nothing_is_accepted_without_consent(app_client: httpx.Client) -> None:
    token = make_user("no@example.org", consent=False)
    r = create(app_client, token, JPEG.read_bytes())
    assert r.status_code == 403
    assert "cloud_processing" in r.json()["detail"] and "PUT /api/consent" in r.json()["detail"]
    r = app_client.post("/api/assets/check", headers=auth(token), json={"checksums": ["0" * 64]})
    assert r.status_code == 403


def test_resumable_upload_continues_from_the_servers_offset(app_client: httpx.Client) -> None:
    token = make_user("r@example.org")
    data = JPEG.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    r = create(
        app_client, token, data, "IMG_1.jpg", checksum=sha, relativePath="DCIM/100CANON/IMG_1.jpg"
    )
    assert r.status_code == 201
    url = r.headers["Location"]
    half = len(data) // 2
    assert patch(app_client, token, url, 0, data[:half]).headers["Upload-Offset"] == str(half)

    head = app_client.head(url, headers={**auth(token), **TUS})
    assert head.headers["Upload-Offset"] == str(half)
    assert head.headers["Upload-Length"] == str(len(data))

    stale = patch(app_client, token, url, 0, data)
    assert stale.status_code == 409  # the client must resume where the server is

    done = patch(app_client, token, url, half, data[half:])
    assert done.status_code == 204 and done.headers["Camroll-Status"] == "created"
    asset_id = done.headers["Camroll-Asset-Id"]

    asset = app_client.get(f"/api/assets/{asset_id}", headers=auth(token)).json()
    assert asset["checksum"] == sha
    assert asset["filename"] == "IMG_1.jpg" and asset["device_path"] == "DCIM/100CANON/IMG_1.jpg"
    assert asset["size"] == len(data) and asset["status"] == "pending"


def test_same_bytes_twice_is_already_have(app_client: httpx.Client) -> None:
    token = make_user("d@example.org")
    data = JPEG.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    first = upload(app_client, token, data)

    # Announced by checksum: refused before any byte moves.
    r = create(app_client, token, data, name="copy.jpg", checksum=sha)
    assert r.status_code == 200
    assert r.headers["Camroll-Status"] == "duplicate" and r.headers["Camroll-Asset-Id"] == first
    # Not announced: found on completion, and nothing new is stored.
    r = create(app_client, token, data, name="copy.jpg")
    r = patch(app_client, token, r.headers["Location"], 0, data)
    assert r.headers["Camroll-Status"] == "duplicate" and r.headers["Camroll-Asset-Id"] == first

    check = app_client.post(
        "/api/assets/check", headers=auth(token), json={"checksums": [sha, "ab" * 32]}
    )
    assert check.json()["missing"] == ["ab" * 32]
    assert len(app_client.get("/api/assets", headers=auth(token)).json()["items"]) == 1

    # Dedupe is per user: someone else uploading the same bytes gets their own asset.
    other = make_user("d2@example.org")
    assert upload(app_client, other, data) != first


def test_checksum_mismatch_is_refused_and_nothing_kept(app_client: httpx.Client) -> None:
    token = make_user("m@example.org")
    data = JPEG.read_bytes()
    r = create(app_client, token, data, checksum="0" * 64)
    r = patch(app_client, token, r.headers["Location"], 0, data)
    assert r.status_code == 460 and "checksum mismatch" in r.json()["detail"]
    assert app_client.get("/api/assets", headers=auth(token)).json()["items"] == []


@pytest.mark.parametrize(
    ("headers", "status", "words"),
    [
        ({}, 400, "Upload-Length"),
        ({"Upload-Length": "ten"}, 400, "Upload-Length"),
        ({"Upload-Length": "-1", "Upload-Metadata": meta(filename="a")}, 400, "negative"),
        ({"Upload-Length": str(10**15), "Upload-Metadata": meta(filename="a")}, 413, "at most"),
        ({"Upload-Length": "5", "Upload-Metadata": "filename %%%"}, 400, "base64"),
        ({"Upload-Length": "5", "Upload-Metadata": "filetype aW1hZ2U="}, 400, "filename"),
        (
            {"Upload-Length": "5", "Upload-Metadata": meta(filename="a", checksum="xyz")},
            400,
            "SHA-256",
        ),
    ],
)
def test_bad_upload_requests_get_clear_errors(
    app_client: httpx.Client, headers: dict, status: int, words: str
) -> None:
    token = make_user("bad@example.org")
    r = app_client.post("/api/uploads", headers={**auth(token), **TUS, **headers})
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_patch_guards(app_client: httpx.Client) -> None:
    token = make_user("p@example.org")
    url = create(app_client, token, b"12345").headers["Location"]
    r = app_client.patch(
        url, content=b"12345", headers={**auth(token), **TUS, "Upload-Offset": "0"}
    )
    assert r.status_code == 415
    r = patch(app_client, token, url, 0, b"1234567890")
    assert r.status_code == 413
    assert app_client.head(url, headers={**auth(token), **TUS}).headers["Upload-Offset"] == "0"
    assert app_client.delete(url, headers={**auth(token), **TUS}).status_code == 204
    assert app_client.head(url, headers={**auth(token), **TUS}).status_code == 404


def test_opting_out_stops_ingest_at_once(app_client: httpx.Client) -> None:
    token = make_user("o@example.org")
    data = JPEG.read_bytes()
    url = create(app_client, token, data).headers["Location"]
    assert patch(app_client, token, url, 0, data[:1000]).status_code == 204
    app_client.put(
        "/api/consent", headers=auth(token), json={"scopes": {"cloud_processing": False}}
    )
    r = patch(app_client, token, url, 1000, data[1000:])
    assert r.status_code == 403
    assert create(app_client, token, data).status_code == 403


def test_another_users_ids_are_404(app_client: httpx.Client) -> None:
    alice = make_user("alice@example.org")
    bob = make_user("bob@example.org")
    data = JPEG.read_bytes()
    asset_id = upload(app_client, alice, data)
    pending = create(app_client, alice, b"abc").headers["Location"]

    for path in ["", "/original", "/preview", "/thumbnail"]:
        r = app_client.get(f"/api/assets/{asset_id}{path}", headers=auth(bob))
        assert r.status_code == 404, path
        assert r.json()["detail"] == "asset not found"
    assert app_client.head(pending, headers={**auth(bob), **TUS}).status_code == 404
    assert patch(app_client, bob, pending, 0, b"abc").status_code == 404
    assert app_client.get("/api/assets", headers=auth(bob)).json()["items"] == []
    assert app_client.get(f"/api/assets/{asset_id}", headers=auth(alice)).status_code == 200


def test_zero_byte_upload_completes_on_creation(app_client: httpx.Client) -> None:
    token = make_user("z@example.org")
    r = create(app_client, token, b"", name="broken image.JPG")
    assert r.status_code == 201 and r.headers["Camroll-Status"] == "created"
    asset = app_client.get(f"/api/assets/{r.headers['Camroll-Asset-Id']}", headers=auth(token))
    assert asset.json()["size"] == 0


def test_cursor_pages_cover_every_asset_once(app_client: httpx.Client) -> None:
    token = make_user("page@example.org")
    data = JPEG.read_bytes()
    ids = {upload(app_client, token, data + bytes([i]), f"{i}.jpg") for i in range(7)}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = app_client.get("/api/assets", headers=auth(token), params=params).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 7
    assert app_client.get("/api/assets?cursor=%%%", headers=auth(token)).status_code == 400
    assert app_client.get("/api/assets?type=sound", headers=auth(token)).status_code == 422
    none = app_client.get("/api/assets?from=2100-01-01T00:00:00Z", headers=auth(token)).json()
    assert none["items"] == []
