"""Moments: the owner's events and trips, with every member photo.

Events come from capture times alone, so they need only `cloud_processing`; their places and
distance from home are filled in only while `places` is on. Trips are measured from where the
owner lived at the time (GPS), so they need `places`: `kind=trip` answers 403 without it, and a
list without `kind` then holds events only. Another owner's moment id answers 404. Day and
week summaries read the same library by local date.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, PlainSerializer, WithJsonSchema
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, granted, not_found
from camroll.consent.gate import is_granted
from camroll.moments.events import summarize_day, summarize_week
from camroll.moments.library import Moment, library_items, list_moments
from camroll.privacy.audit import record

router = APIRouter(prefix="/api/moments", tags=["moments"])
processing = granted("cloud_processing")


class MomentOut(BaseModel):
    id: str
    kind: Literal["trip", "event"]
    title: str
    start_date: date  # local date of the first photo
    end_date: date  # local date of the last photo
    start_utc: datetime
    end_utc: datetime
    places: list[str]
    distance_from_home_km: float | None
    cover_asset_id: str | None
    cover_url: str | None
    count: int
    asset_ids: list[str]


def moment_out(m: Moment) -> MomentOut:
    return MomentOut(
        id=m.id,
        kind=m.kind,  # type: ignore[arg-type]
        title=m.title,
        start_date=m.start_local,
        end_date=m.end_local,
        start_utc=m.start_utc.astimezone(UTC),
        end_utc=m.end_utc.astimezone(UTC),
        places=m.places,
        distance_from_home_km=m.distance_km,
        cover_asset_id=m.cover_asset_id,
        cover_url=f"/api/assets/{m.cover_asset_id}/thumbnail" if m.cover_asset_id else None,
        count=len(m.asset_ids),
        asset_ids=m.asset_ids,
    )


@router.get("", response_model=list[MomentOut])
def moments(
    kind: Literal["trip", "event"] | None = Query(None),
    from_: date | None = Query(None, alias="from", description="local date, inclusive"),
    to: date | None = Query(None, description="local date, inclusive"),
    who: Caller = Depends(processing),
    session: Session = Depends(db, scope="function"),
) -> list[MomentOut]:
    """Events and trips overlapping [from, to], oldest first."""
    if from_ and to and from_ > to:
        raise HTTPException(400, "'from' is after 'to'")
    places = is_granted(session, who.user.id, "places")
    if kind == "trip" and not places:
        raise HTTPException(
            403, "trips need the 'places' scope: switch it on with PUT /api/consent"
        )
    found = [
        m
        for m in list_moments(session, who.user.id, places)
        if (kind is None or m.kind == kind)
        and (from_ is None or m.end_local >= from_)
        and (to is None or m.start_local <= to)
    ]
    record(session, who, "moments.list")
    return [moment_out(m) for m in found]


# A capture's local wall time has no offset (EXIF's DateTimeOriginal without OffsetTime), so it is
# not an RFC 3339 `date-time`: typed as the ISO 8601 local date-time it is. A photo that kept only
# its UTC instant (no wall time) stands in with that instant, "+00:00" included.
LocalTime = Annotated[
    datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2})?$",
            "description": "local wall time, ISO 8601 with no offset (an offset only when the "
            "photo kept just its UTC instant)",
            "examples": ["2015-06-12T10:29:31"],
        }
    ),
]


class DayOut(BaseModel):
    day: date  # a local date: a photo at 00:30 in Tokyo belongs to that Tokyo date
    count: int
    places: list[str]  # empty without the places scope
    first_local: LocalTime | None  # local wall time of the first photo by instant; None: no photo
    last_local: LocalTime | None


class WeekOut(BaseModel):
    iso_year: int
    iso_week: int
    first_day: date  # the Monday
    last_day: date  # the Sunday
    count: int
    places: list[str]
    days: list[DayOut]  # only the days with photos, in order
    first_local: LocalTime | None
    last_local: LocalTime | None


@router.get("/days/{day}", response_model=DayOut)
def day_summary(
    day: date,
    who: Caller = Depends(processing),
    session: Session = Depends(db, scope="function"),
) -> DayOut:
    """What happened on one local day: how many photos, where, first and last."""
    places = is_granted(session, who.user.id, "places")
    summary = summarize_day(library_items(session, who.user.id, places), day)
    record(session, who, "moments.day")
    return DayOut(**asdict(summary))


@router.get("/weeks/{iso_year}/{iso_week}", response_model=WeekOut)
def week_summary(
    iso_year: int = Path(ge=1, le=9999),
    iso_week: int = Path(ge=1, le=53),
    who: Caller = Depends(processing),
    session: Session = Depends(db, scope="function"),
) -> WeekOut:
    """One ISO week (Monday to Sunday, by local date), with a summary of each day with photos."""
    places = is_granted(session, who.user.id, "places")
    items = library_items(session, who.user.id, places)
    try:
        summary = summarize_week(items, iso_year, iso_week)
    except (ValueError, OverflowError):  # week 53 of a year that has 52; past 9999-12-31
        raise HTTPException(422, f"{iso_year} has no ISO week {iso_week}") from None
    record(session, who, "moments.week")
    return WeekOut(**asdict(summary))


@router.get("/{moment_id}", response_model=MomentOut)
def moment(
    moment_id: str = Path(max_length=64),
    who: Caller = Depends(processing),
    session: Session = Depends(db, scope="function"),
) -> MomentOut:
    places = is_granted(session, who.user.id, "places")
    found = next((m for m in list_moments(session, who.user.id, places) if m.id == moment_id), None)
    if found is None:
        raise not_found("moment")
    record(session, who, "moment.read", moment_id)
    return moment_out(found)
