"""Where the owner lives: the place(s) where photos are taken on the most different days.

Counting days, not photos, is the point: one busy day at a wedding or in Yosemite yields hundreds
of photos, while home yields a few photos on many ordinary days. Trips and "far from home" ideas
are measured from these homes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
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
