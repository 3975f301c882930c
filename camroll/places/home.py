"""Where the owner lives: the place(s) where photos are taken on the most different days, and
home periods: where the owner lived when (`infer_home_periods`).

Counting days, not photos, is the point: one busy day at a wedding or in Yosemite yields hundreds
of photos, while home yields a few photos on many ordinary days. Trips and "far from home" ideas
are measured from these homes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise
from typing import overload

import numpy as np
from scipy.spatial import cKDTree

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)

# A home is the area within this radius of its centre: a town or a city district, not a street.
HOME_RADIUS_KM = 3.0
# Points are first pooled into grid cells about this wide, so the clustering cost scales with the
# number of distinct places, not the number of photos.
_CELL_KM = 0.5
# A home needs photos on at least this many days, and at least this share of all photo days.
MIN_HOME_DAYS = 3
MIN_HOME_SHARE = 0.15


@dataclass(frozen=True)
class GeoPoint:
    latitude: float
    longitude: float
    local_date: date | None = None
    local_hour: int | None = None  # wall-clock hour, when known: night shots say where one slept


@dataclass(frozen=True)
class Home:
    latitude: float
    longitude: float
    days: int  # distinct days with photos within HOME_RADIUS_KM
    photos: int
    share: float  # days / all distinct days with GPS photos


@overload
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def haversine_km(
    lat1: float | np.ndarray, lon1: float | np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray: ...
def haversine_km(lat1, lon1, lat2, lon2):  # type: ignore[no-untyped-def]
    """Great-circle distance in km; any argument may be a numpy array (then so is the result)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return haversine_km(a[0], a[1], b[0], b[1])


def _valid(lat: float, lon: float) -> bool:
    return (
        math.isfinite(lat)
        and math.isfinite(lon)
        and abs(lat) <= 90
        and abs(lon) <= 180
        and not (abs(lat) < 1e-6 and abs(lon) < 1e-6)  # (0, 0): GPS missing, not the Gulf of Guinea
    )


def distance_from_home(lat: float, lon: float, homes: list[Home]) -> float | None:
    """Kilometres to the nearest home; None when there is no home or the point is not real."""
    if not homes or not _valid(lat, lon):
        return None
    return min(haversine_km(lat, lon, h.latitude, h.longitude) for h in homes)


@dataclass
class _Cell:
    lat_sum: float = 0.0
    lon_sum: float = 0.0
    photos: int = 0
    days: set[int] = field(default_factory=set)


