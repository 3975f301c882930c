"""Restyles are named for people: every style the product offers has a human name and none of
them reads like an id; styles are chosen by name, never by id (GET /api/ideas/styles is checked
in tests/test_recap_api.py, the painted idea's reason in tests/test_ideas.py)."""

from __future__ import annotations

import re

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
