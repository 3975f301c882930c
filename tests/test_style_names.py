"""Restyles are named for people: every style the product offers has a human name and none of
them reads like an id (the painted idea's reason is checked in tests/test_ideas.py)."""

from __future__ import annotations

import re

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
