"""Homes over time and trips relative to them, on a synthetic multi-home roll.

Copies of two shared demo photos get capture times, UTC offsets and GPS written by ExifTool:
three months living in Berlin, then four in Lisbon, a sparse roll (a photo every other day at
home, a silent week), a weekend trip from each city twice, and a day out that is not a trip.
The trip logic then runs on what the pipeline itself reads from those files (`read_metadata`).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from camroll.media.metadata import read_metadata
from camroll.moments.events import MomentItem, find_events, items_from_metadata
from camroll.moments.trips import find_trips, periods_from_items
from camroll.places.geocode import reverse_geocode
from camroll.places.home import GeoPoint, haversine_km, infer_home_periods
from tests.conftest import make_user

DEMO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camera-roll"
SOURCES = [
    DEMO / "pigallery2" / "demo" / "IMG_8824.jpg",
    DEMO / "pigallery2" / "demo" / "IMG_8943.jpg",
]

BERLIN = (52.5200, 13.4050)
LISBON = (38.7223, -9.1393)
# Weekend trips: (where, first day, last day).
TRIPS = {
    "Dresden": ((51.0504, 13.7373), date(2024, 2, 9), date(2024, 2, 11)),
    "Hamburg": ((53.5511, 9.9937), date(2024, 3, 8), date(2024, 3, 10)),
    "Porto": ((41.1579, -8.6291), date(2024, 5, 17), date(2024, 5, 19)),
    "Sevilla": ((37.3891, -5.9845), date(2024, 6, 21), date(2024, 6, 23)),
}
EVORA = (38.5714, -7.9087)  # a day out from Lisbon (130 km): one date, not a trip
SILENT = (date(2024, 1, 15), date(2024, 1, 22))  # a week at home with no photos at all


@dataclass
class Shot:
    when: datetime
    where: tuple[float, float]


def _roll() -> list[Shot]:
    shots: list[Shot] = []
    away = {d for _, first, last in TRIPS.values() for d in _days(first, last)}
    for i, day in enumerate(_days(date(2024, 1, 1), date(2024, 7, 31))):
        if day in away or SILENT[0] <= day <= SILENT[1] or i % 2:
            continue
        home = BERLIN if day < date(2024, 4, 1) else LISBON
        # Alternate an evening shot at home with a midday one across town (~3 km off).
        if i % 4 == 0:
            shots.append(Shot(datetime(day.year, day.month, day.day, 21, 40), home))
        else:
            where = (home[0] + 0.02, home[1] - 0.03)
            shots.append(Shot(datetime(day.year, day.month, day.day, 13, 5), where))
    for (lat, lon), first, last in TRIPS.values():
        for n, day in enumerate(_days(first, last)):
            for hour in (11, 22) if n else (19,):
                shots.append(Shot(datetime(day.year, day.month, day.day, hour, 15), (lat, lon)))
    shots.append(Shot(datetime(2024, 5, 4, 10, 30), EVORA))
    shots.append(Shot(datetime(2024, 5, 4, 17, 45), EVORA))
    # The move: the last night in Berlin, the first in Lisbon.
    shots.append(Shot(datetime(2024, 3, 31, 22, 0), BERLIN))
    shots.append(Shot(datetime(2024, 4, 1, 21, 0), LISBON))
    return sorted(shots, key=lambda s: s.when)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@pytest.fixture(scope="module")
def roll(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The roll as files, with metadata written by one ExifTool run over all of them."""
    for src in SOURCES:
        assert src.is_file(), f"shared photo missing: {src}"
    folder = tmp_path_factory.mktemp("multi-home")
    args: list[str] = []
    paths = []
    for n, shot in enumerate(_roll()):
        path = folder / f"IMG_{n:04d}.jpg"
        shutil.copyfile(SOURCES[n % len(SOURCES)], path)
        paths.append(path)
        lat, lon = shot.where
        args += [
            "-all=",  # the copies' own dates and GPS are gone: only what we write is left
            f"-DateTimeOriginal={shot.when:%Y:%m:%d %H:%M:%S}",
            f"-CreateDate={shot.when:%Y:%m:%d %H:%M:%S}",
            "-OffsetTimeOriginal=+01:00",
            f"-GPSLatitude={abs(lat)}",
            f"-GPSLatitudeRef={'N' if lat >= 0 else 'S'}",
            f"-GPSLongitude={abs(lon)}",
            f"-GPSLongitudeRef={'E' if lon >= 0 else 'W'}",
            str(path),
            "-execute",
        ]
    argfile = folder / "args.txt"
    argfile.write_text("\n".join(args) + "\n")
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-@", str(argfile)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    argfile.unlink()
    return paths


