"""Restyles are named for people: every style the product offers has a human name and none of
them reads like an id; the API lists and takes names, never ids (the painted idea's reason is
checked in tests/test_ideas.py)."""

from __future__ import annotations

import re

import httpx
import pytest

from camroll.create.restyle import STYLES
from camroll.create.style_names import style_name


def test_every_style_has_a_human_name() -> None:
    names = [style_name(s) for s in STYLES]
    assert len(set(names)) == len(STYLES)  # no two styles share a name
    for style, name in zip(STYLES, names, strict=True):
        assert not re.search(r"style-?\d", name), (style, name)
        assert re.fullmatch(r"[A-Za-z][A-Za-z -]+", name), name
    assert style_name("style-19") == "Van Gogh-like"
    assert style_name("style-00") == "pastel watercolour"


def test_a_style_is_chosen_by_its_name_never_its_id() -> None:
    from camroll.create.style_names import style_id

    assert style_id("Van Gogh-like") == "style-19"
    assert style_id("  pastel   WATERCOLOUR ") == "style-00"  # as a person might type it
    assert style_id("pencil sketch") == "sketch"
    for typed in ("style-19", "picasso"):
        with pytest.raises(ValueError, match="GET /api/ideas/styles"):
            style_id(typed)


@pytest.mark.backends("sqlite")
def test_the_api_offers_styles_by_name(app_client: httpx.Client) -> None:
    from tests.conftest import make_user
    from tests.test_api import auth

    token = make_user("styles@example.org")
    r = app_client.put("/api/consent", headers=auth(token), json={"scopes": {"creations": True}})
    assert r.status_code == 200, r.text
    offered = app_client.get("/api/ideas/styles", headers=auth(token)).json()
    assert "Van Gogh-like" in offered and "pencil sketch" in offered
    assert not [s for s in offered if re.search(r"style-?\d", s)]
