"""Moments on real camera-roll files: events, trips, day/week summaries and time-zone ordering.

Metadata comes from ExifTool (`read_metadata`) on the pigallery2 demo folder (a real 2015 road
trip from Berkeley through Yosemite, Utah and Arizona, plus unrelated test files in subfolders)
and on 4MinsAroundTheWorld (eight shots minutes apart in eight time zones).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from camroll.media.metadata import read_metadata
from camroll.moments.events import (
    MAX_GAP,
    MIN_GAP,
    MomentItem,
    effective_instants,
    find_events,
    gap_threshold,
    items_from_metadata,
    order_items,
    summarize_day,
    summarize_week,
)
from camroll.moments.trips import Trip, find_trips, homes_from_items
from camroll.places.home import Home

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PIGALLERY = SHARED / "camera-roll" / "pigallery2"
DEMO = PIGALLERY / "demo"
AROUND = PIGALLERY / "test-assets" / "4MinsAroundTheWorld"
BERKELEY = Home(latitude=37.8716, longitude=-122.2727, days=0, photos=0, share=0.0)


@pytest.fixture(scope="module")
def library() -> dict[str, list[MomentItem]]:
    """Items per library, from one ExifTool pass over every file used here."""
    trip = sorted(p for p in DEMO.iterdir() if p.is_file() and p.suffix.lower() == ".jpg")
    rest = sorted(
        p
        for p in DEMO.rglob("*")
        if p.is_file() and p.suffix.lower() == ".jpg" and p.parent != DEMO
    )
    around = sorted(AROUND.glob("*.jpg"))
    paths = trip + rest + around
    items = items_from_metadata(
        read_metadata(paths), [str(p.relative_to(PIGALLERY)) for p in paths]
    )
    by_id = {it.asset_id: it for it in items}

    def pick(group: list[Path]) -> list[MomentItem]:
        ids = [str(p.relative_to(PIGALLERY)) for p in group]
        return [by_id[i] for i in ids if i in by_id]

    return {"trip": pick(trip), "all": pick(trip + rest), "around": pick(around)}


def _name(item: MomentItem) -> str:
    return Path(item.asset_id).name


def _trip_of(trips: list[Trip], name: str) -> Trip | None:
    return next((t for t in trips if any(_name(it) == name for it in t.items)), None)


def _check_road_trip(trip: Trip) -> None:
    assert trip.title.startswith("Road trip: ")
    assert "Yosemite" in trip.title
    assert re.search(r"Moab|Utah|Williams|Arizona", trip.title)
    assert trip.places[0] == "Yosemite Valley"  # ordered by first visit
    assert {"Moab", "Williams"} <= set(trip.places)
    assert (trip.start_local_day, trip.end_local_day) == (date(2015, 6, 12), date(2015, 7, 3))
    assert trip.distance_km > 100


def test_events_split_at_travel_and_keep_places_apart(library):
    events = find_events(library["trip"])
    assert sum(len(e.items) for e in events) == len(library["trip"])
    # Berkeley at 10:29 and Yosemite at 12:42 the same morning: only 2.2 h apart (below this
    # library's gap threshold) but 250 km apart, so the drive separates two events.
    berkeley = next(e for e in events if any(_name(i) == "IMG_5910.jpg" for i in e.items))
    assert [_name(i) for i in berkeley.items] == ["IMG_5910.jpg"]
    yosemite = next(e for e in events if any(_name(i) == "IMG_6220.jpg" for i in e.items))
    assert len(yosemite.items) == 6
    assert yosemite.places == ["Yosemite Valley, California, United States"]
    for ev in events:
        assert ev.start_utc <= ev.end_utc
        instants = effective_instants(ev.items)
        assert instants == sorted(instants)


def test_demo_road_trip_is_one_trip_with_home_berkeley(library):
    events = find_events(library["trip"])
    trips = find_trips(events, [BERKELEY])
    assert len(trips) == 1, [t.title for t in trips]
    trip = trips[0]
    _check_road_trip(trip)
    assert trip.title == "Road trip: Yosemite Valley, Moab and Williams"
    names = {_name(it) for it in trip.items}
    assert "IMG_5910.jpg" not in names  # the photo at home is not part of the trip
    assert {"IMG_6220.jpg", "IMG_8751.jpg", "IMG_9398-2.jpg", "wild-3.jpg"} <= names
    # Photos after the last located one (no GPS, a week later) are not claimed for the trip.
    assert "IMG_1401.jpg" not in names


def test_whole_demo_tree_still_yields_only_the_2015_trip(library):
    """London, Sydney, Croatia and a 4-minute hop around the world are single days or minutes
    away: none is a trip, and the extra files do not break the road trip."""
    trips = find_trips(find_events(library["all"]), [BERKELEY])
    assert len(trips) == 1, [t.title for t in trips]
    _check_road_trip(trips[0])
    assert all(it.local_day() and it.local_day().year == 2015 for it in trips[0].items)
    # The 4-minute hop spans two local dates (Auckland is already on Sunday) but not a night.
    assert _trip_of(trips, "UTC-20240413-203720-Tokyo.jpg") is None


def test_no_home_given(library):
    items = library["trip"]
    # Berkeley appears on one day only: too little to call it home.
    assert homes_from_items(items) == []
    events = find_events(items)
    trips = find_trips(events, [])
    # With no home, the library's first located photo (Berkeley, where the trip set off) stands in.
    assert [t.title for t in trips] == ["Road trip: Yosemite Valley, Moab and Williams"]
    assert "IMG_5910.jpg" not in {_name(it) for it in trips[0].items}
    # A home in the middle of the route (Moab) cuts it: the Moab photo is "at home", Yosemite
    # alone is one day (no trip), and only the leg after Moab is left.
    moab = Home(latitude=38.5733, longitude=-109.5498, days=0, photos=0, share=0.0)
    after = find_trips(events, [moab])
    assert _trip_of(after, "IMG_8751.jpg") is None
    assert _trip_of(after, "IMG_6220.jpg") is None
    assert [t.start_local_day for t in after] == [date(2015, 6, 29)]
    assert "Williams" in after[0].title
    # Without any GPS there is no distance from home, so no trip is claimed.
    blind = [replace(it, latitude=None, longitude=None) for it in items]
    assert find_trips(find_events(blind), []) == []


def test_order_items_by_true_instant_across_time_zones(library):
    items = library["around"]
    with_utc = [it for it in items if _name(it).startswith("UTC-")]
    assert len(with_utc) == 7

    def stamp(it: MomentItem) -> datetime:
        # The file names carry the true UTC instant: UTC-20240413-203430-Auckland.jpg
        m = re.match(r"(?:UTC-)?(\d{8}-\d{6})", _name(it))
        assert m
        return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)

    expected = sorted(with_utc, key=stamp)
    assert [_name(i) for i in order_items(with_utc)] == [_name(i) for i in expected]
    for it in with_utc:
        assert it.taken_utc == stamp(it)
    # Local wall times put Montevideo and New York (evening of the 13th) before London and
    # Auckland (already the 14th): sorting by what the clocks showed is wrong.
    by_wall = sorted(with_utc, key=lambda i: i.taken_local)
    assert [_name(i) for i in by_wall] != [_name(i) for i in expected]
    assert _name(by_wall[0]).endswith("NewYork.jpg")
    assert _name(order_items(with_utc)[0]).endswith("Auckland.jpg")
    # The shot with no offset is placed by its local time and the nearest known offset
    # (Reykjavik, UTC+0 at 20:37:30): 20:38:00, which its file name confirms.
    unknown = next(i for i in items if _name(i).startswith("20240413"))
    assert unknown.taken_utc is None
    assert effective_instants([*with_utc, unknown])[-1] == stamp(unknown)
    assert [_name(i) for i in order_items(items)].index(_name(unknown)) == 6


def test_day_and_week_summaries_use_local_dates(library):
    around = library["around"]
    sat, sun = summarize_day(around, date(2024, 4, 13)), summarize_day(around, date(2024, 4, 14))
    # All eight shots fall on 13 April in UTC; by local date Auckland, Kathmandu and Tokyo are
    # already on the 14th.
    assert (sat.count, sun.count) == (5, 3)
    assert set(sun.places) == {
        "Auckland, New Zealand",
        "Kirtipur, Central Region, Nepal",
        "Tokyo, Japan",
    }
    # First and last by instant, shown in local time: Auckland (08:34) was shot first.
    assert sun.first_local == datetime(2024, 4, 14, 8, 34, 30)
    assert sun.last_local == datetime(2024, 4, 14, 5, 37, 20)
    assert summarize_day(around, date(2024, 4, 12)).count == 0

    trip = library["trip"]
    day = summarize_day(trip, date(2015, 6, 12))
    assert day.count == 7
    assert day.places == [
        "Berkeley, California, United States",
        "Yosemite Valley, California, United States",
    ]
    assert (day.first_local, day.last_local) == (
        datetime(2015, 6, 12, 10, 29, 26),
        datetime(2015, 6, 12, 18, 10, 13, 680000),
    )
    week = summarize_week(trip, 2015, 27)  # Mon 29 June - Sun 5 July
    assert (week.first_day, week.last_day) == (date(2015, 6, 29), date(2015, 7, 5))
    assert [d.day for d in week.days] == [date(2015, 6, 29), date(2015, 7, 1), date(2015, 7, 3)]
    assert week.count == sum(d.count for d in week.days) == 12
    assert week.places[0] == "Moab, Utah, United States"
    assert "Williams, Arizona, United States" in week.places
    # Week 28 is 6-12 July: only the two photos of 11 July, after the trip.
    assert summarize_week(trip, 2015, 28).count == 2


def _scaled(items: list[MomentItem], factor: float) -> list[MomentItem]:
    """The same library shot at another pace: every gap between real instants times `factor`."""
    ordered = order_items(items)
    instants = effective_instants(ordered)
    t0 = instants[0]
    out = []
    for it, t in zip(ordered, instants, strict=True):
        moved = t0 + (t - t0) * factor
        out.append(replace(it, taken_utc=moved, taken_local=moved.replace(tzinfo=None)))
    return out


def test_gap_threshold_adapts_to_the_library(library):
    base = library["trip"]
    dense, sparse = _scaled(base, 0.5), _scaled(base, 8.0)
    t_base = gap_threshold(effective_instants(base))
    t_dense = gap_threshold(effective_instants(dense))
    t_sparse = gap_threshold(effective_instants(sparse))
    assert MIN_GAP < t_dense < t_base < t_sparse < MAX_GAP
    # The threshold follows the library's pace: half the gaps, half the threshold.
    assert t_dense.total_seconds() == pytest.approx(0.5 * t_base.total_seconds(), rel=0.01)
    assert t_sparse.total_seconds() == pytest.approx(8 * t_base.total_seconds(), rel=0.01)

    def partition(items: list[MomentItem], threshold: timedelta | None = None) -> list[list[str]]:
        return [[i.asset_id for i in e.items] for e in find_events(items, threshold)]

    # The same moments come out whatever the pace, which no fixed gap rule can do.
    assert partition(dense) == partition(base) == partition(sparse)
    fixed = timedelta(hours=12)
    assert partition(dense, fixed) != partition(sparse, fixed)

    for items, threshold in ((dense, t_dense), (sparse, t_sparse)):
        events = find_events(items)
        for ev in events:
            inst = effective_instants(ev.items)
            assert all(b - a <= threshold for a, b in pairwise(inst))
        # ...and consecutive events are split by a gap above it or by a change of place.
        for a, b in pairwise(events):
            assert b.start_utc - a.end_utc > threshold or a.places != b.places or not b.places
