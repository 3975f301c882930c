"""Trips: multi-day stretches away from home, built from consecutive away events and named by
the places visited ("Road trip: Yosemite Valley, Moab and Williams", "Trip to Kyoto").

Home is where the owner lived at the time (`camroll.places.home.infer_home_periods`): months
spent living in another city are a home period there, not a trip, and a trip from that city is
named without it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from statistics import median

from camroll.moments.events import Event, MomentItem
from camroll.places.geocode import Place, reverse_geocode
from camroll.places.home import (
    GeoPoint,
    Home,
    HomePeriod,
    distance_from_home,
    haversine_km,
    homes_on,
    infer_home_periods,
    infer_homes,
)

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
# When the owner is seen photographing at home (on MIN_HOME_EVIDENCE_DAYS days or more), a few
# days without any photo most likely hide a return home: the trip ends there. A library that
# never shows home (one imported journey) gives no such hint, and only MAX_SILENCE splits it.
SPLIT_SILENCE = timedelta(days=4)
MIN_HOME_EVIDENCE_DAYS = 3
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
    homes: list[Home] = field(default_factory=list)  # the homes it is measured from

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


def periods_from_items(items: Sequence[MomentItem]) -> list[HomePeriod]:
    """Home periods from the items' GPS, local dates and wall-clock hours."""
    points = []
    for it in items:
        if not it.located:
            continue
        # Only the wall clock says night; a UTC instant alone does not.
        hour = it.taken_local.hour if it.taken_local is not None else None
        points.append(
            GeoPoint(it.latitude, it.longitude, it.local_day(), hour)  # type: ignore[arg-type]
        )
    return infer_home_periods(points)


HomesOn = Callable[[date | None], list[Home]]


def find_trips(
    events: Sequence[Event],
    homes: Sequence[Home] = (),
    periods: Sequence[HomePeriod] | None = None,
) -> list[Trip]:
    """Trips among time-ordered events (as from `find_events`).

    Homes: the ones given (the same all the time); else the home periods given or inferred from
    the events' photos (home is where the owner lived on that day); else homes inferred from the
    whole library; else, when the library shows no home at all (a short library, e.g. one imported
    trip), its first located photo stands in for home: a library that starts with a journey most
    likely starts where the owner set off.
    """
    events = sorted(events, key=lambda e: e.start_utc)
    items = [it for ev in events for it in ev.items]
    home_of = home_resolver(items, homes, periods)
    if home_of is None:
        return []  # no GPS at all: distance from home is unknowable

    statuses = [event_status(ev, home_of) for ev in events]
    home_days = {
        d for ev, st in zip(events, statuses, strict=True) if st == "home" for d in ev.local_days
    }
    silence = SPLIT_SILENCE if len(home_days) >= MIN_HOME_EVIDENCE_DAYS else MAX_SILENCE
    trips: list[Trip] = []
    for run in _away_runs(events, statuses, silence):
        trip = _make_trip(run, home_of)
        if trip is not None:
            trips.append(trip)
    return trips


def home_resolver(
    items: Sequence[MomentItem],
    homes: Sequence[Home],
    periods: Sequence[HomePeriod] | None,
) -> HomesOn | None:
    if homes:
        fixed = list(homes)
        return lambda _day: fixed
    known = list(periods) if periods is not None else periods_from_items(items)
    if known:
        return lambda day: homes_on(known, day)
    bases = homes_from_items(items)
    if not bases:
        # Dates before 1970 are broken clocks, not journeys (the roll has a "1601" photo).
        first = next(
            (it for it in items if it.located and (it.local_day() or date.min).year >= 1970),
            None,
        )
        if first is None:
            return None
        bases = [Home(first.latitude, first.longitude, days=0, photos=0, share=0.0)]  # type: ignore[arg-type]
    return lambda _day: bases


def _distance(it: MomentItem, home_of: HomesOn) -> float | None:
    return distance_from_home(it.latitude, it.longitude, home_of(it.local_day()))  # type: ignore[arg-type]


def event_status(event: Event, home_of: HomesOn) -> str:
    """'home' if any photo is at home; 'away' if it has located photos, none at home; else
    'unknown'."""
    dists = [d for it in event.items if it.located and (d := _distance(it, home_of)) is not None]
    if not dists:
        return "unknown"
    return "home" if min(dists) <= AT_HOME_KM else "away"


def _away_runs(
    events: Sequence[Event], statuses: Sequence[str], silence: timedelta
) -> list[list[Event]]:
    """Maximal runs of consecutive away events (with unlocated events inside them), cut by an
    event at home or by `silence` without photos. Unlocated events at a run's ends are dropped:
    nothing says the owner was still away."""
    runs: list[list[Event]] = []
    current: list[Event] = []
    current_status: list[str] = []

    def close() -> None:
        while current and current_status[-1] == "unknown":
            current.pop()
            current_status.pop()
        if current:
            runs.append(list(current))
        current.clear()
        current_status.clear()

    for ev, status in zip(events, statuses, strict=True):
        if current and ev.start_utc - current[-1].end_utc > silence:
            close()
        if status == "home":
            close()
        elif status == "away" or current:
            current.append(ev)
            current_status.append(status)
    close()
    return runs


def _make_trip(run: list[Event], home_of: HomesOn) -> Trip | None:
    items = [it for ev in run for it in ev.items]
    days = sorted({d for it in items if (d := it.local_day()) is not None})
    if len(days) < 2 or run[-1].end_utc - run[0].start_utc < MIN_TRIP_SPAN:
        return None
    located = [it for it in items if it.located]
    dists = [d for it in located if (d := _distance(it, home_of)) is not None]
    typical = median(dists)
    if typical <= TRIP_KM:
        return None
    homes = list({(h.latitude, h.longitude): h for d in days for h in home_of(d)}.values())
    # The home city of that period is where the owner set off from, not a place visited.
    home_cities = {p.city for p in reverse_geocode([(h.latitude, h.longitude) for h in homes]) if p}
    places = reverse_geocode([(it.latitude, it.longitude) for it in located])  # type: ignore[misc]
    visits = [
        (it, p)
        for it, p in zip(located, places, strict=True)
        if p is not None and p.city not in home_cities
    ]
    cities = list(dict.fromkeys(p.city for _, p in visits))
    return Trip(
        events=run,
        start_local_day=days[0],
        end_local_day=days[-1],
        places=cities,
        title=trip_title(visits),
        distance_km=round(typical, 1),
        homes=homes,
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
