"""Workers anywhere: an API node and a worker node with different data folders, sharing only
PostgreSQL, Redis and S3 (a moto server), as on two machines.

What is proved: `camroll sync` through the API node gets 20 real photos ready, processed by the
worker alone, with previews served by the API node; an upload started on one API node (its
first half staged, encrypted, in S3) is finished on another; no node keeps a blob or a staged
byte in its own folder, and the staging is gone from S3 once processed; a node whose master
key differs refuses to start and says what to set.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import shutil
from pathlib import Path

import httpx
import pytest
import redis
from PIL import Image

from tests.conftest import ROLL, free_port, make_user, run_cli
from tests.test_s3_store import _leaks, _raw, _raw_keys, _windows, moto_url, s3  # noqa: F401
from tests.test_workers_redis import EXECUTED, Proc, _wait_for

REDIS_URL = "redis://127.0.0.1:6379/12"
LYCHEE = ROLL / "lychee" / "Samples"
ALBUMS = ROLL / "immich-test-assets" / "albums"
# 20 camera photos: JPEGs of many sizes and orientations, and two iPhone HEICs.
PHOTOS = [
    *sorted(ALBUMS.glob("*/*.jpg")),
    *(
        LYCHEE / n
        for n in (
            "aarhus.jpg",
            "classic-car.heic",
            "hochuferweg.jpg",
            "orientation-90.jpg",
            "sewing-threads.heic",
            "train.jpg",
            "without_exif.jpg",
        )
    ),
]
RESUMED = LYCHEE / "undefined-exif-tag.jpg"
TUS = {"Tus-Resumable": "1.0.0"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.backends("postgresql")
def test_api_and_worker_nodes_share_only_postgres_redis_and_s3(
    env: dict,
    s3: tuple[str, object],  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from camroll.app import create_app
    from camroll.config import get_settings
    from camroll.storage import _cached

    assert len(PHOTOS) == 20 and all(p.is_file() for p in PHOTOS)
    bucket, client = s3
    queue = redis.Redis.from_url(REDIS_URL)
    queue.flushdb()
    shared = {
        "CAMROLL_DATABASE_URL": env["CAMROLL_DATABASE_URL"],
        "CAMROLL_QUEUE_URL": REDIS_URL,
        "CAMROLL_STORAGE_URL": f"s3://{bucket}/camroll",
        "CAMROLL_MASTER_KEY": secrets.token_hex(32),
    }

    def node(name: str) -> dict:
        folder = tmp_path / name
        return {**shared, "CAMROLL_DATA_DIR": str(folder), "XDG_STATE_HOME": str(folder / "st")}

    # This test process is one more API node (in-process), with a folder of its own.
    for k, v in node("node-b").items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    _cached.cache_clear()
    token = make_user("split@example.org")
    roll = tmp_path / "roll"
    roll.mkdir()
    for p in PHOTOS:
        shutil.copy(p, roll / p.name)
    logs = tmp_path / "logs"
    logs.mkdir()

    port = free_port()
    api = Proc(["serve", "--no-worker", "--port", str(port)], node("node-a"), logs / "api.log")
    worker = Proc(["worker", "--workers", "2"], node("node-w"), logs / "worker.log")
    # A node with a master key of its own would fail on every photo: it refuses to start.
    stray = Proc(["worker"], {**node("stray"), "CAMROLL_MASTER_KEY": ""}, logs / "stray.log")
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def up() -> bool:
        try:
            return http.get("/api/health").status_code == 200
        except httpx.TransportError:
            return False

    try:
        # While the nodes start: an upload begun on node B (in-process), its first half
        # staged in S3, sealed.
        data = RESUMED.read_bytes()
        half = len(data) // 2
        with TestClient(create_app(embedded_worker=False)) as node_b:
            auth = {"Authorization": f"Bearer {token}"}
            r = node_b.post(
                "/api/uploads",
                headers={
                    **auth,
                    **TUS,
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": f"filename {_b64(RESUMED.name)},"
                    f"checksum {_b64(hashlib.sha256(data).hexdigest())}",
                },
            )
            assert r.status_code == 201, r.text
            location = r.headers["Location"]
            patch = {**auth, **TUS, "Content-Type": "application/offset+octet-stream"}
            r = node_b.patch(location, content=data[:half], headers={**patch, "Upload-Offset": "0"})
            assert r.status_code == 204 and r.headers["Upload-Offset"] == str(half)
        staged = [k for k in _raw_keys(client, bucket) if k.startswith("camroll/staging/")]
        assert len(staged) == 1
        segment = _raw(client, bucket, staged[0])
        assert segment.startswith(b"CRB1") and not _leaks(segment, _windows(data[:half]))

        _wait_for("the API node", up, 60, [api, worker])
        assert stray.proc.wait(timeout=60) != 0
        assert "CAMROLL_MASTER_KEY" in stray.text()

        # ... and finished on node A, which never saw its first half.
        assert http.head(location, headers=TUS).headers["Upload-Offset"] == str(half)
        r = http.patch(
            location,
            content=data[half:],
            headers={**TUS, "Upload-Offset": str(half), "Content-Type": patch["Content-Type"]},
        )
        assert r.status_code == 204 and r.headers["Camroll-Status"] == "created", r.text
        resumed_id = r.headers["Camroll-Asset-Id"]

        sent = run_cli(
            "sync", str(roll), "--server", url, "--token", token, "--wait", "--json",
            env=node("phone"), timeout=240,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr + sent.stdout
        result = json.loads(sent.stdout)
        assert result["counts"]["uploaded"] == 20 and result["failed"] == []

        def settled() -> bool:
            return http.get(f"/api/assets/{resumed_id}").json()["status"] != "pending"

        _wait_for("the resumed upload", settled, 60, [api, worker])
        items = http.get("/api/assets", params={"limit": 100}).json()["items"]
        assert len(items) == 21
        assert {a["status"] for a in items} == {"ready"}, [
            (a["filename"], a["status"]) for a in items if a["status"] != "ready"
        ]
        # Served by the API node, from what the worker wrote to S3.
        for a in items:
            preview = http.get(f"/api/assets/{a['id']}/preview")
            assert preview.status_code == 200 and preview.content[:3] == b"\xff\xd8\xff"
            thumb = http.get(f"/api/assets/{a['id']}/thumbnail")
            with Image.open(io.BytesIO(thumb.content)) as im:
                assert im.format == "WEBP" and max(im.size) <= 256
        original = http.get(f"/api/assets/{resumed_id}/original").content
        assert original == data

        # The worker did every job; the API node did none.
        assert len(EXECUTED.findall(worker.text())) == 21
        assert not EXECUTED.search(api.text())
        assert "Traceback" not in worker.text() + api.text()
    finally:
        http.close()
        for p in (stray, worker, api):
            p.stop()
        queue.flushdb()

    # Every blob is in S3 (three per photo), staging included and now gone; no node's own
    # folder holds a blob or a staged byte.
    keys = _raw_keys(client, bucket)
    assert not [k for k in keys if k.startswith("camroll/staging/")]
    kinds = sorted(k.rsplit("/", 1)[1] for k in keys)
    assert kinds == sorted(["original", "preview", "thumbnail"] * 21)
    for name in ("node-a", "node-b", "node-w"):
        folder = tmp_path / name
        assert not (folder / "blobs").exists() and not (folder / "staging").exists(), name
        assert not (folder / "master.key").exists(), name