def _cells(points: list[GeoPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[set[int]]]:
    """Pool points into ~_CELL_KM grid cells: centroid, photo count and the set of day ordinals."""
    dlat = _CELL_KM / 111.2
    cells: dict[tuple[int, int], _Cell] = defaultdict(_Cell)
    for p in points:
        lat, lon = float(p.latitude), float(p.longitude)
        if not _valid(lat, lon):
            continue
        row = math.floor(lat / dlat)
        # Cells keep their width in km away from the equator: fewer degrees of longitude per cell.
        dlon = dlat / max(math.cos(math.radians(row * dlat)), 0.01)
        c = cells[(row, math.floor(lon / dlon))]
        c.lat_sum += lat
        c.lon_sum += lon
        c.photos += 1
        if p.local_date is not None:
            c.days.add(p.local_date.toordinal())
    vals = list(cells.values())
    lat = np.array([c.lat_sum / c.photos for c in vals])
    lon = np.array([c.lon_sum / c.photos for c in vals])
    photos = np.array([c.photos for c in vals])
    return lat, lon, photos, [c.days for c in vals]


def unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """Points on the unit sphere: straight-line (chord) order there is great-circle order."""
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def infer_homes(points: list[GeoPoint], max_homes: int = 2) -> list[Home]:
    """Up to max_homes homes, most days first; [] when no place is visited on enough days.

    Leader clustering on grid cells: seeds are taken in falling order of the days seen within
    HOME_RADIUS_KM of them; each gathers the unclaimed cells within that radius, re-centres on them
    (a few mean-shift steps, so a seed on the edge of town moves to its middle), and claims them.
    """
    if max_homes <= 0:
        return []
    lat, lon, photos, day_sets = _cells(points)
    if len(lat) == 0:
        return []
    all_days = set().union(*day_sets)
    # Without any dates, photo counts are the only signal left.
    by_days = bool(all_days)
    weight = np.array([len(d) for d in day_sets]) if by_days else photos
    total = len(all_days) if by_days else int(photos.sum())

    # Summed cell weights within the radius bound a cluster's distinct days from above, so seeds are
    # tried in that order and the search stops once even the bound is too small to be a home.
    tree = cKDTree(unit_vectors(lat, lon))
    chord = 2 * math.sin(HOME_RADIUS_KM / (2 * EARTH_RADIUS_KM))
    bound = np.array([weight[n].sum() for n in tree.query_ball_point(tree.data, chord)])
    floor = max(MIN_HOME_DAYS, MIN_HOME_SHARE * total)

    claimed = np.zeros(len(lat), dtype=bool)
    homes: list[Home] = []
    for seed in np.argsort(-bound, kind="stable"):
        if len(homes) >= max_homes or bound[seed] < floor:
            break
        if claimed[seed]:
            continue
        c_lat, c_lon = float(lat[seed]), float(lon[seed])
        for _ in range(3):
            member = ~claimed & (haversine_km(c_lat, c_lon, lat, lon) <= HOME_RADIUS_KM)
            w = np.maximum(weight[member], 1e-9)
            c_lat = float(np.average(lat[member], weights=w))
            c_lon = float(np.average(lon[member], weights=w))
        member = ~claimed & (haversine_km(c_lat, c_lon, lat, lon) <= HOME_RADIUS_KM)
        member[seed] = True  # the seed is always claimed, so every pass makes progress
        claimed |= member
        idx = np.flatnonzero(member)
        n_photos = int(photos[idx].sum())
        n_days = len(set().union(*(day_sets[i] for i in idx))) if by_days else n_photos
        share = n_days / total
        if n_days < MIN_HOME_DAYS or share < MIN_HOME_SHARE:
            continue
        # The fringe of a home already found (a suburb 4 km out) is not a second home.
        if any(
            haversine_km(c_lat, c_lon, h.latitude, h.longitude) < 2 * HOME_RADIUS_KM for h in homes
        ):
            continue
        homes.append(
            Home(
                latitude=round(c_lat, 5),
                longitude=round(c_lon, 5),
                days=n_days,
                photos=n_photos,
                share=round(share, 4),
            )
        )
    return homes


# -- home periods --------------------------------------------------------------------------------

# Places closer than this are one place for living there: a metro area, the same radius as a
# trip's "at home" (camroll.moments.trips.AT_HOME_KM).
PERIOD_PLACE_KM = 25.0
# Staying in one place for more than about three weeks is living there, not a trip.
MIN_PERIOD_SPAN_DAYS = 21
# A home period holds at least this many photo days, and this share of all photo days (nights)
# within its span: a place visited every other weekend is a trip destination, not a home.
MIN_PERIOD_DAYS = 3
MIN_PERIOD_SHARE = 0.3
# Within one stay, photo days at the place may be this far apart (an owner who rarely shoots at
# home); a longer silence ends the stay, as nothing says the owner still lived there.
MAX_PERIOD_SILENCE_DAYS = 60
# Photos taken in the late evening or early morning show where the owner slept: they weigh more
# when choosing a day's place.
NIGHT_HOURS = frozenset({20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7})
NIGHT_WEIGHT = 3.0


@dataclass(frozen=True)
class HomePeriod:
    """Where the owner lived from `start` to `end` (local dates of the first and last photo day
    there). Periods of different places may overlap (two homes at once)."""

    latitude: float
    longitude: float
    start: date
    end: date
    days: int  # photo days at this place within the period
    share: float  # days / all photo days within the period

    def home(self) -> Home:
        return Home(self.latitude, self.longitude, self.days, 0, self.share)


def _day_places(points: list[GeoPoint]) -> dict[date, tuple[float, float]]:
    """One place per photo day: the ~_CELL_KM cell with the most weight that day (night shots
    weigh NIGHT_WEIGHT), at the mean of its points."""
    by_day: dict[date, dict[tuple[int, int], list[float]]] = defaultdict(dict)
    dlat = _CELL_KM / 111.2
    for p in points:
        if p.local_date is None or not _valid(p.latitude, p.longitude):
            continue
        row = math.floor(p.latitude / dlat)
        dlon = dlat / max(math.cos(math.radians(row * dlat)), 0.01)
        key = (row, math.floor(p.longitude / dlon))
        w = NIGHT_WEIGHT if p.local_hour in NIGHT_HOURS else 1.0
        acc = by_day[p.local_date].setdefault(key, [0.0, 0.0, 0.0, 0.0])
        acc[0] += w
        acc[1] += p.latitude
        acc[2] += p.longitude
        acc[3] += 1
    out: dict[date, tuple[float, float]] = {}
    for day, cells in by_day.items():
        w, lat, lon, n = max(cells.values(), key=lambda a: a[0])
        out[day] = (lat / n, lon / n)
    return out


def _place_of_days(day_places: dict[date, tuple[float, float]]) -> dict[date, int]:
    """Day -> place index: leader clustering of the day places within PERIOD_PLACE_KM, seeds in
    falling order of the days near them (the most lived-in places first)."""
    days = sorted(day_places)
    if not days:
        return {}
    lat = np.array([day_places[d][0] for d in days])
    lon = np.array([day_places[d][1] for d in days])
    tree = cKDTree(unit_vectors(lat, lon))
    chord = 2 * math.sin(PERIOD_PLACE_KM / (2 * EARTH_RADIUS_KM))
    near = tree.query_ball_point(tree.data, chord)
    label = np.full(len(days), -1)
    place = 0
    for seed in sorted(range(len(days)), key=lambda i: (-len(near[i]), i)):
        if label[seed] >= 0:
            continue
        member = (label < 0) & (haversine_km(lat[seed], lon[seed], lat, lon) <= PERIOD_PLACE_KM)
        label[member] = place
        place += 1
    return {d: int(label[i]) for i, d in enumerate(days)}


def _runs(days: list[date], max_gap: int) -> list[list[date]]:
    runs: list[list[date]] = []
    for d in days:
        if runs and (d - runs[-1][-1]).days <= max_gap:
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def infer_home_periods(points: list[GeoPoint]) -> list[HomePeriod]:
    """Home periods in time order: stays in one place (within PERIOD_PLACE_KM) that span more
    than MIN_PERIOD_SPAN_DAYS and hold at least MIN_PERIOD_SHARE of the photo days in their span.

    Each day is placed where its photos were (night shots weigh more). A place's photo days form
    one stay until a silence of MAX_PERIOD_SILENCE_DAYS, or until the owner lived somewhere else
    in between (another place's long stay lies within the gap): three months in A, four in B and
    back to A are three periods, while a fortnight's holiday from A leaves A's period whole.
    """
    day_places = _day_places(points)
    label = _place_of_days(day_places)
    all_days = sorted(label)
    by_place: dict[int, list[date]] = defaultdict(list)
    for d in all_days:
        by_place[label[d]].append(d)

    def share(run: list[date]) -> float:
        inside = sum(1 for d in all_days if run[0] <= d <= run[-1])
        return len(run) / inside

    def long_stay(run: list[date]) -> bool:
        return (
            (run[-1] - run[0]).days + 1 > MIN_PERIOD_SPAN_DAYS
            and len(run) >= MIN_PERIOD_DAYS
            and share(run) >= MIN_PERIOD_SHARE
        )

    stays = {p: _runs(ds, MAX_PERIOD_SILENCE_DAYS) for p, ds in by_place.items()}
    long_stays = [(p, r) for p, runs in stays.items() for r in runs if long_stay(r)]

    periods: list[HomePeriod] = []
    for p, run in long_stays:
        # Cut the stay where the owner lived elsewhere in between.
        pieces: list[list[date]] = [[run[0]]]
        for a, b in pairwise(run):
            if any(q != p and a < other[0] and other[-1] < b for q, other in long_stays):
                pieces.append([b])
            else:
                pieces[-1].append(b)
        for piece in pieces:
            # A piece of a long stay keeps being home even when short (back for a fortnight
            # before the roll ends), as long as it is where the owner mostly slept.
            if len(piece) < MIN_PERIOD_DAYS or share(piece) < MIN_PERIOD_SHARE:
                continue
            pts = [day_places[d] for d in piece]
            periods.append(
                HomePeriod(
                    latitude=round(float(np.mean([q[0] for q in pts])), 5),
                    longitude=round(float(np.mean([q[1] for q in pts])), 5),
                    start=piece[0],
                    end=piece[-1],
                    days=len(piece),
                    share=round(share(piece), 4),
                )
            )
    return sorted(periods, key=lambda h: (h.start, h.end))


def homes_on(periods: list[HomePeriod], day: date | None) -> list[Home]:
    """The homes in force on a day: the periods covering it; else (before, between or after
    periods, e.g. while moving) the nearest period before and the nearest after."""
    if not periods:
        return []
    if day is None:
        return [p.home() for p in periods]
    covering = [p.home() for p in periods if p.start <= day <= p.end]
    if covering:
        return covering
    before = [p for p in periods if p.end < day]
    after = [p for p in periods if p.start > day]
    out = []
    if before:
        out.append(max(before, key=lambda p: p.end).home())
    if after:
        out.append(min(after, key=lambda p: p.start).home())
    return out
