"""Continuous backup over WebDAV: a real client (Debian's rclone) against `camroll serve`, with
per-device app passwords made through the API, on real files of the shared camera roll."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from camroll.accounts import find_user
from camroll.db.engine import session_scope
from camroll.db.models import Upload
from camroll.storage import get_store
from tests.conftest import REPO, ROLL, Server, make_user

# A phone's camera folder in miniature: JPEGs, a HEIC, a video and a truncated JPEG.
PICK = {
    "IMG_8824.jpg": "pigallery2/demo/IMG_8824.jpg",
    "IMG_8943.jpg": "pigallery2/demo/IMG_8943.jpg",
    "Chars_exiftool.jpg": "pigallery2/demo/Chars_exiftool.jpg",
    "zPug_3.heic": "pillow-heif/heif/zPug_3.heic",
    "bunny_1sec.mp4": "pigallery2/test-assets/sidecar/bunny_1sec.mp4",
    "imageSizeError.jpg": "pigallery2/test-assets/imageSizeError.jpg",
}
BROKEN = {"imageSizeError.jpg": "truncated"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One server for the module: SQLite unless --backend names others.
    if "dav_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or ["sqlite"]
        metafunc.parametrize("dav_backend", chosen, scope="module")


@pytest.fixture(scope="module")
def dav_server(dav_backend: str) -> Iterator[Server]:
    """An isolated data folder and database (as conftest's `env`, for a whole module)."""
    import psycopg

    from camroll.config import get_settings
    from camroll.db.engine import _engine_for, _factory
    from camroll.db.migrate import upgrade
    from camroll.storage import _cached
    from tests.conftest import PG_ADMIN, drop_test_database

    tmp = Path(tempfile.mkdtemp(prefix="camroll-dav-"))
    (tmp / "data").mkdir()
    pg_name = None
    if dav_backend == "sqlite":
        url = f"sqlite:///{tmp / 'data' / 'camroll.db'}"
    else:
        pg_name = f"camroll_t_{secrets.token_hex(6)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
    values = {
        "CAMROLL_DATA_DIR": str(tmp / "data"),
        "CAMROLL_DATABASE_URL": url,
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    for cache in (get_settings, _factory, _cached):
        cache.cache_clear()
    upgrade()
    srv = Server(values).start()
    try:
        yield srv
    finally:
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        _engine_for.cache_clear()
        if pg_name:
            drop_test_database(pg_name)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("phone") / "Camera"
    folder.mkdir()
    for name, rel in PICK.items():
        src = ROLL / rel
        assert src.is_file(), f"shared roll lacks {rel}"
        shutil.copyfile(src, folder / name)
    return folder


def new_device(client: httpx.Client, name: str) -> dict:
    r = client.post("/api/devices", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def rclone_env(server: Server, password: str, user: str = "me@example.org") -> dict[str, str]:
    obscured = subprocess.run(
        ["rclone", "obscure", password], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "RCLONE_CONFIG": "/dev/null",  # only the env vars below configure the remote
        "RCLONE_CONFIG_CAMROLL_TYPE": "webdav",
        "RCLONE_CONFIG_CAMROLL_URL": f"{server.url}/dav/",
        "RCLONE_CONFIG_CAMROLL_VENDOR": "other",
        "RCLONE_CONFIG_CAMROLL_USER": user,
        "RCLONE_CONFIG_CAMROLL_PASS": obscured,
    }


def rclone(server: Server, password: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["rclone", "--low-level-retries", "1", "--retries", "1", *args],
        env=rclone_env(server, password),
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_processed(client: httpx.Client, n: int, timeout: float = 240) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        items = client.get("/api/assets", params={"limit": 500}).json()["items"]
        if len(items) >= n and all(a["status"] != "pending" for a in items):
            return items
        assert time.monotonic() < deadline, [(a["filename"], a["status"]) for a in items]
        time.sleep(1)


@pytest.mark.timeout(600)
def test_rclone_backs_up_a_folder_once_and_it_is_processed(dav_server: Server, camera: Path):
    token = make_user("backup@example.org")
    client = dav_server.client(token)
    device = new_device(client, "Pixel 8")
    r = rclone(dav_server, device["password"], "copy", str(camera), "camroll:Camera")
    assert r.returncode == 0, r.stderr
    items = wait_processed(client, len(PICK))
    by_name = {a["filename"]: a for a in items}
    assert set(by_name) == set(PICK)
    for name, reason in BROKEN.items():
        assert by_name[name]["status"] == "quarantined"
        assert by_name[name]["quarantine_reason"] == reason
    ready = [a for a in items if a["filename"] not in BROKEN]
    assert all(a["status"] == "ready" for a in ready), [(a["filename"], a["status"]) for a in ready]
    assert by_name["bunny_1sec.mp4"]["kind"] == "video"
    # The device shows when it was last used.
    (listed,) = client.get("/api/devices").json()
    assert listed["last_used_at"] is not None

    # Twice: rclone finds the folder as it left it, and nothing is stored again.
    again = rclone(dav_server, device["password"], "copy", "-v", str(camera), "camroll:Camera")
    assert again.returncode == 0, again.stderr
    assert "Copied (new)" not in again.stderr
    # Even a client that ignores the listing and sends every file again (another folder name)
    # stores nothing new: dedupe is by content.
    third = rclone(dav_server, device["password"], "copy", str(camera), "camroll:DCIM/Camera")
    assert third.returncode == 0, third.stderr
    items = client.get("/api/assets", params={"limit": 500}).json()["items"]
    assert len(items) == len(PICK)

    # The listing shows the owner's files by capture month (the tree is rebuilt every few
    # seconds, so a photo moves from its upload month once it is processed); the originals
    # read back byte-exact.
    meta = client.get(f"/api/assets/{by_name['IMG_8824.jpg']['id']}").json()
    month = meta["taken_at_local"][:7].replace("-", "/")
    deadline = time.monotonic() + 60
    while True:
        ls = rclone(dav_server, device["password"], "lsf", "-R", "camroll:")
        assert ls.returncode == 0, ls.stderr
        paths = ls.stdout.splitlines()
        if f"{month}/IMG_8824.jpg" in paths:
            break
        assert time.monotonic() < deadline, ls.stdout
        time.sleep(2)
    assert "Camera/IMG_8824.jpg" in paths
    assert "DCIM/Camera/IMG_8824.jpg" in paths  # sent again under another folder: listed there
    check = rclone(dav_server, device["password"], "check", str(camera), "camroll:Camera")
    assert check.returncode == 0, check.stderr
    heic = subprocess.run(
        ["rclone", "cat", "camroll:Camera/zPug_3.heic"],
        env=rclone_env(dav_server, device["password"]),
        capture_output=True,
        timeout=120,
    )
    assert heic.returncode == 0, heic.stderr
    assert heic.stdout == (camera / "zPug_3.heic").read_bytes()
    # Listings and reads over WebDAV are in the owner's access log, under the device's name.
    log = client.get("/api/me/audit").json()["items"]
    by_device = {(e["action"], e["target"]) for e in log if e["actor"] == "device:Pixel 8"}
    assert ("asset.list", None) in by_device
    assert ("asset.original", by_name["zPug_3.heic"]["id"]) in by_device


def test_webdav_cannot_delete_or_overwrite_originals(dav_server: Server, camera: Path):
    token = make_user("keep@example.org")
    client = dav_server.client(token)
    password = new_device(client, "iPad")["password"]
    r = rclone(dav_server, password, "copy", str(camera / "IMG_8824.jpg"), "camroll:Camera")
    assert r.returncode == 0, r.stderr
    dav = httpx.Client(base_url=f"{dav_server.url}/dav", auth=("keep@example.org", password))
    assert dav.request("DELETE", "/Camera/IMG_8824.jpg").status_code == 403
    put = dav.put("/Camera/IMG_8824.jpg", content=b"not the photo")
    assert put.status_code == 403
    assert "read-only" in put.text
    for method in ("MOVE", "COPY"):
        moved = dav.request(
            method,
            "/Camera/IMG_8824.jpg",
            headers={"Destination": f"{dav_server.url}/dav/Camera/other.jpg"},
        )
        assert moved.status_code == 403, (method, moved.status_code)
    # A folder a backup app wants is made without fuss (and still nothing is stored).
    assert dav.request("MKCOL", "/Backups").status_code == 201
    assert dav.request("PROPFIND", "/Backups", headers={"Depth": "0"}).status_code == 207
    assert len(client.get("/api/assets").json()["items"]) == 1
    # Names as phones make them (spaces, accents) arrive and list as sent.
    name = "Été à Zürich (1).jpg"
    put = dav.put(f"/Backups/{name}", content=(camera / "IMG_8943.jpg").read_bytes())
    assert put.status_code == 201, put.text
    listed = rclone(dav_server, password, "lsf", "camroll:Backups")
    assert listed.stdout.splitlines() == [name], listed.stdout
    items = client.get("/api/assets").json()["items"]
    assert sorted(a["filename"] for a in items) == ["IMG_8824.jpg", name]


def test_lock_then_put_as_windows_and_macos_clients_do(dav_server: Server, camera: Path):
    client = dav_server.client(make_user("lock@example.org"))
    password = new_device(client, "Laptop")["password"]
    dav = httpx.Client(base_url=f"{dav_server.url}/dav", auth=("lock@example.org", password))
    lockinfo = (
        '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/>'
        "</D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>"
    )
    path = "/Pictures/IMG_8943.jpg"
    lock = dav.request("LOCK", path, content=lockinfo, headers={"Timeout": "Second-60"})
    assert lock.status_code in (200, 201), lock.text
    assert "WsgiDAV/" not in lock.text
    token = lock.headers["Lock-Token"]
    data = (camera / "IMG_8943.jpg").read_bytes()
    assert dav.put(path, content=data, headers={"If": f"({token})"}).status_code == 201
    assert dav.request("UNLOCK", path, headers={"Lock-Token": token}).status_code == 204
    (asset,) = wait_processed(client, 1)
    assert asset["filename"] == "IMG_8943.jpg" and asset["status"] == "ready"
    got = dav.get(path)
    assert got.status_code == 200 and got.content == data
    denied = dav.request("PROPFIND", "/", headers={"Depth": "0"}, auth=("x", "wrong"))
    assert denied.status_code == 401 and "WsgiDAV/" not in denied.text


def _unfinished(email: str) -> tuple[list[str], list[str]]:
    """The owner's uploads that became no asset, and their staged objects."""
    with session_scope() as s:
        user = find_user(s, email)
        assert user is not None
        ids = list(
            s.scalars(select(Upload.id).where(Upload.user_id == user.id, Upload.asset_id.is_(None)))
        )
        user_id = user.id
    staged = [k for k in get_store().keys(f"staging/{user_id}/") if k.split("/")[2] in ids]
    return ids, staged


def _wait_for(what: str, ok, server: Server, timeout: float = 30):  # type: ignore[no-untyped-def]
    """Poll an observable condition, bounded; the server's log explains a timeout."""
    deadline = time.monotonic() + timeout
    while not (found := ok()):
        assert time.monotonic() < deadline, f"{what}\n{server.log.read_text()[-3000:]}"
        time.sleep(0.1)
    return found


def _half_put(server: Server, email: str, password: str, name: str, data: bytes) -> socket.socket:
    """A PUT whose body stops halfway, returned once the server is streaming it (its upload
    row exists): closing the socket then cuts it mid-body, whatever the machine's load."""
    auth = base64.b64encode(f"{email}:{password}".encode()).decode()
    head = (
        f"PUT /dav/Camera/{name} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Basic {auth}\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(head.encode() + data[: len(data) // 2])
    _wait_for("the server never began the PUT", lambda: _unfinished(email)[0], server)
    return sock


def test_a_cut_off_put_keeps_nothing(dav_server: Server, camera: Path):
    email = "cut@example.org"
    client = dav_server.client(make_user(email))
    password = new_device(client, "Flaky phone")["password"]
    dav = httpx.Client(base_url=f"{dav_server.url}/dav", auth=(email, password), timeout=60)
    data = (camera / "IMG_8824.jpg").read_bytes()
    _half_put(dav_server, email, password, "IMG_8824.jpg", data).close()
    # The connection dropped halfway: no asset, and the upload and its staging are gone.
    _wait_for("the cut upload was kept", lambda: _unfinished(email) == ([], []), dav_server)
    assert client.get("/api/assets").json()["items"] == []
    # Sent again whole, it is stored.
    r = dav.put("/Camera/IMG_8824.jpg", content=data)
    assert r.status_code == 201, f"{r.status_code}\n{dav_server.log.read_text()[-3000:]}"
    assert len(client.get("/api/assets").json()["items"]) == 1

    # Sent again while the cut request is still streaming (the server has not seen the cut
    # yet): each PUT is its own upload and lease, so the whole one is stored at once and the
    # cut one then leaves nothing behind.
    other = (camera / "IMG_8943.jpg").read_bytes()
    with _half_put(dav_server, email, password, "IMG_8943.jpg", other):
        r = dav.put("/Camera/IMG_8943.jpg", content=other)
        assert r.status_code == 201, f"{r.status_code}\n{dav_server.log.read_text()[-3000:]}"
    _wait_for("the cut upload was kept", lambda: _unfinished(email) == ([], []), dav_server)
    stored = {a["checksum"] for a in client.get("/api/assets").json()["items"]}
    assert stored == {hashlib.sha256(data).hexdigest(), hashlib.sha256(other).hexdigest()}


def test_revoked_device_password_gets_401(dav_server: Server, camera: Path):
    token = make_user("revoke@example.org")
    client = dav_server.client(token)
    device = new_device(client, "Old phone")
    ok = rclone(dav_server, device["password"], "lsf", "-R", "camroll:")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == ""  # other owners' photos on this server are not this device's to see
    assert client.delete(f"/api/devices/{device['id']}").status_code == 204
    r = rclone(dav_server, device["password"], "copy", str(camera), "camroll:Camera")
    assert r.returncode != 0
    assert "401" in r.stderr
    raw = httpx.request(
        "PROPFIND", f"{dav_server.url}/dav/", auth=("revoke@example.org", device["password"])
    )
    assert raw.status_code == 401
    assert client.get("/api/assets").json()["items"] == []
    # An API token is not a device password, nor the other way round.
    assert httpx.request("PROPFIND", f"{dav_server.url}/dav/", auth=("x", token)).status_code == 401
    fresh = new_device(client, "New phone")
    bearer = {"Authorization": f"Bearer {fresh['password']}"}
    assert httpx.get(f"{dav_server.url}/api/assets", headers=bearer).status_code == 401


def test_another_users_device_is_not_found(dav_server: Server):
    alice = dav_server.client(make_user("alice-dav@example.org"))
    bob = dav_server.client(make_user("bob-dav@example.org"))
    device = new_device(alice, "Alice's phone")
    assert bob.delete(f"/api/devices/{device['id']}").status_code == 404
    assert bob.get("/api/devices").json() == []
    assert [d["id"] for d in alice.get("/api/devices").json()] == [device["id"]]
    assert alice.post("/api/devices", json={"name": "  "}).status_code == 422


def test_uploads_without_consent_are_refused_with_a_clear_error(dav_server: Server, camera: Path):
    token = make_user("noconsent@example.org", consent=False)
    client = dav_server.client(token)
    password = new_device(client, "Phone")["password"]
    r = rclone(dav_server, password, "copy", str(camera / "IMG_8824.jpg"), "camroll:Camera")
    assert r.returncode != 0
    put = httpx.put(
        f"{dav_server.url}/dav/IMG_8824.jpg",
        content=(camera / "IMG_8824.jpg").read_bytes(),
        auth=("noconsent@example.org", password),
    )
    assert put.status_code == 403
    assert "cloud_processing" in put.text
    assert client.get("/api/assets").json()["items"] == []


@pytest.mark.timeout(600)
def test_phone_makes_a_device_password_backs_up_with_rclone_and_revokes_it(
    dav_server: Server, camera: Path
):
    from playwright.sync_api import sync_playwright

    from tests.test_web import ARGS, CHROMIUM

    make_user("phone-dav@example.org", password="correct horse")
    axe = REPO / "node_modules" / "axe-core" / "axe.min.js"
    assert axe.is_file(), "run npm ci"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        # bypass_csp only so the test can inject axe-core; the page itself runs no inline script.
        ctx = browser.new_context(
            viewport={"width": 360, "height": 780}, has_touch=True, is_mobile=True, bypass_csp=True
        )
        page = ctx.new_page()
        page.goto(dav_server.url + "/login")
        page.fill("input[name=email]", "phone-dav@example.org")
        page.fill("input[name=password]", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: not u.endswith("/login"))
        page.goto(dav_server.url + "/devices")
        assert "No devices yet" in page.inner_text("main")
        page.fill("#device-name", "Anna's phone")
        page.click("text=Make an app password")
        password = page.inner_text("#device-password").strip()
        assert f"{dav_server.url}/dav/" in page.inner_text("#new-password")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.add_script_tag(path=str(axe))
        found = page.evaluate("async () => (await axe.run()).violations")
        bad = [v["id"] for v in found if v["impact"] in ("serious", "critical")]
        assert bad == [], bad

        r = rclone(dav_server, password, "copy", str(camera / "IMG_8824.jpg"), "camroll:Camera")
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 120
        while True:
            items = page.request.get(dav_server.url + "/api/assets").json()["items"]
            if items and items[0]["status"] == "ready":
                break
            assert time.monotonic() < deadline, items
            time.sleep(1)
        assert [a["filename"] for a in items] == ["IMG_8824.jpg"]

        # Reloaded, the page lists the device with its last use and never the password again.
        page.goto(dav_server.url + "/devices")
        row = page.inner_text("table.devices tbody tr")
        assert "Anna's phone" in row and "never" not in row
        assert password not in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.click('button[aria-label="Revoke Anna\'s phone"]')
        page.wait_for_url(dav_server.url + "/devices")
        assert "No devices yet" in page.inner_text("main")
        browser.close()
    denied = rclone(dav_server, password, "lsf", "camroll:")
    assert denied.returncode != 0 and "401" in denied.stderr


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_big_put_streams_without_growing_the_server(dav_server: Server):
    """512 MiB in one PUT: the server's peak memory grows by far less than the file."""
    size, piece = 512 * 1024 * 1024, os.urandom(1024 * 1024)
    client = dav_server.client(make_user("big-dav@example.org"))
    password = new_device(client, "Camera")["password"]
    assert dav_server.proc is not None
    before = _peak_rss_mib(dav_server.proc.pid)

    def body() -> Iterator[bytes]:
        for i in range(size // len(piece)):
            yield i.to_bytes(8, "big") + piece[8:]  # no two pieces alike

    started = time.monotonic()
    r = httpx.put(
        f"{dav_server.url}/dav/Movies/big.mov",
        content=body(),
        headers={"Content-Length": str(size)},
        auth=("big-dav@example.org", password),
        timeout=600,
    )
    took = time.monotonic() - started
    assert r.status_code == 201, r.text
    grew = _peak_rss_mib(dav_server.proc.pid) - before
    print(
        f"512 MiB PUT in {took:.1f} s ({size / took / 2**20:.0f} MiB/s), peak RSS +{grew:.0f} MiB"
    )
    assert grew < 128
    (asset,) = client.get("/api/assets").json()["items"]
    assert asset["size"] == size
