"""Synthetic camera-roll libraries for bench/scale.py (and its section modules).

One owner with N ready photos over five years: 80% at home (Berlin), 10% on trips (runs of days
in six cities), 10% without GPS; every photo has metadata, a quality row with a pHash (3% are
near-duplicates or burst frames of the photo before), one or two tags, a place when located,
a stored preview (a small real JPEG from the shared roll, encrypted as camroll stores it) and a
finished analysis job. 40% have faces: 128-d embeddings around 60 people's centres (Zipf-sized,
within-person distance ~0.3, between people ~1.4, as dlib's embeddings), each with an
expression. Rows go in through Core `executemany` in chunks (encrypted fields sealed as the ORM
would), previews straight to the local store without an fsync each (the encryption is camroll's
own). Synthetic: the rows are what analysis would leave, not analysis's output; the previews
are 48 real JPEGs reused, each stored once per photo under that photo's key.

`add_batch` adds photos as a batch of analysis would leave them: rows, faces assigned to the
person they look like, and the analysis job marked done.
"""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "camera-roll"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def scratch_database(
    work: Path, label: str, backend: str, n: int
) -> tuple[Path, str, Callable[[], None]]:
    """A fresh data folder and database for one library size, and what removes both.

    Named per benchmark and process: several bench/scale*.py runs build libraries of the same
    sizes at once on a shared machine, and must not delete each other's."""
    import shutil

    data = work / f"{backend}-{n}-{os.getpid()}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    if backend == "sqlite":
        return data, f"sqlite:///{data / 'camroll.db'}", lambda: shutil.rmtree(data, True)
    import psycopg

    name = f"camroll_{label}_{n}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        from camroll.db.engine import _engine_for

        _engine_for.cache_clear()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(data, ignore_errors=True)

    return data, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", drop


SCOPES = ("cloud_processing", "faces", "places", "content", "creations")

HOME = (52.5200, 13.4050, "Berlin", "Berlin", "Germany", "DE")
TRIPS = [
    (38.7223, -9.1393, "Lisbon", "Lisbon", "Portugal", "PT"),
    (41.9028, 12.4964, "Rome", "Lazio", "Italy", "IT"),
    (48.8566, 2.3522, "Paris", "Ile-de-France", "France", "FR"),
    (51.5072, -0.1276, "London", "England", "United Kingdom", "GB"),
    (35.0116, 135.7681, "Kyoto", "Kyoto", "Japan", "JP"),
    (40.7128, -74.0060, "New York", "New York", "United States", "US"),
]
# Tag, share of photos: the ideas' themes among everyday labels.
TAGS = [
    ("dog", 0.05),
    ("cat", 0.03),
    ("beach", 0.03),
    ("mountain", 0.02),
    ("food", 0.08),
    ("party", 0.02),
    ("snow", 0.01),
    ("tree", 0.2),
    ("sky", 0.2),
    ("car", 0.1),
    ("building", 0.26),
]
N_PEOPLE = 60
PROV = {"model": "bench", "model_version": "1"}


@dataclass
class Built:
    user_id: str
    n_assets: int
    n_faces: int
    end: datetime  # the newest photo's time
    centres: np.ndarray  # people's embedding centres
    people: list[str]


def configure(data: Path, url: str) -> None:
    from camroll.config import get_settings
    from camroll.db.engine import _engine_for, _factory
    from camroll.storage import _cached

    os.environ.update(CAMROLL_DATA_DIR=str(data), CAMROLL_DATABASE_URL=url)
    for cache in (get_settings, _factory, _engine_for, _cached):
        cache.cache_clear()


def preview_pool(n: int = 48, px: int = 192) -> list[bytes]:
    """Small real JPEGs: shared-roll photos shrunk to `px`."""
    from PIL import Image, ImageOps

    out: list[bytes] = []
    for path in sorted(SHARED.rglob("*.jpg")):
        try:
            with Image.open(path) as im:
                im.draft("RGB", (px * 2, px * 2))
                im = ImageOps.exif_transpose(im).convert("RGB")
                im.thumbnail((px, px))
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=80)
        except Exception:  # the shared roll holds deliberately broken files
            continue
        out.append(buf.getvalue())
        if len(out) >= n:
            break
    if not out:
        raise SystemExit(f"no JPEGs under {SHARED}")
    return out


def _store_preview(data_key: bytes, key: str, jpeg: bytes) -> None:
    from camroll.crypto.stream import encrypt_stream
    from camroll.storage import get_store

    path = get_store()._path(key)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(encrypt_stream(data_key, key, io.BytesIO(jpeg))))


def _hash_near(h: int, rng: random.Random, bits: int) -> int:
    for b in rng.sample(range(64), bits):
        h ^= 1 << b
    return h