def test_two_homes_and_four_weekend_trips(roll: list[Path]) -> None:
    items = items_from_metadata(read_metadata(roll), [p.name for p in roll])
    assert len(items) == len(roll) > 100

    periods = periods_from_items(items)
    assert len(periods) == 2, periods
    berlin, lisbon = periods
    assert haversine_km(berlin.latitude, berlin.longitude, *BERLIN) < 5
    assert haversine_km(lisbon.latitude, lisbon.longitude, *LISBON) < 5
    assert (berlin.start, berlin.end) == (date(2024, 1, 1), date(2024, 3, 31))
    assert (lisbon.start, lisbon.end) == (date(2024, 4, 1), date(2024, 7, 31))

    trips = find_trips(find_events(items))
    got = [(t.start_local_day, t.end_local_day) for t in trips]
    assert got == [(first, last) for _, first, last in TRIPS.values()], [t.title for t in trips]
    for (name, ((lat, lon), _, _)), trip in zip(TRIPS.items(), trips, strict=True):
        # Named by the place visited (as GeoNames calls it: Hamburg's centre is "Altstadt");
        # the home city of that period is never a place of it.
        city = reverse_geocode([(lat, lon)])[0].city  # type: ignore[union-attr]
        assert city == (name if name != "Hamburg" else "Altstadt")
        assert trip.title == f"Trip to {city}"
        assert trip.places == [city]
        assert len(trip.items) == 5  # all its photos, nothing from home
        home = (berlin if trip.start_local_day < lisbon.start else lisbon).home()
        expected = haversine_km(lat, lon, home.latitude, home.longitude)
        assert abs(trip.distance_km - expected) < 10

    # One home for the whole roll (the old answer) would call months in Lisbon a trip when Berlin
    # is home: measured from its own period, nothing in Lisbon but the trips from it is away.
    lisbon_trips = [t for t in trips if t.start_local_day >= lisbon.start]
    assert [t.title for t in lisbon_trips] == ["Trip to Porto", "Trip to Sevilla"]


def test_home_periods_stored_reported_and_trips_served(
    roll: list[Path], env: dict, app_client: httpx.Client
) -> None:
    """The same roll as an owner's library: the library job stores the home periods, the report
    shows them (places scope), `GET /api/moments` serves the four trips, and switching places off
    deletes the periods and hides the trips."""
    from camroll.analyze.library import refresh_library
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, HomePeriodRow, User
    from camroll.ingest.process import _save_metadata

    token = make_user("two-homes@example.org")
    headers = {"Authorization": f"Bearer {token}"}
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == "two-homes@example.org")).one()
        set_scopes(s, user_id, {"places": True}, client="test")
        for n, (path, meta) in enumerate(zip(roll, read_metadata(roll), strict=True)):
            asset = Asset(
                user_id=user_id,
                checksum=f"{n:064x}",
                size=path.stat().st_size,
                filename=path.name,
                mime="image/jpeg",
                kind="image",
                status="ready",
            )
            s.add(asset)
            s.flush()
            _save_metadata(s, asset, meta)
    refresh_library(user_id)

    report = app_client.get("/api/me/report", headers=headers).json()
    periods = report["where_you_lived"]
    assert [(p["start_date"], p["end_date"]) for p in periods] == [
        ("2024-01-01", "2024-03-31"),
        ("2024-04-01", "2024-07-31"),
    ]
    assert "Berlin" in periods[0]["place"] and "Lisbon" in periods[1]["place"]
    assert {p["scope"] for p in periods} == {"places"}
    assert report["categories"]["home_periods"]["count"] == 2
    page = app_client.get("/report", headers=headers)
    assert "Where you lived" in page.text and "2024-04-01 to 2024-07-31" in page.text

    trips = app_client.get("/api/moments", params={"kind": "trip"}, headers=headers).json()
    assert [(t["start_date"], t["end_date"]) for t in trips] == [
        (first.isoformat(), last.isoformat()) for _, first, last in TRIPS.values()
    ]
    assert all(t["count"] == 5 for t in trips)
    # The trips' ideas (made by the ideas job, not rendered here) name the moment they came from.
    from camroll.ideas.generate import load_library, trip_ideas

    with session_scope() as s:
        ideas = trip_ideas(s, load_library(s, user_id), user_id)
    assert {i.params["moment_id"] for i in ideas} == {t["id"] for t in trips}

    app_client.put("/api/consent", json={"scopes": {"places": False}}, headers=headers)
    with session_scope() as s:
        assert s.scalars(select(HomePeriodRow).where(HomePeriodRow.user_id == user_id)).all() == []
    assert app_client.get("/api/me/report", headers=headers).json()["where_you_lived"] == []
    r = app_client.get("/api/moments", params={"kind": "trip"}, headers=headers)
    assert r.status_code == 403


