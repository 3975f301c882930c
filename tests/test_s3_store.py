"""S3BlobStore against a real S3 API (moto in server mode, over HTTP), and camroll on S3 end to end.

What is proved: the store behaves like the local one (put/get/exists/keys/delete/delete_prefix,
BlobNotFound), streams big blobs as multipart uploads, keeps to its prefix, and what lands in the
bucket is ciphertext only, including when `camroll serve` ingests a photo into S3.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from camroll.storage import BlobNotFound, store_for_url
from tests.conftest import ROLL, Server, free_port, make_user, run_cli

JPEG = ROLL / "exif-samples" / "jpg" / "gps" / "DSCN0010.jpg"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"moto died:\n{log.read_text()[-2000:]}"
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def s3(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    """A fresh bucket on the moto server, with camroll and boto3 pointed at it."""
    from camroll.config import get_settings
    from camroll.storage import _cached

    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CAMROLL_S3_ENDPOINT_URL": moto_url,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    _cached.cache_clear()
    bucket = f"camroll-{secrets.token_hex(4)}"
    client = boto3.client("s3", endpoint_url=moto_url)
    client.create_bucket(Bucket=bucket)
    yield bucket, client
    get_settings.cache_clear()
    _cached.cache_clear()


def _raw_keys(client, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _raw(client, bucket: str, key: str) -> bytes:  # type: ignore[no-untyped-def]
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _windows(plain: bytes, size: int = 64) -> set[bytes]:
    return {
        plain[i : i + size]
        for i in range(len(plain) - size + 1)
        if len(set(plain[i : i + size])) >= 16
    }


def _leaks(data: bytes, windows: set[bytes], size: int = 64) -> bool:
    return any(data[i : i + size] in windows for i in range(len(data) - size + 1))


def test_s3_store_basic_operations(s3: tuple[str, object]) -> None:
    bucket, client = s3
    store = store_for_url(f"s3://{bucket}/camroll")
    other = store_for_url(f"s3://{bucket}/elsewhere")
    assert type(store).__name__ == "S3BlobStore"

    assert store.put("u/a/1/original", [b"hello ", b"", b"world"]) == 11
    store.put("u/a/2/thumbnail", iter([b"t" * 1000]))
    store.put("u/ab/1/original", [b"x"])
    store.put("u/b/1/original", [])
    other.put("u/a/9/original", [b"not mine"])

    assert b"".join(store.get("u/a/1/original")) == b"hello world"
    assert b"".join(store.get("u/b/1/original")) == b""
    assert store.exists("u/a/1/original")
    assert not store.exists("u/a/3/original")
    with pytest.raises(BlobNotFound):
        store.get("u/a/3/original")
    with pytest.raises(KeyError):  # BlobNotFound is a KeyError, as callers may expect
        store.get("missing")

    assert sorted(store.keys()) == [
        "u/a/1/original",
        "u/a/2/thumbnail",
        "u/ab/1/original",
        "u/b/1/original",
    ]
    assert sorted(store.keys("u/a/")) == ["u/a/1/original", "u/a/2/thumbnail"]
    # Objects really live under the prefix in the bucket.
    assert "camroll/u/a/1/original" in _raw_keys(client, bucket)

    store.put("u/a/1/original", [b"replaced"])
    assert b"".join(store.get("u/a/1/original")) == b"replaced"
    store.delete("u/a/1/original")
    store.delete("u/a/1/original")  # deleting what is gone is fine
    assert not store.exists("u/a/1/original")

    assert store.delete_prefix("u/a/") == 1
    assert sorted(store.keys()) == ["u/ab/1/original", "u/b/1/original"]
    assert store.delete_prefix("u/nobody/") == 0
    # The other prefix in the same bucket was never touched.
    assert list(other.keys()) == ["u/a/9/original"]
    assert _raw_keys(client, bucket) == [
        "camroll/u/ab/1/original",
        "camroll/u/b/1/original",
        "elsewhere/u/a/9/original",
    ]


def test_s3_delete_prefix_beyond_one_listing_page(s3: tuple[str, object]) -> None:
    bucket, client = s3
    store = store_for_url(f"s3://{bucket}/p")
    # More than one list page and one delete_objects batch (1000 each).
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda i: client.put_object(Bucket=bucket, Key=f"p/u/a/{i:04d}/thumb", Body=b"x"),
                range(1005),
            )
        )
    store.put("u/b/1/original", [b"keep"])
    assert store.delete_prefix("u/a/") == 1005
    assert list(store.keys()) == ["u/b/1/original"]


def test_s3_big_blob_is_streamed_as_multipart(s3: tuple[str, object]) -> None:
    bucket, client = s3
    store = store_for_url(f"s3://{bucket}/big")
    rng = random.Random(3)
    sent = hashlib.sha256()
    total = 17 * MiB + 123

    def pieces() -> Iterator[bytes]:
        left = total
        while left:
            chunk = rng.randbytes(min(left, rng.randint(1, 2 * MiB)))
            sent.update(chunk)
            left -= len(chunk)
            yield chunk

    assert store.put("u/a/1/original", pieces()) == total
    head = client.head_object(Bucket=bucket, Key="big/u/a/1/original")
    assert head["ContentLength"] == total
    # A multipart upload's ETag is "<md5 of part md5s>-<number of parts>".
    assert head["ETag"].strip('"').rsplit("-", 1)[1] in {"2", "3"}
    got = hashlib.sha256()
    for chunk in store.get("u/a/1/original"):
        got.update(chunk)
    assert got.hexdigest() == sent.hexdigest()


def test_encrypted_blobs_on_s3(env: dict, s3: tuple[str, object], monkeypatch) -> None:
    from camroll.accounts import create_user
    from camroll.config import get_settings
    from camroll.crypto.keys import KeyDestroyed
    from camroll.crypto.stream import DecryptionError, decrypt_stream
    from camroll.db.engine import session_scope
    from camroll.keyring import destroy_user_key
    from camroll.storage import _cached
    from camroll.storage.blobs import blob_key, put_encrypted, read_decrypted

    bucket, client = s3
    monkeypatch.setenv("CAMROLL_STORAGE_URL", f"s3://{bucket}/enc")
    get_settings.cache_clear()
    _cached.cache_clear()

    plain = JPEG.read_bytes()
    big = random.Random(5).randbytes(3 * MiB + 17)
    with session_scope() as s:
        a = create_user(s, "a@example.org").id
        b = create_user(s, "b@example.org").id
    key, big_key, key_b = (
        blob_key(a, "x", "original"),
        blob_key(a, "y", "original"),
        blob_key(b, "x", "original"),
    )
    with session_scope() as s:
        put_encrypted(s, a, key, io.BytesIO(plain))
        put_encrypted(s, a, big_key, io.BytesIO(big))
        put_encrypted(s, b, key_b, io.BytesIO(b"bob's photo"))
    with session_scope() as s:
        assert b"".join(read_decrypted(s, a, key)) == plain
        assert b"".join(read_decrypted(s, a, big_key)) == big
        assert b"".join(read_decrypted(s, b, key_b)) == b"bob's photo"

    # Nothing local; what is in the bucket is ciphertext.
    assert not any((Path(env["CAMROLL_DATA_DIR"]) / "blobs").glob("**/*original"))
    stored = _raw(client, bucket, f"enc/{key}")
    assert stored.startswith(b"CRB1")
    assert len(stored) > len(plain)
    assert not _leaks(stored, _windows(plain))
    stored_big = _raw(client, bucket, f"enc/{big_key}")
    assert len(stored_big) > len(big)
    assert not _leaks(stored_big[: 512 * 1024], _windows(big[: 512 * 1024]))
    assert _leaks(plain, _windows(plain))  # the check itself can see plaintext

    # A copy of the object made in the bucket under another key does not decrypt (AAD).
    client.copy_object(Bucket=bucket, Key=f"enc/{key_b}", CopySource=f"{bucket}/enc/{key}")
    with session_scope() as s, pytest.raises(DecryptionError):
        b"".join(read_decrypted(s, a, key_b))

    with session_scope() as s:
        destroy_user_key(s, a)
    with session_scope() as s, pytest.raises(KeyDestroyed):
        read_decrypted(s, a, key)
    with session_scope() as s:
        from camroll.keyring import user_data_key

        other_key = user_data_key(s, b)
    with pytest.raises(DecryptionError):
        b"".join(decrypt_stream(other_key, key, [stored]))


def test_serve_and_sync_into_s3(env: dict, s3: tuple[str, object], tmp_path: Path) -> None:
    bucket, client = s3
    storage = {"CAMROLL_STORAGE_URL": f"s3://{bucket}/srv"}
    token = make_user("owner@example.org")
    roll = tmp_path / "roll"
    roll.mkdir()
    shutil.copy(JPEG, roll / JPEG.name)

    srv = Server(
        {**env, **storage, "CAMROLL_S3_ENDPOINT_URL": os.environ["CAMROLL_S3_ENDPOINT_URL"]}
    )
    srv.start()
    try:
        done = run_cli(
            "sync", str(roll), "--server", srv.url, "--token", token, "--wait", "--json",
            env={**env, **storage},
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr + done.stdout
        result = json.loads(done.stdout)
        assert result["counts"]["uploaded"] == 1
        assert result["jobs"]["done"] == 1 and result["jobs"]["failed"] == 0

        with srv.client(token) as http:
            items = http.get("/api/assets").raise_for_status().json()["items"]
            assert len(items) == 1
            asset = items[0]
            assert asset["status"] == "ready"
            thumb = http.get(f"/api/assets/{asset['id']}/thumbnail")
            assert thumb.status_code == 200
            with Image.open(io.BytesIO(thumb.content)) as im:
                assert im.format == "WEBP"
                assert max(im.size) <= 256
            original = http.get(f"/api/assets/{asset['id']}/original")
            assert original.status_code == 200
            assert original.content == JPEG.read_bytes()
    finally:
        srv.stop()

    from camroll.accounts import find_user
    from camroll.db.engine import session_scope

    with session_scope() as s:
        user_id = find_user(s, "owner@example.org").id
    keys = _raw_keys(client, bucket)
    assert keys == [
        f"srv/u/{user_id}/{asset['id']}/{n}" for n in ("original", "preview", "thumbnail")
    ]
    windows = _windows(JPEG.read_bytes())
    for k in keys:
        stored = _raw(client, bucket, k)
        assert stored.startswith(b"CRB1")
        assert not _leaks(stored, windows), f"plaintext in s3://{bucket}/{k}"
    assert not (Path(env["CAMROLL_DATA_DIR"]) / "blobs").exists() or not any(
        p.is_file() for p in (Path(env["CAMROLL_DATA_DIR"]) / "blobs").rglob("*")
    )
