"""An optional CLIP model placed in the models directory: analysis stores image embeddings,
search finds photos by a description no tag covers, and revoking `content` deletes them.

The model is a tiny CLIP-shaped ONNX pair built by the test (tests/onnx_models.py) whose
embeddings follow a photo's colour, so "red" must find the red photo."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from camroll.analyze.run import analyze_asset
from camroll.consent.gate import set_scopes
from camroll.db.engine import session_scope
from camroll.db.models import AssetEmbedding, User
from camroll.ingest.process import process_asset
from camroll.privacy.retention import apply_consent_change
from tests.conftest import make_user
from tests.onnx_models import make_clip
from tests.test_api import auth, upload

pytestmark = pytest.mark.backends("sqlite")


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), colour).save(out, "JPEG", quality=95)
    return out.getvalue()


def test_clip_embeddings_power_search_and_go_with_the_content_scope(
    app_client: httpx.Client, env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.config import get_settings

    models = Path(env["CAMROLL_DATA_DIR"]) / "models"
    make_clip(models / "tiny-clip", name="tiny-clip", version="1")
    get_settings.cache_clear()
    token = make_user("clip@example.org")
    with session_scope() as s:
        user = s.scalars(select(User).where(User.email == "clip@example.org")).one()
        set_scopes(s, user.id, {"content": True}, client="test")
        user_id = user.id
    ids = {}
    for name, colour in {"red": (220, 20, 25), "blue": (20, 30, 210)}.items():
        ids[name] = upload(app_client, token, _jpeg(colour), f"{name}.jpg")
        assert process_asset(ids[name]) == "ready"
        assert analyze_asset(ids[name]) == "done"

    with session_scope() as s:
        rows = s.scalars(select(AssetEmbedding).where(AssetEmbedding.user_id == user_id)).all()
        assert {(r.model, r.model_version, r.scope) for r in rows} == {
            ("tiny-clip", "1", "content")
        }

    def found(q: str) -> list[str]:
        r = app_client.get("/api/search", params={"q": q}, headers=auth(token))
        assert r.status_code == 200, r.text
        return [h["asset"]["id"] for h in r.json()["items"] if "clip" in h["matched"]]

    assert found("red") == [ids["red"]]
    assert found("a photo of the blue sky") == [ids["blue"]]
    report = app_client.get("/api/me/report", headers=auth(token)).json()
    assert report["categories"]["image_embeddings"]["count"] == 2

    with session_scope() as s:
        user = s.get(User, user_id)
        set_scopes(s, user_id, {"content": False}, client="test")
        apply_consent_change(s, user, {"content": False})
    with session_scope() as s:
        n = s.scalar(select(func.count()).where(AssetEmbedding.user_id == user_id))
    assert n == 0 and found("red") == []