def _items(stays: list[tuple[tuple[float, float], date, date, int]]) -> list[MomentItem]:
    """A sparse roll from (place, first day, last day, every n-th day) stays: one evening shot
    per photo day, at UTC+1."""
    out = []
    for (lat, lon), first, last, every in stays:
        for n, day in enumerate(_days(first, last)):
            if n % every:
                continue
            local = datetime(day.year, day.month, day.day, 21, 0)
            out.append(
                MomentItem(f"{day}-{lat}", local - timedelta(hours=1), local, lat, lon, None)
            )
    for it in out:
        it.taken_utc = it.taken_utc.replace(tzinfo=UTC)  # type: ignore[union-attr]
    return out


ROME = (41.9028, 12.4964)


def test_four_weeks_away_is_a_home_period_two_weeks_is_a_trip() -> None:
    """A month living in Rome in the middle of a Berlin half-year is a home period (Berlin's is
    cut around it), not a 28-day "trip to Rome"; a fortnight's holiday there is a trip."""
    month = _items(
        [
            (BERLIN, date(2024, 1, 1), date(2024, 2, 29), 2),
            (ROME, date(2024, 3, 1), date(2024, 3, 28), 2),
            (BERLIN, date(2024, 3, 29), date(2024, 6, 30), 2),
        ]
    )
    periods = periods_from_items(month)
    assert [(p.start, p.end) for p in periods] == [
        (date(2024, 1, 1), date(2024, 2, 28)),
        (date(2024, 3, 1), date(2024, 3, 27)),
        (date(2024, 3, 29), date(2024, 6, 29)),
    ]
    assert haversine_km(periods[1].latitude, periods[1].longitude, *ROME) < 1
    assert find_trips(find_events(month)) == []

    holiday = _items(
        [
            (BERLIN, date(2024, 1, 1), date(2024, 2, 29), 2),
            (ROME, date(2024, 3, 1), date(2024, 3, 14), 1),
            (BERLIN, date(2024, 3, 15), date(2024, 6, 30), 2),
        ]
    )
    (berlin,) = periods_from_items(holiday)
    assert (berlin.start, berlin.end) == (date(2024, 1, 1), date(2024, 6, 29))
    trips = find_trips(find_events(holiday))
    assert [(t.title, t.start_local_day, t.end_local_day) for t in trips] == [
        ("Trip to Rome", date(2024, 3, 1), date(2024, 3, 14))
    ]


def test_the_night_says_where_home_is() -> None:
    """Two midday shots at work in Potsdam (30 km out) and one late-evening shot in Berlin every
    day for six weeks: the owner sleeps in Berlin, so Berlin is home."""
    potsdam = (52.3906, 13.0645)
    points = []
    for day in _days(date(2024, 1, 1), date(2024, 2, 11)):
        points += [
            GeoPoint(*potsdam, day, 12),
            GeoPoint(*potsdam, day, 14),
            GeoPoint(*BERLIN, day, 23),
        ]
    (home,) = infer_home_periods(points)
    assert haversine_km(home.latitude, home.longitude, *BERLIN) < 1
    assert (home.start, home.end, home.days) == (date(2024, 1, 1), date(2024, 2, 11), 42)