class _Writer:
    """Rows for one owner, inserted in bulk: one Core `executemany` per table and chunk (the
    ORM's per-object flush made the 50k library take most of an hour). Encrypted columns get
    `Sealed(value, owner)`, which their type seals exactly as an ORM flush would."""

    # Parents before children (foreign keys).
    TABLES = (
        "assets",
        "asset_metadata",
        "asset_places",
        "asset_quality",
        "asset_tags",
        "faces",
        "face_embeddings",
        "face_expressions",
        "renditions",
        "job_runs",
    )
    CHUNK = 2000  # photos per transaction

    def __init__(self, user_id: str, previews: list[bytes], rng: random.Random) -> None:
        from camroll.db.engine import session_scope
        from camroll.keyring import user_data_key

        self.user_id, self.previews, self.rng = user_id, previews, rng
        self.nprng = np.random.default_rng(rng.randrange(1 << 30))
        self.pending: dict[str, list[dict[str, object]]] = {t: [] for t in self.TABLES}
        self.photos = self.faces = 0
        self.last_hash = rng.getrandbits(64)
        with session_scope() as s:
            self.data_key = user_data_key(s, user_id)

    def flush(self) -> None:
        from sqlalchemy import insert

        from camroll.db.engine import session_scope
        from camroll.db.models import Base

        tables = Base.metadata.tables
        with session_scope() as s:
            for name in self.TABLES:
                rows = self.pending[name]
                if rows:
                    s.execute(insert(tables[name]), rows)
                    rows.clear()
        self.photos = 0

    def photo(
        self,
        when: datetime,
        where: tuple[float, float, str, str, str, str] | None,
        centres: np.ndarray,
        people: list[str],
        weights: np.ndarray,
        tags: list[tuple[str, float]] | None = None,
        faces: int | None = None,
    ) -> str:
        from camroll.crypto.fields import Sealed
        from camroll.db.models import new_id, utcnow
        from camroll.storage.blobs import blob_key

        rng, uid, rows = self.rng, self.user_id, self.pending
        now = utcnow()
        derived = {"user_id": uid, "created_at": now, **PROV}
        aid = new_id()
        rows["assets"].append(
            {
                "id": aid,
                "user_id": uid,
                "checksum": f"{rng.getrandbits(256):064x}",
                "size": 2_000_000,
                "filename": Sealed(f"IMG_{rng.randrange(10000):04d}.JPG", uid),
                "mime": "image/jpeg",
                "kind": "image",
                "status": "ready",
                "uploaded_at": now,
                "sort_at": when,
            }
        )
        lat = lon = None
        if where is not None:
            lat, lon = where[0] + rng.uniform(-0.03, 0.03), where[1] + rng.uniform(-0.03, 0.03)
        rows["asset_metadata"].append(
            {
                **derived,
                "id": new_id(),
                "asset_id": aid,
                "scope": "cloud_processing",
                "width": 4032,
                "height": 3024,
                "taken_at_local": when.replace(tzinfo=None).isoformat(),
                "tz_offset": "+00:00",
                "taken_at_utc": when,
                "latitude": Sealed(lat, uid),
                "longitude": Sealed(lon, uid),
            }
        )
        if where is not None:
            rows["asset_places"].append(
                {
                    **derived,
                    "asset_id": aid,
                    "scope": "places",
                    "city": Sealed(where[2], uid),
                    "region": Sealed(where[3], uid),
                    "country": Sealed(where[4], uid),
                    "country_code": Sealed(where[5], uid),
                    "distance_to_place_km": 1.0,
                }
            )
        # 3% copy or burst: a few bits off the previous photo's hash.
        h = (
            _hash_near(self.last_hash, rng, rng.randrange(1, 8))
            if rng.random() < 0.03
            else rng.getrandbits(64)
        )
        self.last_hash = h
        score = rng.uniform(0.2, 0.95)
        rows["asset_quality"].append(
            {
                **derived,
                "asset_id": aid,
                "scope": "content",
                "sharpness": score,
                "exposure": score,
                "score": score,
                "phash": f"{h:016x}",
                "is_best": True,
            }
        )
        if tags is None:
            tags = [
                (label, round(rng.uniform(0.35, 0.95), 3))
                for label, share in TAGS
                if rng.random() < share
            ][:2]
        for label, sc in tags:
            rows["asset_tags"].append(
                {
                    **derived,
                    "id": new_id(),
                    "asset_id": aid,
                    "scope": "content",
                    "label": label,
                    "score": sc,
                    "sources": "[]",
                }
            )
        if faces is None:
            faces = (1 + (rng.random() < 0.3)) if rng.random() < 0.4 else 0
        for _ in range(faces):
            k = int(self.nprng.choice(len(people), p=weights))
            vec = centres[k] + self.nprng.normal(0, 0.025, 128)
            fid = new_id()
            face = {**derived, "asset_id": aid, "scope": "faces"}
            rows["faces"].append(
                {
                    **face,
                    "id": fid,
                    "box_x": 0.3,
                    "box_y": 0.2,
                    "box_w": 0.25,
                    "box_h": 0.3,
                    "landmarks": "[]",
                    "score": 0.99,
                    "sharpness": rng.uniform(0.2, 1.0),
                    "usable": True,
                    "person_id": people[k],
                    "assigned_by": "auto",
                }
            )
            rows["face_embeddings"].append(
                {**face, "face_id": fid, "vector": Sealed(vec.astype("<f4").tobytes(), uid)}
            )
            smile = rng.random()
            rows["face_expressions"].append(
                {
                    **face,
                    "face_id": fid,
                    "expression": "happy" if smile > 0.5 else "neutral",
                    "smile": smile,
                    "scores": "{}",
                }
            )
        self.faces += faces
        key = blob_key(uid, aid, "preview")
        _store_preview(self.data_key, key, self.previews[rng.randrange(len(self.previews))])
        rows["renditions"].append(
            {
                **derived,
                "asset_id": aid,
                "scope": "cloud_processing",
                "kind": "preview",
                "blob_key": key,
                "mime": "image/jpeg",
                "width": 192,
                "height": 144,
            }
        )
        rows["job_runs"].append(
            {
                "user_id": uid,
                "task": "analyze",
                "subject_id": aid,
                "state": "done",
                "attempts": 1,
                "updated_at": now,
            }
        )
        self.photos += 1
        if self.photos >= self.CHUNK:
            self.flush()
        return aid


