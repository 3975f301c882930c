"""Strict parsing of tus's integer headers. Python's `int()` takes "1_000", " 7", "+7" and
Unicode digits (Arabic-Indic, fullwidth); the tus spec allows only ASCII digits, and a server
that reads more than its clients send invites two parties to disagree about a length."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]{1,19}")
MAX_TUS_INT = 2**63 - 1


def tus_int(value: str | None) -> int | None:
    """The header's non-negative integer, or None unless it is 1-19 ASCII digits (< 2**63)."""
    if value is None or not _DIGITS.fullmatch(value):
        return None
    n = int(value)
    return n if n <= MAX_TUS_INT else None
