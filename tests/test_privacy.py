"""Opting out, undo, purge with crypto-shredding and signed receipts, and ledger tampering."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text, update

from camroll.db.engine import session_scope
from camroll.db.models import Base, ConsentEvent, User
from camroll.storage import get_store
from tests.conftest import ROLL, Server, make_user, run_cli
from tests.test_sync_e2e import all_assets, sync

PHOTOS = ROLL / "exif-samples" / "jpg" / "gps"


def user_rows(user_id: str) -> dict[str, int]:
    """Rows holding this user's id in every table that has a user_id (or is the users table)."""
    out = {}
    with session_scope() as s:
        for table in Base.metadata.sorted_tables:
            if "user_id" in table.c:
                out[table.name] = s.scalar(
                    select(func.count()).select_from(table).where(table.c.user_id == user_id)
                )
        out["users"] = s.scalar(select(func.count()).select_from(User).where(User.id == user_id))
    return out


def test_opt_out_then_purge_leaves_nothing_and_a_receipt_that_verifies(
    server: Server, env: dict, tmp_path: Path
) -> None:
    token = make_user("gone@example.org")
    keeper = make_user("stays@example.org")
    assert sync(server, token, env, PHOTOS)["failed"] == []
    assert sync(server, keeper, env, PHOTOS)["failed"] == []
    client = server.client(token)
    user_id = _user_id("gone@example.org")
    assert all_assets(client)

    # A copy of one encrypted blob, as a backup or an object-store version would keep it.
    data = Path(env["CAMROLL_DATA_DIR"])
    blob = next((data / "blobs" / "u" / user_id).rglob("original"))
    backup = tmp_path / "backup.bin"
    backup.write_bytes(blob.read_bytes())
    # An upload left half-sent: its staged segment is the user's data too.
    tus = {"Tus-Resumable": "1.0.0"}
    r = client.post(
        "/api/uploads",
        headers={**tus, "Upload-Length": "10", "Upload-Metadata": "filename aGFsZi5qcGc="},
    )
    patch = {**tus, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    assert client.patch(r.headers["Location"], content=b"12345", headers=patch).status_code == 204
    assert list(get_store().keys(f"staging/{user_id}/"))

    r = client.put("/api/consent", json={"scopes": {"cloud_processing": False}})
    due = datetime.fromisoformat(r.json()["deletion_due_at"])
    assert timedelta(days=29) < due - datetime.now(due.tzinfo) <= timedelta(days=30)
    # Processing and ingest stop at once.
    assert client.post("/api/assets/check", json={"checksums": ["0" * 64]}).status_code == 403

    # Before the deadline nothing happens.
    early = run_cli("purge", "--as-of", (due - timedelta(seconds=1)).isoformat(), env=env)
    assert early.returncode == 0 and "0 account(s) purged" in early.stdout
    assert user_rows(user_id)["assets"] > 0

    out = run_cli("purge", "--as-of", (due + timedelta(seconds=1)).isoformat(), env=env)
    assert out.returncode == 0, out.stderr
    assert "1 account(s) purged" in out.stdout

    assert set(user_rows(user_id).values()) == {0}, user_rows(user_id)
    assert not (data / "blobs" / "u" / user_id).exists()
    assert not list(get_store().keys(f"staging/{user_id}/"))  # unfinished uploads too
    assert client.get("/api/assets").status_code == 401  # the token went with the account

    # The copy made before the purge can no longer be decrypted by anyone.
    from camroll.crypto.keys import KeyDestroyed
    from camroll.keyring import user_data_key

    with session_scope() as s, pytest.raises(KeyDestroyed):
        user_data_key(s, user_id)

    # The receipt is fetchable without an account, and verifies.
    from camroll.privacy.retention import receipt_id

    rid = receipt_id(user_id, due)
    doc = httpx.get(f"{server.url}/api/receipts/{rid}").json()
    receipt = doc["receipt"]
    assert receipt["counts"]["originals"] == len(list(PHOTOS.iterdir()))
    assert receipt["counts"]["previews"] > 0 and receipt["data_key_destroyed"] is True
    assert receipt["last_consent_record_sha256"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(doc))
    ok = run_cli("receipt", "verify", str(path), env=env)
    assert ok.returncode == 0 and "valid receipt" in ok.stdout
    doc["signed_body"] = doc["signed_body"].replace('"originals":', '"originals":1')
    path.write_text(json.dumps(doc))
    assert run_cli("receipt", "verify", str(path), env=env).returncode == 1

    # The other user lost nothing.
    other = server.client(keeper)
    assets = all_assets(other)
    assert len(assets) == len(list(PHOTOS.iterdir()))
    assert other.get(f"/api/assets/{assets[0]['id']}/original").status_code == 200


def _user_id(email: str) -> str:
    with session_scope() as s:
        return s.scalars(select(User.id).where(User.email == email)).one()


def test_undo_before_the_deadline_restores_everything(server: Server, env: dict) -> None:
    token = make_user("undo@example.org")
    sync(server, token, env, PHOTOS)
    client = server.client(token)
    before = sorted((a["id"], a["checksum"], a["status"]) for a in all_assets(client))
    client.put("/api/consent", json={"scopes": {"cloud_processing": False}})
    r = client.put("/api/consent", json={"scopes": {"cloud_processing": True}})
    assert r.json()["deletion_due_at"] is None
    assert run_cli("purge", "--as-of", "2100-01-01T00:00:00Z", env=env).returncode == 0
    after = sorted((a["id"], a["checksum"], a["status"]) for a in all_assets(client))
    assert after == before
    for a in [a for a in all_assets(client) if a["status"] == "ready"][:3]:
        assert client.get(f"/api/assets/{a['id']}/thumbnail").status_code == 200


def test_account_deletion_uses_the_same_deadline_purge_and_receipt(
    app_client: httpx.Client, env: dict
) -> None:
    token = make_user("leaving@example.org")
    r = app_client.delete("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202
    body = r.json()
    due = datetime.fromisoformat(body["deletion_due_at"])
    run_cli("purge", "--as-of", (due + timedelta(seconds=1)).isoformat(), env=env)
    doc = app_client.get(body["receipt_url"]).json()
    assert doc["receipt"]["reason"] == "account_deletion"


def test_retention_zero_means_the_next_purge_deletes(
    app_client: httpx.Client, env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.config import get_settings

    monkeypatch.setenv("CAMROLL_RETENTION_DAYS", "0")
    get_settings.cache_clear()
    token = make_user("now@example.org")
    user_id = _user_id("now@example.org")
    app_client.put(
        "/api/consent",
        headers={"Authorization": f"Bearer {token}"},
        json={"scopes": {"cloud_processing": False}},
    )
    assert run_cli("purge", env={**env, "CAMROLL_RETENTION_DAYS": "0"}).returncode == 0
    assert set(user_rows(user_id).values()) == {0}


def _ledger_user(app_client: httpx.Client) -> str:
    token = make_user("ledger@example.org")
    for change in ({"faces": True}, {"places": True}, {"faces": False}, {"content": True}):
        app_client.put(
            "/api/consent", headers={"Authorization": f"Bearer {token}"}, json={"scopes": change}
        )
    make_user("bystander@example.org")
    return _user_id("ledger@example.org")


@pytest.mark.parametrize("tamper", ["alter", "remove_middle", "remove_last", "reorder"])
def test_audit_verify_detects_tampering(app_client: httpx.Client, env: dict, tamper: str) -> None:
    user_id = _ledger_user(app_client)
    ok = run_cli("audit", "verify", env=env)
    assert ok.returncode == 0 and "intact" in ok.stdout, ok.stderr
    with session_scope() as s:
        ids = s.scalars(
            select(ConsentEvent.id).where(ConsentEvent.user_id == user_id).order_by(ConsentEvent.id)
        ).all()
        if tamper == "alter":
            # Rewrite history: claim the owner granted a scope they never touched.
            s.execute(
                update(ConsentEvent).where(ConsentEvent.id == ids[2]).values(scope="creations")
            )
        elif tamper == "remove_middle":
            s.execute(text("DELETE FROM consent_events WHERE id = :i"), {"i": ids[2]})
        elif tamper == "remove_last":
            s.execute(text("DELETE FROM consent_events WHERE id = :i"), {"i": ids[-1]})
        else:  # swap the contents of two records, keeping their ids
            a, b = (s.get(ConsentEvent, i) for i in (ids[1], ids[2]))
            fields = ("scope", "granted", "at", "prev_hash", "hash", "policy_sha256")
            va, vb = ({f: getattr(x, f) for f in fields} for x in (a, b))
            a.hash = "f" * 64  # out of the way of the unique hash constraint
            s.flush()
            for f in fields:
                setattr(b, f, va[f])
            s.flush()
            for f in fields:
                setattr(a, f, vb[f])
    bad = run_cli("audit", "verify", env=env)
    assert bad.returncode == 1, bad.stdout
    assert "NOT intact" in bad.stderr


def test_jobs_queued_before_opt_out_do_not_touch_the_files(env: dict, tmp_path: Path) -> None:
    """Uploads are queued with no worker running; the owner opts out; then a worker starts.
    The gate is checked when each job runs, so nothing is read or derived."""
    import os
    import subprocess
    import sys
    import time

    from camroll.db.models import AssetMetadata, Rendition
    from tests.conftest import free_port

    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [sys.executable, "-m", "camroll", "serve", "--no-worker", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    worker = None
    try:
        server = Server(env, port=port)
        for _ in range(100):
            try:
                httpx.get(f"{server.url}/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        token = make_user("queued@example.org")
        r = run_cli(
            "sync", str(PHOTOS), "--server", server.url, "--token", token, "--json", env=env
        )
        assert r.returncode == 0, r.stderr
        client = server.client(token)
        assert client.get("/api/jobs").json()["pending"] == len(list(PHOTOS.iterdir()))
        client.put("/api/consent", json={"scopes": {"cloud_processing": False}})

        worker = subprocess.Popen(
            [sys.executable, "-m", "camroll", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            jobs = client.get("/api/jobs").json()
            if jobs["pending"] == 0 and jobs["running"] == 0:
                break
            time.sleep(0.2)
        assert jobs["done"] == len(list(PHOTOS.iterdir())) and jobs["failed"] == 0
        statuses = {a["status"] for a in all_assets(client)}
        assert statuses == {"pending"}  # never processed
        user_id = _user_id("queued@example.org")
        with session_scope() as s:
            for model in (AssetMetadata, Rendition):
                n = s.scalar(
                    select(func.count()).select_from(model).where(model.user_id == user_id)
                )
                assert n == 0, model
    finally:
        for p in (worker, serve):
            if p is not None:
                p.terminate()
                p.wait(timeout=30)


def test_retention_zero_purges_at_once_on_a_running_server(env: dict) -> None:
    import time

    from camroll.config import get_settings
    from camroll.privacy.retention import receipt_id

    server = Server({**env, "CAMROLL_RETENTION_DAYS": "0"}).start()
    try:
        token = make_user("at-once@example.org")
        sync(server, token, env, PHOTOS)
        user_id = _user_id("at-once@example.org")
        r = server.client(token).put("/api/consent", json={"scopes": {"cloud_processing": False}})
        due = datetime.fromisoformat(r.json()["deletion_due_at"])
        assert due <= datetime.now(due.tzinfo)
        for _ in range(150):
            if set(user_rows(user_id).values()) == {0}:
                break
            time.sleep(0.2)
        assert set(user_rows(user_id).values()) == {0}, user_rows(user_id)
        doc = httpx.get(f"{server.url}/api/receipts/{receipt_id(user_id, due)}").json()
        assert doc["receipt"]["counts"]["originals"] == len(list(PHOTOS.iterdir()))
    finally:
        server.stop()
        get_settings.cache_clear()


@pytest.mark.backends("sqlite")
def test_bad_input_to_purge_and_receipts_gets_clear_errors(
    app_client: httpx.Client, env: dict, tmp_path: Path
) -> None:
    bad_time = run_cli("purge", "--as-of", "next tuesday", env=env)
    assert bad_time.returncode == 1 and "ISO 8601" in bad_time.stderr

    junk = tmp_path / "receipt.json"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    r = run_cli("receipt", "verify", str(junk), env=env)
    assert r.returncode == 1 and "not JSON" in r.stderr
    junk.write_text(json.dumps({"receipt": {}, "signed_body": 42}))
    r = run_cli("receipt", "verify", str(junk), env=env)
    assert r.returncode == 1 and "not a camroll deletion receipt" in r.stderr
    junk.write_text(json.dumps({"signed_body": "{not json", "signature_ed25519": "00"}))
    r = run_cli("receipt", "verify", str(junk), env=env)
    assert r.returncode == 1 and "not JSON" in r.stderr

    missing = app_client.get("/api/receipts/" + "0" * 32)
    assert missing.status_code == 404 and "no receipt" in missing.json()["detail"]
    assert app_client.get("/api/receipts/public-key").json()["ed25519_public_key"]
