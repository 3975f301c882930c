"""A server killed with SIGKILL mid-sync loses nothing: the next sync completes the roll exactly
once, byte-identical, and half-sent files resume from the bytes already received."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

from camroll.client.sync import walk
from tests.conftest import ROLL, Server, make_user
from tests.test_sync_e2e import all_assets, sync

# 51 files (photos, GPX tracks, a broken JPEG, an empty file, a folder name with accents): the kill
# at 15 assets lands mid-upload and mid-processing, as it did with all 236 of pigallery2.
SUBSET = ROLL / "pigallery2" / "demo"


def test_sigkill_mid_sync_then_restart_finishes_exactly_once(env: dict) -> None:
    server = Server(env).start()
    token = make_user("crash@example.org")
    client = server.client(token)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "camroll",
            "sync",
            str(SUBSET),
            "--server",
            server.url,
            "--token",
            token,
            "--json",
        ],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # Kill once a good part is uploaded but not all: mid-upload and mid-processing.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = len(client.get("/api/assets", params={"limit": 500}).json()["items"])
        if done >= 15:
            break
        time.sleep(0.1)
    server.kill()
    local = {hashlib.sha256(f.read_bytes()).hexdigest() for f in walk(SUBSET)}
    assert 15 <= done < len(local), done  # killed mid-sync, not before it or after it
    time.sleep(2)  # the client now meets refused connections and backs off

    server = Server(env, port=server.port).start()
    try:
        # The same sync process rides through the restart and finishes the roll.
        out, errs = proc.communicate(timeout=300)
        assert proc.returncode == 0, errs.decode()[-2000:]
        first = json.loads(out)
        assert first["failed"] == []
        again = sync(server, token, env, SUBSET)
        assert again["counts"]["uploaded"] == 0 and again["failed"] == []
        assets = all_assets(server.client(token))
        checksums = [a["checksum"] for a in assets]
        assert len(checksums) == len(set(checksums))  # exactly once
        assert set(checksums) == local  # every file present
        for a in assets:
            body = server.client(token).get(f"/api/assets/{a['id']}/original").content
            assert hashlib.sha256(body).hexdigest() == a["checksum"]
            assert a["status"] in ("ready", "quarantined"), a
    finally:
        server.stop()


def test_cut_connection_resumes_from_received_bytes(server: Server, env: dict) -> None:
    token = make_user("cut@example.org")
    video = max(walk(ROLL), key=lambda p: p.stat().st_size)
    data = video.read_bytes()
    assert len(data) > 3 * 1024 * 1024
    client = server.client(token)
    import base64

    name = base64.b64encode(video.name.encode()).decode()
    r = client.post(
        "/api/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"filename {name}",
        },
    )
    url = r.headers["Location"]

    # Send 2.5 MiB of a declared whole file over a raw socket, then cut the connection.
    sent = int(2.5 * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        head = (
            f"PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
            "Content-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        s.sendall(head.encode() + data[:sent])
        time.sleep(1.0)
    # The server keeps the whole records that arrived; wait until it has written them all.
    seen = []
    for _ in range(100):
        seen.append(
            int(client.head(url, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"])
        )
        if len(seen) > 3 and seen[-1] == seen[-4] > 0:
            break
        time.sleep(0.1)
    offset = seen[-1]
    assert 1024 * 1024 <= offset <= sent  # whole records kept, nothing beyond what was sent

    r = client.patch(
        url,
        content=data[offset:],
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert r.status_code == 204 and r.headers["Camroll-Status"] == "created"
    asset_id = r.headers["Camroll-Asset-Id"]
    for _ in range(300):
        if client.get(f"/api/assets/{asset_id}").json()["status"] != "pending":
            break
        time.sleep(0.1)
    original = client.get(f"/api/assets/{asset_id}/original").content
    assert hashlib.sha256(original).digest() == hashlib.sha256(data).digest()
