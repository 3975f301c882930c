"""An owner's moments (events and trips) and home periods, computed from the library as it is.

Nothing here is stored: moments are recomputed from capture times and GPS on every call, so a
new upload, a trashed photo or a revoked scope changes them at once. A moment's id is a hash of
what it is (a trip's local first and last day; an event's first instant and first photo), so the
same trip keeps its id across calls and matches the ideas made from it (`moment_id`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from statistics import median

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetMetadata, AssetQuality
from camroll.moments.events import Event, MomentItem, find_events
from camroll.moments.trips import HomesOn, Trip, find_trips, home_resolver, periods_from_items
from camroll.places.geocode import reverse_geocode
from camroll.places.home import HomePeriod, distance_from_home


@dataclass
class Moment:
    id: str
    kind: str  # trip | event
    title: str
    start_local: date
    end_local: date
    start_utc: datetime
    end_utc: datetime
    places: list[str]  # empty without the `places` scope
    distance_km: float | None  # from the home of that time; None without `places`
    cover_asset_id: str | None
    asset_ids: list[str]


def moment_id(kind: str, key: str) -> str:
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()[:20]


def trip_key(trip: Trip) -> str:
    """What a trip is: its local first and last day (the ideas' fingerprint uses the same)."""
    return f"trip:{trip.start_local_day}:{trip.end_local_day}"


def trip_moment_id(trip: Trip) -> str:
    return moment_id("trip", trip_key(trip))


def library_items(session: Session, user_id: str, with_places: bool) -> list[MomentItem]:
    """One item per ready photo or video with a capture time (a Live Photo once, as its still).
    GPS is read (decrypted in memory) only when the `places` scope allows it."""
    rows = session.execute(
        select(Asset.id, AssetMetadata)
        .join(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(
            Asset.user_id == user_id,
            Asset.status == "ready",
            or_(Asset.kind != "video", Asset.live_pair_id.is_(None)),
        )
    ).all()
    items = []
    for asset_id, m in rows:
        local = _parse(m.taken_at_local)
        if local is None and m.taken_at_utc is None:
            continue
        lat, lon = (m.latitude, m.longitude) if with_places else (None, None)
        items.append(MomentItem(asset_id, m.taken_at_utc, local, lat, lon, None))
    if with_places:
        located = [it for it in items if it.located]
        places = reverse_geocode([(it.latitude, it.longitude) for it in located])  # type: ignore[misc]
        for it, place in zip(located, places, strict=True):
            it.place = place.label() if place else None
    return items


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError:
        return None


def home_periods(session: Session, user_id: str) -> list[HomePeriod]:
    return periods_from_items(library_items(session, user_id, with_places=True))


def list_moments(session: Session, user_id: str, with_places: bool) -> list[Moment]:
    """Events, and trips when `places` allows, in time order (trips before the events that
    start with them)."""
    items = library_items(session, user_id, with_places)
    events = find_events(items)
    quality = {
        q.asset_id: q.score
        for q in session.scalars(select(AssetQuality).where(AssetQuality.user_id == user_id))
    }
    kinds = dict(
        session.execute(select(Asset.id, Asset.kind).where(Asset.user_id == user_id)).all()
    )
    periods = periods_from_items(items) if with_places else []
    home_of = home_resolver(items, (), periods) if with_places else None
    out = [_event_moment(ev, home_of, quality, kinds) for ev in events]
    if with_places:
        out += [_trip_moment(t, quality, kinds) for t in find_trips(events, periods=periods)]
    return sorted(out, key=lambda m: (m.start_utc, m.kind != "trip", m.id))


def _cover(asset_ids: list[str], quality: dict[str, float], kinds: dict[str, str]) -> str | None:
    """The best-scored photo; else the first photo; else the first item."""
    photos = [a for a in asset_ids if kinds.get(a) in ("image", "raw")] or asset_ids
    if not photos:
        return None
    return max(photos, key=lambda a: (quality.get(a, -1.0), -photos.index(a)))


def _local_days(items: list[MomentItem]) -> tuple[date, date]:
    days = sorted(d for it in items if (d := it.local_day()) is not None)
    return days[0], days[-1]


def _event_moment(
    ev: Event, home_of: HomesOn | None, quality: dict[str, float], kinds: dict[str, str]
) -> Moment:
    ids = [it.asset_id for it in ev.items]
    first, last = _local_days(ev.items)
    when = f"{first:%-d %B %Y}" if first == last else f"{first:%-d %B} to {last:%-d %B %Y}"
    places = ev.places if home_of is not None else []
    dists = []
    if home_of is not None:
        for it in ev.items:
            if it.located:
                d = distance_from_home(it.latitude, it.longitude, home_of(it.local_day()))  # type: ignore[arg-type]
                if d is not None:
                    dists.append(d)
    return Moment(
        id=moment_id("event", f"{ev.start_utc.isoformat()}:{ids[0]}"),
        kind="event",
        title=f"{places[0].split(',')[0]}, {when}" if places else when,
        start_local=first,
        end_local=last,
        start_utc=ev.start_utc,
        end_utc=ev.end_utc,
        places=places,
        distance_km=round(median(dists), 1) if dists else None,
        cover_asset_id=_cover(ids, quality, kinds),
        asset_ids=ids,
    )


def _trip_moment(trip: Trip, quality: dict[str, float], kinds: dict[str, str]) -> Moment:
    ids = [it.asset_id for it in trip.items]
    return Moment(
        id=trip_moment_id(trip),
        kind="trip",
        title=trip.title,
        start_local=trip.start_local_day,
        end_local=trip.end_local_day,
        start_utc=trip.events[0].start_utc,
        end_utc=trip.events[-1].end_utc,
        places=trip.places,
        distance_km=trip.distance_km,
        cover_asset_id=_cover(ids, quality, kinds),
        asset_ids=ids,
    )
