"""Bounds for what a request may carry: reusable pydantic types for every query and body field.

A value the database or Python cannot hold must be refused at the edge with a 422, never reach
a query and come back as a 500: ints beyond 64 bits, datetimes that leave years 1..9999 once
moved to UTC, unbounded strings, lists and maps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
SHORT_TEXT = 200  # names, titles, labels, ids in queries
ID_TEXT = 64  # our ids are 32 hex characters; leave room, refuse floods


def _in_utc_range(value: datetime) -> datetime:
    """Naive means UTC; the instant must stay within years 1..9999 after the offset."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError as e:
        raise ValueError("the instant falls outside years 1..9999 in UTC") from e


UtcDatetime = Annotated[datetime, AfterValidator(_in_utc_range)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
ShortText = Annotated[str, Field(max_length=SHORT_TEXT)]
IdText = Annotated[str, Field(max_length=ID_TEXT)]