def build_library(n_assets: int, seed: int = 11) -> Built:
    """The owner and their library (no refresh run yet)."""
    from camroll.accounts import create_user
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import Person, new_id

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    with session_scope() as s:
        uid = create_user(s, f"scale-{seed}@example.org").id
        set_scopes(s, uid, dict.fromkeys(SCOPES, True), client="bench")
    centres = nprng.normal(0, 0.09, (N_PEOPLE, 128))
    weights = 1.0 / np.arange(1, N_PEOPLE + 1)
    weights /= weights.sum()
    people = [new_id() for _ in range(N_PEOPLE)]
    with session_scope() as s:
        for k, pid in enumerate(people):
            s.add(
                Person(
                    id=pid,
                    user_id=uid,
                    scope="faces",
                    name=f"Person {k}" if k < 8 else None,
                    birthday=f"{1980 + k}-{1 + k % 12:02d}-{10 + k:02d}" if k < 4 else None,
                    face_count=0,
                    **PROV,
                )
            )
    writer = _Writer(uid, preview_pool(), rng)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    start = (end - timedelta(days=5 * 365)).replace(hour=0, minute=0, second=0)
    span = (end - start).total_seconds()
    trip_left, trip_place = 0, HOME
    for i in range(n_assets):
        # Photos in waking hours (08:00-22:00 UTC), spread evenly over the days: spread round
        # the clock, 50k photos in five years leave no gap of hours anywhere (one every 53 min),
        # so the whole library would be one stream of events, as no camera roll is.
        day, secs = divmod(span * i / n_assets, 86400)
        waking = 8 * 3600 + secs * 14 / 24 + rng.uniform(0, 600)
        when = start + timedelta(days=day, seconds=waking)
        if trip_left == 0 and rng.random() < 0.1 / 60 * 5:  # trips of ~60 photos, 10% of all
            trip_left, trip_place = rng.randrange(40, 80), rng.choice(TRIPS)
        if trip_left:
            trip_left -= 1
            where = trip_place
        else:
            where = HOME if rng.random() < 0.89 else None
        writer.photo(when, where, centres, people, weights)
    writer.flush()
    return Built(uid, n_assets, writer.faces, end, centres, people)


def add_batch(
    built: Built, n: int = 20, away: bool = False, seed: int = 0, day_offset: int = 1
) -> list[str]:
    """n new photos of one day, analysed: at home (or on a trip when `away`), two dogs, a meal,
    faces of the people they look like; a finished analysis job each."""
    from sqlalchemy import select

    from camroll.db.engine import session_scope
    from camroll.db.models import Person

    rng = random.Random(seed)
    with session_scope() as s:  # people left with no faces are gone after a refresh
        alive = set(s.scalars(select(Person.id).where(Person.user_id == built.user_id)))
    keep = [k for k, pid in enumerate(built.people) if pid in alive]
    people, centres = [built.people[k] for k in keep], built.centres[keep]
    weights = 1.0 / np.arange(1, len(keep) + 1)
    weights /= weights.sum()
    writer = _Writer(built.user_id, preview_pool(8), rng)
    day = built.end + timedelta(days=day_offset)
    ids = []
    for i in range(n):
        tags = [("dog", 0.9)] if i < 2 else [("food", 0.8)] if i == 2 else None
        ids.append(
            writer.photo(
                day + timedelta(minutes=7 * i),
                TRIPS[0] if away else HOME,
                centres,
                people,
                weights,
                tags=tags,
                faces=1 if i % 3 == 0 else 0,
            )
        )
    writer.flush()
    return ids
