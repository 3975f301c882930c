"""Recap formats through the API: POST /api/ideas makes a square recap on request, regenerate
turns it into 16:9, both with their soundtrack; a format the product does not make, a
regenerate without one and another owner's recap are refused. Real ingest of real files."""

from __future__ import annotations

from pathlib import Path

import av
import httpx
import pytest
from sqlalchemy import select

from tests.conftest import ROLL, make_user
from tests.test_api import auth
from tests.test_trash_api import ingest

DEMO = ROLL / "pigallery2" / "demo"
VIDEO = ROLL / "pigallery2" / "test-assets" / "video.mp4"  # three scenes, with sound


def _probe(data: bytes, tmp: Path) -> tuple[int, int, str, float]:
    path = tmp / "recap.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.width, v.height, c.streams.audio[0].codec_context.name, c.duration / 1e6


@pytest.mark.backends("sqlite")
def test_recap_formats_through_the_api(app_client: httpx.Client, env: dict, tmp_path: Path) -> None:
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import User

    token = make_user("recaps@example.org")
    other = make_user("nosy-recaps@example.org")
    with session_scope() as s:
        for email in ("recaps@example.org", "nosy-recaps@example.org"):
            user_id = s.scalars(select(User.id).where(User.email == email)).one()
            set_scopes(s, user_id, {"creations": True}, client="test")
    ids = [ingest(app_client, token, DEMO / n) for n in ("IMG_1252.jpg", "IMG_6263.jpg")]
    ids.append(ingest(app_client, token, VIDEO))

    def make(fmt: str) -> httpx.Response:
        body = {"kind": "recap", "asset_ids": ids, "title": "Road trip", "format": fmt}
        return app_client.post("/api/ideas", headers=auth(token), json=body)

    assert make("4:3").status_code == 422  # not a format we make
    r = make("1:1")
    assert r.status_code == 201, r.text
    idea = r.json()
    media = app_client.get(idea["media_url"], headers=auth(token)).content
    w, h, audio, seconds = _probe(media, tmp_path)
    assert (w, h, audio) == (1080, 1080, "aac") and 15 <= seconds <= 60

    regen = f"/api/ideas/{idea['id']}/regenerate"
    assert app_client.post(regen, headers=auth(token), json={}).status_code == 422
    assert app_client.post(regen, headers=auth(other), json={"format": "16:9"}).status_code == 404
    r = app_client.post(regen, headers=auth(token), json={"format": "16:9"})
    assert r.status_code == 200, r.text
    media = app_client.get(idea["media_url"], headers=auth(token)).content
    assert _probe(media, tmp_path)[:3] == (1920, 1080, "aac")
