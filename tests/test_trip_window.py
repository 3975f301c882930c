"""A batch finds its trips in a window of the timeline, and they are the full pass's trips.

The window (`moments.window`) reads only the photos around the batch, split by the gap threshold
the full pass fitted and the stored home periods. Checked on the real 2015 road trip (pigallery2
demo, ExifTool metadata, Berkeley to Yosemite, Moab and Williams) set in three years of everyday
photos at home in Berkeley, and on a synthetic library of four years that moves house (Berlin,
then Lisbon), with trips, day trips, silences, photos without GPS and cameras that record no UTC
offset: for batches all over the timeline, the trips the window finds are exactly the full
pass's trips on those days, and the batch's trip ideas are the full pass's trip ideas.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import make_user

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEMO = SHARED / "camera-roll" / "pigallery2" / "demo"
BERKELEY = (37.8716, -122.2727)
LONDON = (51.5072, -0.1276)
BERLIN = (52.52, 13.405)
LISBON = (38.7223, -9.1393)
AWAY = [
    (48.8566, 2.3522),  # Paris
    (41.9028, 12.4964),  # Rome
    (35.0116, 135.7681),  # Kyoto
    (40.4168, -3.7038),  # Madrid
    (51.5072, -0.1276),  # London
]

TOKYO = (35.6762, 139.6503)
NEW_YORK = (40.7128, -74.006)
COUNTRIES = [
    (*TOKYO, "JP"),
    (*NEW_YORK, "US"),
    (*BERKELEY, "US"),
    (*BERLIN, "DE"),
    (*LISBON, "PT"),
    (*AWAY[0], "FR"),
    (*AWAY[1], "IT"),
    (*AWAY[2], "JP"),
    (*AWAY[3], "ES"),
    (*AWAY[4], "GB"),
]

pytestmark = pytest.mark.backends("sqlite")


def _user(email: str) -> str:
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import User

    make_user(email)
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == email)).one()
        scopes = {"places": True, "content": True, "creations": True}
        set_scopes(s, user_id, scopes, client="test")
    return user_id


def _add(
    s, user_id: str, name: str, local: datetime, offset_h: float | None, where, side=1200
) -> str:  # type: ignore[no-untyped-def]
    """A ready photo as ingest leaves it: wall time, the UTC instant when the camera knew its
    offset, GPS when `where`; sort_at as ingest sets it."""
    from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetQuality

    utc = None if offset_h is None else (local - timedelta(hours=offset_h)).replace(tzinfo=UTC)
    asset = Asset(
        user_id=user_id,
        checksum=f"{random.getrandbits(256):064x}",
        size=1,
        filename=name,
        mime="image/jpeg",
        kind="image",
        status="ready",
        sort_at=utc or local.replace(tzinfo=UTC),
    )
    s.add(asset)
    s.flush()
    lat, lon = where if where else (None, None)
    s.add(
        AssetMetadata(
            user_id=user_id,
            asset_id=asset.id,
            scope="cloud_processing",
            model="test",
            model_version="1",
            width=side,
            height=side,
            taken_at_local=local.isoformat(),
            taken_at_utc=utc,
            latitude=lat,
            longitude=lon,
        )
    )
    if where:  # the place row analysis leaves: the country is what holidays count
        s.add(
            AssetPlace(
                user_id=user_id,
                asset_id=asset.id,
                scope="places",
                model="test",
                model_version="1",
                city="-",
                country_code=min(COUNTRIES, key=lambda p: abs(p[0] - lat) + abs(p[1] - lon))[2],
            )
        )
    score = round(random.uniform(0.2, 0.9), 3)
    s.add(
        AssetQuality(
            user_id=user_id,
            asset_id=asset.id,
            scope="content",
            model="test",
            model_version="1",
            sharpness=score,
            exposure=score,
            score=score,
            phash=f"{random.getrandbits(64):016x}",
        )
    )
    return asset.id


def _near(rng: random.Random, place: tuple[float, float], km: float = 5.0):  # type: ignore[no-untyped-def]
    d = km / 111.0
    return (place[0] + rng.uniform(-d, d), place[1] + rng.uniform(-d, d))


def _home_days(s, user_id, rng, home, first: date, last: date, skip, offset_h, per_day=(0, 3)):  # type: ignore[no-untyped-def]
    """Everyday photos at home: 0-3 a day at random hours, a third without GPS."""
    ids = []
    day = first
    while day <= last:
        if not skip(day):
            for k in range(rng.randint(*per_day)):
                at = datetime.combine(day, datetime.min.time()) + timedelta(
                    hours=rng.uniform(7, 23)
                )
                where = _near(rng, home) if rng.random() > 0.33 else None
                ids.append(_add(s, user_id, f"home-{day}-{k}", at, offset_h(day), where))
        day += timedelta(days=1)
    return ids


def _trip_key(t) -> tuple:  # type: ignore[no-untyped-def]
    return (
        t.start_local_day,
        t.end_local_day,
        t.title,
        tuple(sorted(it.asset_id for it in t.items)),
        tuple(t.places),
        t.distance_km,
    )


def _event_key(ev) -> tuple:  # type: ignore[no-untyped-def]
    return (ev.start_utc, ev.end_utc, tuple(it.asset_id for it in ev.items))


def _check_window(user_id: str, batches: list[list[str]]) -> int:
    """For each batch: the window's trips are full-pass trips, and every full-pass trip on the
    batch's days (or holding one of its photos) is among them. Returns how many trips the
    batches touched."""
    from camroll.db.engine import session_scope
    from camroll.ideas.generate import library_trips, load_library, trip_items
    from camroll.moments.events import effective_instants, find_events, gap_threshold
    from camroll.moments.window import stored_periods, window_trips

    touched = 0
    with session_scope() as s:
        whole = load_library(s, user_id)
        full, gap = library_trips(s, whole, user_id)
        assert gap is not None
        periods = stored_periods(s, user_id)
        assert periods, "the library refresh stored home periods"
        full_keys = {_trip_key(t) for t in full}
        items = trip_items(whole)
        full_events = {
            _event_key(ev) for ev in find_events(items, gap_threshold(effective_instants(items)))
        }
        for batch in batches:
            read: list[str] = []

            def load(ids: list[str], read: list[str] = read) -> list:  # type: ignore[type-arg]
                read.extend(ids)
                return trip_items(load_library(s, user_id, ids), ids)

            found = window_trips(s, user_id, batch, timedelta(seconds=gap), periods, load)
            assert found is not None
            trips = found.trips
            events = {_event_key(ev) for ev in found.events}
            assert events <= full_events  # split exactly as the whole library is
            keys = {_trip_key(t) for t in trips}
            assert keys <= full_keys  # each exactly as the full pass finds it
            days = {whole.local_day(a) for a in batch}
            mine = {
                _trip_key(t)
                for t in full
                if set(batch) & {it.asset_id for it in t.items}
                or any(t.start_local_day <= d <= t.end_local_day for d in days if d)
            }
            assert mine <= keys, "a trip on the batch's days was missed"
            touched += len(mine)
            assert len(read) < len(whole.assets), "the window read the whole library"
    return touched


@pytest.fixture(scope="module")
def road_trip() -> list:  # type: ignore[type-arg]
    from camroll.media.metadata import read_metadata

    paths = sorted(p for p in DEMO.iterdir() if p.is_file() and p.suffix.lower() == ".jpg")
    return [(p.name, m) for p, m in zip(paths, read_metadata(paths), strict=True)]


def test_road_trip_in_years_at_home_found_from_a_window(env: dict, road_trip: list) -> None:  # type: ignore[type-arg]
    from camroll.analyze.library import refresh_homes
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetMetadata
    from camroll.ingest.process import _instant, _sort_at

    rng = random.Random(7)
    user_id = _user("roadtrip@example.org")
    trip_ids: dict[str, str] = {}
    with session_scope() as s:
        for name, m in road_trip:  # the real files' rows, as ingest writes them
            if not (m.taken_at_local or m.taken_at_utc):
                continue
            asset = Asset(
                user_id=user_id,
                checksum=f"{random.getrandbits(256):064x}",
                size=1,
                filename=name,
                mime="image/jpeg",
                kind="image",
                status="ready",
            )
            s.add(asset)
            s.flush()
            asset.sort_at = _sort_at(m, datetime(2026, 1, 1, tzinfo=UTC))
            s.add(
                AssetMetadata(
                    user_id=user_id,
                    asset_id=asset.id,
                    scope="cloud_processing",
                    model="exiftool",
                    model_version="test",
                    taken_at_local=m.taken_at_local,
                    taken_at_utc=_instant(m),
                    latitude=m.latitude,
                    longitude=m.longitude,
                )
            )
            trip_ids[name] = asset.id
        # Three years at home in Berkeley around it (none while the roll is away), on a
        # camera that writes UTC offsets in summer and none in winter.
        home = _home_days(
            s,
            user_id,
            rng,
            BERKELEY,
            date(2014, 10, 1),
            date(2016, 3, 31),
            lambda d: date(2015, 6, 11) <= d <= date(2015, 7, 11),
            lambda d: -7 if 4 <= d.month <= 10 else None,
        )
        refresh_homes(s, user_id)

    from camroll.ideas.generate import library_trips, load_library

    with session_scope() as s:
        trips, _ = library_trips(s, load_library(s, user_id), user_id)
    # The roll has no photo from 12 to 29 June: with the owner seen at home every few days,
    # that silence ends the trip (SPLIT_SILENCE), and the drive home is what is left of it.
    assert [(t.title, t.start_local_day, t.end_local_day) for t in trips] == [
        ("Road trip: Moab, Bridgeport and Williams", date(2015, 6, 29), date(2015, 7, 3))
    ]
    last_day = [trip_ids[n] for n in ("IMG_1401.jpg", "IMG_9398-2.jpg") if n in trip_ids]
    batches = [
        [trip_ids["IMG_6220.jpg"]],  # Yosemite, the trip's first days
        last_day,
        list(trip_ids.values()),  # the whole roll as one batch
        *[[rng.choice(home)] for _ in range(12)],  # everyday photos over the years
    ]
    assert _check_window(user_id, batches) == 2  # the last days, the whole roll


def _synthetic(user_id: str, seed: int) -> tuple[list[str], list[list[str]]]:
    """Two and a half years: Berlin (2020-21, offsets known), then Lisbon (2022, an old camera
    with no offset half the time); a trip every two or three months (3-12 days, some without GPS
    on a day, some with a silent stretch), day trips under 100 km, a month with no photos."""
    from camroll.analyze.library import refresh_homes
    from camroll.db.engine import session_scope

    rng = random.Random(seed)
    trips: list[tuple[date, date, tuple[float, float]]] = []
    day = date(2020, 9, 1)
    while day < date(2022, 11, 1):
        length = rng.randint(3, 12)
        trips.append((day, day + timedelta(days=length - 1), rng.choice(AWAY)))
        day += timedelta(days=rng.randint(50, 90))
    silent = (date(2021, 8, 1), date(2021, 8, 31))

    def away(d: date) -> bool:
        return any(a <= d <= b for a, b, _ in trips) or silent[0] <= d <= silent[1]

    def berlin_offset(d: date) -> float:
        return 2 if 4 <= d.month <= 10 else 1

    trip_batches: list[list[str]] = []
    with session_scope() as s:
        home = _home_days(
            s,
            user_id,
            rng,
            BERLIN,
            date(2020, 7, 1),
            date(2021, 12, 31),
            away,
            berlin_offset,
            per_day=(0, 2),
        )
        home += _home_days(
            s,
            user_id,
            rng,
            LISBON,
            date(2022, 1, 1),
            date(2022, 12, 31),
            away,
            lambda d: (1 if 4 <= d.month <= 10 else 0) if d.day % 2 else None,
            per_day=(1, 3),
        )
        for n, (first, last, place) in enumerate(trips):
            ids = []
            d = first
            while d <= last:
                quiet = n % 4 == 1 and d == first + timedelta(days=2)  # a day with no GPS
                if not (n % 5 == 2 and first + timedelta(days=1) <= d <= first + timedelta(days=2)):
                    for k in range(rng.randint(2, 6)):
                        at = datetime.combine(d, datetime.min.time()) + timedelta(
                            hours=rng.uniform(8, 22)
                        )
                        where = None if quiet else _near(rng, place, 15)
                        offset = None if (n % 3 == 0 and k % 2) else 1.0
                        ids.append(_add(s, user_id, f"trip{n}-{d}-{k}", at, offset, where))
                d += timedelta(days=1)
            trip_batches.append(ids)
        for k in range(8):  # day trips: 60 km out and back the same day
            d = date(2020, 9, 7) + timedelta(days=97 * k)
            if away(d):
                continue
            base = BERLIN if d.year < 2022 else LISBON
            for j in range(3):
                at = datetime.combine(d, datetime.min.time()) + timedelta(hours=10 + 2 * j)
                where = (base[0] + 0.55, base[1])
                _add(s, user_id, f"out-{d}-{j}", at, berlin_offset(d), where)
        refresh_homes(s, user_id)
    return home, trip_batches


def test_synthetic_years_of_trips_and_a_move(env: dict) -> None:
    """Three years with a move: windows around batches all over the timeline find the full
    pass's trips; photos at home the day after a trip leave that trip's ideas as they were
    rendered (nothing rendered again); a batch on a new trip makes the full pass's trip ideas."""
    from camroll import job_runs
    from camroll.analyze.library import library_state
    from camroll.db.engine import session_scope
    from camroll.db.models import AssetMetadata, Idea, utcnow
    from camroll.ideas.generate import (
        _members_hash,
        batch_suggestions,
        refresh_ideas,
        suggestions,
    )

    rng = random.Random(11)
    user_id = _user("years@example.org")
    home, trip_batches = _synthetic(user_id, seed=5)
    batches = [
        *[rng.sample(ids, min(3, len(ids))) for ids in trip_batches[::2]],  # on a trip
        *[[rng.choice(home)] for _ in range(12)],  # at home, anywhere in the years
        [rng.choice(home), trip_batches[-1][0]],  # two far-apart days in one batch
    ]
    assert _check_window(user_id, batches) >= len(trip_batches[::2])

    today = date(2023, 1, 10)
    with session_scope() as s:  # the full pass's ideas, as rendering them left them
        before = suggestions(s, user_id, today, faces=True)  # keeps the gap threshold
        for x in before:
            s.add(
                Idea(
                    user_id=user_id,
                    scope="creations",
                    model="camroll-ideas",
                    model_version="1",
                    fingerprint=x.fingerprint,
                    kind=x.kind,
                    title=x.title,
                    reason=x.reason,
                    confidence=x.confidence,
                    score=1.0,
                    state="suggested",
                    member_ids="[]",
                    members_hash=_members_hash(x.assets),
                    params="{}",
                    blob_key=f"rendered-{x.fingerprint}",
                )
            )
        state = library_state(s, user_id)
        state.ideas_until = state.ideas_full_at = utcnow()

    def trip_rows() -> dict[str, tuple]:  # type: ignore[type-arg]
        with session_scope() as s:
            rows = s.scalars(select(Idea).where(Idea.user_id == user_id))
            return {
                i.fingerprint: (i.updated_at, i.blob_key) for i in rows if ":trip:" in i.fingerprint
            }

    rendered = trip_rows()
    assert rendered
    with session_scope() as s:  # back home the day after a trip: three photos
        ends = s.scalars(
            select(AssetMetadata.taken_at_local).where(AssetMetadata.asset_id.in_(trip_batches[2]))
        )
        day = datetime.fromisoformat(max(ends)).date() + timedelta(days=1)  # type: ignore[type-var]
        back = [
            _add(
                s,
                user_id,
                f"back-{k}",
                datetime.combine(day, datetime.min.time()) + timedelta(hours=9 + k),
                1.0,
                BERLIN,
                side=64,
            )
            for k in range(3)
        ]
    for a in back:  # the only analysis jobs: the batch is these photos
        job_runs.mark("analyze", a, user_id, "done")
    assert refresh_ideas(user_id, full=False) == 0
    assert trip_rows() == rendered

    with session_scope() as s:  # a new trip, an old trip's photo analysed again, one at home,
        # and Christmas at home in Berlin
        batch = [
            _add(s, user_id, f"new-{k}", datetime(2023, 1, 3 + k // 4, 9 + k % 4), 0.0, AWAY[0])
            for k in range(16)
        ]
        batch.append(trip_batches[3][0])
        batch.append(_add(s, user_id, "home-new", datetime(2023, 1, 8, 12), 0.0, LISBON))
        batch += [
            _add(s, user_id, f"xmas-{k}", datetime(2021, 12, 25, 10 + k), 1.0, BERLIN)
            for k in range(5)
        ]
    with session_scope() as s:
        _, found = batch_suggestions(s, user_id, batch, today, faces=True)
        scoped = {
            f.fingerprint: (f.title, f.reason, sorted(a.id for a in f.assets))
            for f in found
            if ":trip:" in f.fingerprint or f.fingerprint.startswith("holiday:")
        }
        after = {
            f.fingerprint: (f.title, f.reason, sorted(a.id for a in f.assets))
            for f in suggestions(s, user_id, today, faces=True)
            if ":trip:" in f.fingerprint or f.fingerprint.startswith("holiday:")
        }
    new = {f for f in after if f not in {x.fingerprint for x in before}}
    assert new and new <= set(scoped), "the new trip's ideas are made by the batch"
    # Christmas 2021, of the most photographed country's calendar (Lisbon's PT, by a little)
    assert any(f.startswith("holiday:") and f.endswith(":Christmas Day:2021") for f in scoped)
    assert not any(f.endswith(":2020") for f in scoped if f.startswith("holiday:"))
    for f, v in scoped.items():
        assert after[f] == v  # ... exactly as the full pass makes them

    from camroll.moments.library import list_moments

    with session_scope() as s:  # each trip idea opens its trip among the owner's moments
        moments = {m.id for m in list_moments(s, user_id, with_places=True) if m.kind == "trip"}
        ideas = {
            x.params["moment_id"]
            for x in suggestions(s, user_id, today, faces=True)
            if ":trip:" in x.fingerprint
        }
    assert ideas and ideas == moments


def test_time_zones_and_cameras_without_offsets(env: dict) -> None:
    """Home in Tokyo (UTC+9), trips to London and New York; a second camera writes no UTC
    offset (its photos are placed by the offset of the photo nearest in wall time, which may
    lie outside a window). Windows around single photos everywhere split events and trips as
    the whole library does."""
    from camroll.analyze.library import refresh_homes
    from camroll.db.engine import session_scope

    rng = random.Random(23)
    user_id = _user("zones@example.org")
    trips = []
    day = date(2021, 3, 1)
    while day < date(2022, 1, 1):
        trips.append((day, day + timedelta(days=rng.randint(2, 9)), rng.choice([0, 1, -5, -4])))
        day += timedelta(days=rng.randint(25, 60))

    def zone(d: date) -> float | None:
        return next((z for a, b, z in trips if a <= d <= b), None)

    with session_scope() as s:
        home = _home_days(
            s,
            user_id,
            rng,
            TOKYO,
            date(2021, 2, 1),
            date(2022, 1, 31),
            lambda d: zone(d) is not None,
            lambda d: 9 if d.day % 3 else None,
            per_day=(0, 3),
        )
        away: list[list[str]] = []
        for a, b, z in trips:
            away.append([])
            where = LONDON if z in (0, 1) else NEW_YORK
            d = a
            while d <= b:
                for k in range(rng.randint(1, 5)):
                    at = datetime.combine(d, datetime.min.time()) + timedelta(
                        hours=rng.uniform(0, 24)
                    )
                    offset = None if rng.random() < 0.5 else z
                    away[-1].append(_add(s, user_id, f"{d}-{k}", at, offset, _near(rng, where, 20)))
                d += timedelta(days=1)
        refresh_homes(s, user_id)
    batches = [[rng.choice(ids)] for ids in away] + [[a] for a in rng.sample(home, 15)]
    assert _check_window(user_id, batches) >= len(away) // 2
