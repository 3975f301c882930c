"""Trips: multi-day stretches away from home, built from consecutive away events and named by
the places visited ("Road trip: Yosemite Valley, Moab and Williams", "Trip to Kyoto")."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from statistics import median

from camroll.moments.events import Event, MomentItem
from camroll.places.geocode import Place, reverse_geocode
from camroll.places.home import GeoPoint, Home, distance_from_home, haversine_km, infer_homes

# An event with a photo this close to a home happened at home (the same town or metro area): it
# ends any trip before it. Same radius as an event's place jump.
AT_HOME_KM = 25.0
# A trip's typical (median) photo is farther than this from home. Nearer is a day out or the
# commute belt; ~100 km is past what people treat as "local" and past a same-day round trip
# that leaves time for anything else, so spending nights there is travelling.
TRIP_KM = 100.0
# Two away events with no photo at home in between belong to one trip unless this much time has
# no photos at all: past a month of silence we cannot claim the owner was still away.
MAX_SILENCE = timedelta(days=30)
# A trip covers at least two local dates AND this long from first to last photo: an evening out
# past midnight, or shots minutes apart in different time zones, span two dates but no night away.
MIN_TRIP_SPAN = timedelta(hours=12)
# Naming: at most this many places in a title; with more distinct cities than NAME_BY_REGION the
# title names regions (states, provinces) instead, as a list of ten towns reads as noise.
MAX_TITLE_PLACES = 3
NAME_BY_REGION = 6
# "Road trip": the places spread at least this far, and no hop between consecutive photo places
# is longer than a long day's drive (a longer hop is a flight). We cannot see the transport mode,
# so this is a guess from geometry alone.
ROAD_TRIP_SPAN_KM = 150.0
MAX_DRIVE_HOP_KM = 1000.0


@dataclass
class Trip:
    events: list[Event]
    start_local_day: date
    end_local_day: date
    places: list[str]  # distinct cities, in order of first visit
    title: str
    distance_km: float  # median distance of its located photos from the nearest home

    @property
    def items(self) -> list[MomentItem]:
        return [it for ev in self.events for it in ev.items]


def homes_from_items(items: Sequence[MomentItem]) -> list[Home]:
    """Homes inferred from the items' GPS and local dates (see `camroll.places.home`)."""
    return infer_homes(
        [
            GeoPoint(it.latitude, it.longitude, it.local_day())  # type: ignore[arg-type]
            for it in items
            if it.located
        ]
    )


def find_trips(events: Sequence[Event], homes: Sequence[Home] = ()) -> list[Trip]:
    """Trips among time-ordered events (as from `find_events`).

    Homes: the ones given; else inferred from the events' photos; else, when the library shows no
    home at all (a short library, e.g. one imported trip), its first located photo stands in for
    home: a library that starts with a journey most likely starts where the owner set off.
    """
    events = sorted(events, key=lambda e: e.start_utc)
    items = [it for ev in events for it in ev.items]
    bases = list(homes) or homes_from_items(items)
    if not bases:
        # Dates before 1970 are broken clocks, not journeys (the roll has a "1601" photo).
        first = next(
            (it for it in items if it.located and (it.local_day() or date.min).year >= 1970),
            None,
        )
        if first is None:
            return []  # no GPS at all: distance from home is unknowable
        bases = [Home(first.latitude, first.longitude, days=0, photos=0, share=0.0)]  # type: ignore[arg-type]

    trips: list[Trip] = []
    for run in _away_runs(events, bases):
        trip = _make_trip(run, bases)
        if trip is not None:
            trips.append(trip)
    return trips


def _status(event: Event, homes: Sequence[Home]) -> str:
    """'home' if any photo is at home; 'away' if it has located photos, none at home; else
    'unknown'."""
    dists = [
        distance_from_home(it.latitude, it.longitude, list(homes))  # type: ignore[arg-type]
        for it in event.items
        if it.located
    ]
    dists = [d for d in dists if d is not None]
    if not dists:
        return "unknown"
    return "home" if min(dists) <= AT_HOME_KM else "away"


def _away_runs(events: Sequence[Event], homes: Sequence[Home]) -> list[list[Event]]:
    """Maximal runs of consecutive away events (with unlocated events inside them), cut by an
    event at home or by MAX_SILENCE without photos. Unlocated events at a run's ends are dropped:
    nothing says the owner was still away."""
    runs: list[list[Event]] = []
    current: list[Event] = []

    def close() -> None:
        while current and _status(current[-1], homes) == "unknown":
            current.pop()
        if current:
            runs.append(list(current))
        current.clear()

    for ev in events:
        status = _status(ev, homes)
        if current and ev.start_utc - current[-1].end_utc > MAX_SILENCE:
            close()
        if status == "home":
            close()
        elif status == "away" or current:
            current.append(ev)
    close()
    return runs


def _make_trip(run: list[Event], homes: Sequence[Home]) -> Trip | None:
    items = [it for ev in run for it in ev.items]
    days = sorted({d for it in items if (d := it.local_day()) is not None})
    if len(days) < 2 or run[-1].end_utc - run[0].start_utc < MIN_TRIP_SPAN:
        return None
    located = [it for it in items if it.located]
    dists = [
        distance_from_home(it.latitude, it.longitude, list(homes))  # type: ignore[arg-type]
        for it in located
    ]
    typical = median(d for d in dists if d is not None)
    if typical <= TRIP_KM:
        return None
    places = reverse_geocode([(it.latitude, it.longitude) for it in located])  # type: ignore[misc]
    visits = [(it, p) for it, p in zip(located, places, strict=True) if p is not None]
    cities = list(dict.fromkeys(p.city for _, p in visits))
    return Trip(
        events=run,
        start_local_day=days[0],
        end_local_day=days[-1],
        places=cities,
        title=trip_title(visits),
        distance_km=round(typical, 1),
    )


def _top_names(names: list[str]) -> list[str]:
    """Up to MAX_TITLE_PLACES names: the most photographed (ties: the first visited), shown in
    order of first visit, so the title reads like the route."""
    counts = Counter(names)
    first = {n: i for i, n in reversed(list(enumerate(names)))}
    keep = sorted(counts, key=lambda n: (-counts[n], first[n]))[:MAX_TITLE_PLACES]
    return sorted(keep, key=first.__getitem__)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def trip_title(visits: Sequence[tuple[MomentItem, Place]]) -> str:
    """'Road trip: A, B and C' when the places spread far by land, 'Trip to A' for one
    destination, else 'Trip to A, B and C'. visits: located photos in time order, with places."""
    if not visits:
        return "Trip"
    cities = [p.city for _, p in visits]
    regions = [p.region or p.country for _, p in visits]
    distinct_regions = len(set(regions))
    if len(set(cities)) > NAME_BY_REGION and distinct_regions > 1:
        names = _top_names(regions)
    else:
        names = _top_names(cities)
    # One centre per distinct city, in order of first visit: the route's stops.
    stops: dict[str, tuple[float, float]] = {}
    for _, p in visits:
        stops.setdefault(p.city, (p.latitude, p.longitude))
    route = list(stops.values())
    span = max(
        (haversine_km(a[0], a[1], b[0], b[1]) for i, a in enumerate(route) for b in route[i + 1 :]),
        default=0.0,
    )
    if len(names) == 1:
        return f"Trip to {names[0]}"
    hops = [haversine_km(a[0], a[1], b[0], b[1]) for a, b in pairwise(route)]
    if span >= ROAD_TRIP_SPAN_KM and max(hops) <= MAX_DRIVE_HOP_KM:
        return f"Road trip: {_join(names)}"
    return f"Trip to {_join(names)}"
