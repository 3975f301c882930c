"""The access audit log: every read of a user's originals or derived data is logged with who
read it (API token, web session, admin CLI), and the owner reads their own log, newest first."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from camroll.api.deps import SESSION_COOKIE
from camroll.db.engine import session_scope
from camroll.db.models import AuditEvent, User, utcnow
from camroll.ingest.process import process_asset
from tests.conftest import ROLL, make_user
from tests.test_api import auth, upload

JPEG = ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg"
OTHER = ROLL / "exif-samples" / "jpg" / "Nikon_D70.jpg"


def audit_log(client: httpx.Client, headers: dict[str, str], limit: int = 2) -> list[tuple]:
    """The whole log, page by page (small pages, so paging is exercised)."""
    rows, before = [], None
    while True:
        params = {"limit": limit, **({"before": before} if before is not None else {})}
        r = client.get("/api/me/audit", headers=headers, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        rows += page["items"]
        before = page["next_before"]
        if before is None:
            break
    ids = [e["id"] for e in rows]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)  # newest first, once
    ats = [e["at"] for e in rows]
    assert ats == sorted(ats, reverse=True)
    return [(e["actor"], e["action"], e["target"]) for e in rows]


def test_accesses_are_logged_per_owner_with_actor_and_target(app_client: httpx.Client) -> None:
    alice = make_user("alice@example.org", password="alice-password-1")
    bob = make_user("bob@example.org")
    aid = upload(app_client, alice, JPEG.read_bytes(), "a.jpg")
    bid = upload(app_client, bob, OTHER.read_bytes(), "b.jpg")
    assert process_asset(aid) and process_asset(bid)

    # Alice's sync token (named "test" by make_user) reads detail, original, thumbnail, report.
    for path in [f"/api/assets/{aid}", f"/api/assets/{aid}/original"]:
        assert app_client.get(path, headers=auth(alice)).status_code == 200
    assert app_client.get(f"/api/assets/{aid}/thumbnail", headers=auth(alice)).status_code == 200
    assert app_client.get("/api/me/report", headers=auth(alice)).status_code == 200

    # Bob probes Alice's asset (404: not an access to it), then reads his own.
    for path in ["", "/original", "/thumbnail", "/preview"]:
        assert app_client.get(f"/api/assets/{aid}{path}", headers=auth(bob)).status_code == 404
    assert app_client.get(f"/api/assets/{bid}", headers=auth(bob)).status_code == 200

    # Alice in the browser: password login, then the timeline and a thumbnail.
    r = app_client.post(
        "/login",
        data={"email": "alice@example.org", "password": "alice-password-1"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    web = {"Cookie": f"{SESSION_COOKIE}={r.cookies[SESSION_COOKIE]}"}
    app_client.cookies.clear()
    assert [a["id"] for a in app_client.get("/api/assets", headers=web).json()["items"]] == [aid]
    assert app_client.get(f"/api/assets/{aid}/thumbnail", headers=web).status_code == 200

    # Failed requests are not accesses: a 404 and a 400 leave no trace.
    assert app_client.get("/api/assets/nope/original", headers=auth(alice)).status_code == 404
    assert app_client.get("/api/assets?cursor=%%%", headers=auth(alice)).status_code == 400

    expected = [
        ("web", "asset.thumbnail", aid),
        ("web", "asset.list", None),
        ("token:test", "report.read", None),
        ("token:test", "asset.thumbnail", aid),
        ("token:test", "asset.original", aid),
        ("token:test", "asset.read", aid),
    ]
    assert audit_log(app_client, auth(alice)) == expected
    assert audit_log(app_client, web, limit=100) == expected  # the same log from the browser
    # Bob's log holds only his own access; nothing of Alice's, nothing about her asset.
    assert audit_log(app_client, auth(bob)) == [("token:test", "asset.read", bid)]

    # The admin CLI's reads are logged too (the demo's summary reads the library).
    from camroll.cli import _demo_summary

    _demo_summary(
        "http://x",
        "bob@example.org",
        "-",
        {"counts": dict.fromkeys(["uploaded", "skipped", "failed"], 0)},
    )
    assert audit_log(app_client, auth(bob))[:3] == [
        ("admin-cli", "ideas.list", None),  # the ideas made from the library
        ("admin-cli", "analysis.read", None),  # what analysis found: people, tags, places
        ("admin-cli", "asset.list", None),
    ]
    assert audit_log(app_client, auth(alice)) == expected

    assert (
        app_client.get("/api/me/audit", params={"limit": 0}, headers=auth(alice)).status_code == 422
    )
    assert app_client.get("/api/me/audit").status_code == 401

    # The purge deletes the log with everything else (it carries a user_id).
    with session_scope() as s:
        user = s.scalars(select(User).where(User.email == "alice@example.org")).one()
        alice_id, user.deletion_due_at = user.id, utcnow()
    from camroll.privacy.retention import purge_due

    purge_due(utcnow() + timedelta(seconds=1))
    with session_scope() as s:
        left = dict(
            s.execute(select(AuditEvent.user_id, func.count()).group_by(AuditEvent.user_id)).all()
        )
    assert alice_id not in left and sum(left.values()) == 4  # Bob's four remain
