"""What field encryption costs per query, in one run: the same library stored with
`CAMROLL_FIELD_ENCRYPTION` on and off, and the queries that read encrypted fields timed on both.

    .venv/bin/python bench/fields.py [--assets N] [--faces F] [--repeat R] [--backend sqlite|postgresql]

The library is generated (the shared roll has too few located photos and faces to show a cost
at scale): N ready photos over two years, 80% at home and the rest on six trips, each located
photo named with a place; F faces with 128-d embeddings in 40 named people; two tags per photo.
Queries are camroll's own functions, each in a fresh session so nothing is cached in the ORM:
- search: `search.service.search` for a place name (and `library_docs` alone, the part that reads
  the encrypted places and names);
- trips: `ideas.generate.load_library` + `trip_ideas` (every photo's GPS and metadata);
- people: the People page's query (`GET /api/people`: names, birthdays) and the clustering
  input (`people.assign._usable_faces`: every face embedding).
Also the time to write the library and the database size. Prints Markdown (and writes --out).
Scratch data goes under bench/work/fields/ (gitignored).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = REPO / "bench" / "work" / "fields"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"

HOME = (37.8716, -122.2727, "Berkeley", "California", "United States", "US")
TRIPS = [
    (37.7459, -119.5332, "Yosemite Valley", "California", "United States", "US"),
    (38.5733, -109.5498, "Moab", "Utah", "United States", "US"),
    (35.2495, -112.1910, "Williams", "Arizona", "United States", "US"),
    (43.4674, 11.8851, "Arezzo", "Tuscany", "Italy", "IT"),
    (51.5007, -0.1246, "London", "England", "United Kingdom", "GB"),
    (35.6762, 139.6503, "Tokyo", "Tokyo", "Japan", "JP"),
]
TAGS = ["person", "dog", "beach", "mountain", "food", "car", "tree", "sky"]


def configure(data: Path, url: str, encrypt: bool) -> None:
    from camroll.config import get_settings
    from camroll.db.engine import _engine_for, _factory

    os.environ.update(
        CAMROLL_DATA_DIR=str(data),
        CAMROLL_DATABASE_URL=url,
        CAMROLL_FIELD_ENCRYPTION="true" if encrypt else "false",
    )
    for cache in (get_settings, _factory, _engine_for):
        cache.cache_clear()


def build(n_assets: int, n_faces: int, seed: int = 7) -> str:
    """Write the library for one user; returns the user id."""
    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.db.models import (
        Asset,
        AssetMetadata,
        AssetPlace,
        AssetTag,
        Face,
        FaceEmbedding,
        HomeLocation,
        Person,
        new_id,
    )

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    prov = {"model": "bench", "model_version": "1"}
    with session_scope() as s:
        uid = create_user(s, f"bench-{seed}@example.org").id
    start = datetime(2015, 1, 1, 12, tzinfo=UTC)
    asset_ids: list[str] = []
    batch: list[object] = []

    def flush() -> None:
        with session_scope() as s:
            s.add_all(batch)
        batch.clear()

    for i in range(n_assets):
        trip = rng.random() < 0.2
        lat, lon, city, region, country, cc = TRIPS[i % len(TRIPS)] if trip else HOME
        when = start + timedelta(days=(i * 730) // n_assets, minutes=rng.randrange(600))
        aid = new_id()
        asset_ids.append(aid)
        batch.append(
            Asset(
                id=aid,
                user_id=uid,
                checksum=f"{i:064x}",
                size=2_000_000,
                filename=f"IMG_{i:05d}.HEIC",
                device_path=f"DCIM/{100 + i // 1000}APPLE/IMG_{i:05d}.HEIC",
                mime="image/heic",
                kind="image",
                status="ready",
                sort_at=when,
            )
        )
        located = rng.random() < 0.9
        batch.append(
            AssetMetadata(
                user_id=uid,
                asset_id=aid,
                scope="cloud_processing",
                width=4032,
                height=3024,
                taken_at_local=when.replace(tzinfo=None).isoformat(),
                tz_offset="-07:00",
                taken_at_utc=when,
                latitude=lat + rng.uniform(-0.02, 0.02) if located else None,
                longitude=lon + rng.uniform(-0.02, 0.02) if located else None,
                altitude=rng.uniform(0, 900) if located else None,
                make="Apple",
                model_name="iPhone 12 Pro",
                lens="iPhone 12 Pro back triple camera 4.2mm f/1.6",
                **prov,
            )
        )
        if located:
            batch.append(
                AssetPlace(
                    user_id=uid,
                    asset_id=aid,
                    scope="places",
                    city=city,
                    subregion=None,
                    region=region,
                    country=country,
                    country_code=cc,
                    distance_to_place_km=1.0,
                    distance_from_home_km=0.0 if not trip else 300.0,
                    **prov,
                )
            )
        for label in rng.sample(TAGS, 2):
            batch.append(
                AssetTag(
                    user_id=uid,
                    asset_id=aid,
                    scope="content",
                    label=label,
                    score=0.8,
                    sources="[]",
                    **prov,
                )
            )
        if len(batch) >= 2000:
            flush()
    batch.append(
        HomeLocation(
            user_id=uid,
            scope="places",
            latitude=HOME[0],
            longitude=HOME[1],
            label="Berkeley",
            days=300,
            photos=n_assets,
            share=0.8,
            **prov,
        )
    )
    flush()
    people = [
        Person(
            id=new_id(),
            user_id=uid,
            scope="faces",
            name=f"Person {k}",
            birthday=f"19{60 + k}-0{1 + k % 9}-1{k % 9}",
            face_count=n_faces // 40,
            **prov,
        )
        for k in range(40)
    ]
    with session_scope() as s:
        s.add_all(people)
    for j in range(n_faces):
        fid = new_id()
        aid = asset_ids[rng.randrange(len(asset_ids))]
        vec = nprng.standard_normal(128).astype("<f4")
        batch.append(
            Face(
                id=fid,
                user_id=uid,
                asset_id=aid,
                scope="faces",
                box_x=0.1,
                box_y=0.1,
                box_w=0.2,
                box_h=0.2,
                landmarks="[]",
                score=0.99,
                usable=True,
                person_id=people[j % 40].id,
                **prov,
            )
        )
        batch.append(
            FaceEmbedding(
                face_id=fid, user_id=uid, asset_id=aid, scope="faces", vector=vec.tobytes(), **prov
            )
        )
        if len(batch) >= 2000:
            flush()
    flush()
    from camroll.search.index import index_missing

    with session_scope() as s:  # the search index an analysed library has (else no hits)
        index_missing(s, uid)
    return uid


PER_HIT = -1  # a row count of PER_HIT * k: k rows per hit the query found


def queries(uid: str, n_assets: int, n_faces: int) -> dict[str, tuple[Callable[..., int], int]]:
    """Each query (given a session) with the number of rows it reads that hold encrypted
    fields."""
    from sqlalchemy import select

    from camroll.db.models import Person
    from camroll.ideas.generate import load_library, trip_ideas
    from camroll.people.assign import _usable_faces
    from camroll.search.service import library_docs, search

    def people_page(s) -> int:  # type: ignore[no-untyped-def]
        rows = list(s.scalars(select(Person).where(Person.user_id == uid)))
        rows.sort(key=lambda p: (p.name is None, -p.face_count, p.name or ""))
        return len(rows)

    return {
        # Ranked in the blind-token index; only the hits' documents are read and decrypted.
        "search 'Moab' (search.service.search)": (
            lambda s: len(search(s, uid, "Moab")),
            PER_HIT * 2,
        ),
        "search documents only (library_docs)": (
            lambda s: len(library_docs(s, uid)),
            2 * n_assets,
        ),
        "trips (load_library + trip_ideas)": (
            lambda s: len(trip_ideas(s, load_library(s, uid), uid)),
            3 * n_assets,
        ),
        "people page (GET /api/people query)": (people_page, 40),
        "face embeddings (clustering input)": (lambda s: len(_usable_faces(s, uid)), n_faces),
    }


@dataclass
class Side:
    """One library: its database, its owner and what building it cost."""

    url: str
    uid: str
    write_s: float
    size_mib: float
    factory: Any = None
    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    result: dict[str, int] = field(default_factory=dict)


def run_once(side: Side, key: str, fn: Callable[..., int]) -> None:
    """One query in a fresh session; wall time, and this thread's CPU time (the machine is
    shared: CPU time is what the query itself spent, wall time includes waiting for a core;
    the thread's, because torch's idle worker threads spin after a search and bill the process)."""
    gc.collect()
    gc.disable()  # as timeit does: a collection landing in one run doubled it
    try:
        with side.factory() as s:
            w, c = time.perf_counter(), time.thread_time()
            n = fn(s)
            side.wall.setdefault(key, []).append(time.perf_counter() - w)
            side.cpu.setdefault(key, []).append(time.thread_time() - c)
            side.result[key] = n
    finally:
        gc.enable()


def make_side(backend: str, encrypt: bool, n_assets: int, n_faces: int) -> Side:
    from sqlalchemy import text

    from camroll.db.engine import get_engine
    from camroll.db.migrate import upgrade

    data = WORK / ("on" if encrypt else "off")
    data.mkdir()
    if backend == "sqlite":
        url = f"sqlite:///{data / 'camroll.db'}"
    else:
        import psycopg

        name = f"camroll_bench_fields_{'on' if encrypt else 'off'}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    configure(data, url, encrypt)
    upgrade()
    t = time.perf_counter()
    uid = build(n_assets, n_faces)
    write_s = time.perf_counter() - t
    if backend == "sqlite":
        with get_engine().connect() as c:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = sum(p.stat().st_size for p in data.glob("camroll.db*"))
    else:
        with get_engine().connect() as c:
            size = c.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0
    return Side(url, uid, write_s, size / 2**20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, default=5000)
    ap.add_argument("--faces", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--out", type=Path, default=WORK / "fields.md")
    args = ap.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    from sqlalchemy.orm import sessionmaker

    from camroll.db.engine import make_engine

    # Plaintext first, then encrypted: the settings end up on the encrypted library, whose
    # owner's key is then also the one a key-cache miss would look up.
    off = make_side(args.backend, False, args.assets, args.faces)
    on = make_side(args.backend, True, args.assets, args.faces)
    for side in (on, off):
        side.factory = sessionmaker(bind=make_engine(side.url), expire_on_commit=False)
    qs = {side.uid: queries(side.uid, args.assets, args.faces) for side in (on, off)}
    keys = list(qs[on.uid])
    # Interleaved: each repeat runs every query on both libraries back to back, so both see
    # the same load on a shared machine. The first round warms models, caches and pages.
    for r in range(args.repeat + 1):
        for key in keys:
            for side in (on, off) if r % 2 else (off, on):
                run_once(side, key, qs[side.uid][key][0])
    for side in (on, off):
        for d in (side.wall, side.cpu):
            for key in d:
                d[key] = d[key][1:]

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    med = statistics.median
    lines = [
        f"## Field encryption: cost per query ({args.backend})",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {commit}; "
        f"{os.cpu_count()} CPUs; Python {platform.python_version()}; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- command: `.venv/bin/python bench/fields.py --assets {args.assets} --faces "
        f"{args.faces} --repeat {args.repeat} --backend {args.backend}`",
        f"- library: {args.assets} photos (90% located), {args.faces} faces with embeddings, "
        "40 named people; each query in a fresh session; median of the repeats, on and off "
        "interleaved, after one warm round, garbage collection off while timing. CPU = the "
        "querying thread's CPU time (on PostgreSQL the server's is not in it).",
        "",
        "| query | result | rows read (approx.) | encrypted: CPU | plaintext: CPU | ratio "
        "| extra CPU per row | encrypted: wall | plaintext: wall | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in keys:
        rows = qs[on.uid][key][1]
        if rows < 0:  # so many rows per hit found
            rows = -rows * max(on.result[key], 1)
        c_on, c_off = med(on.cpu[key]), med(off.cpu[key])
        w_on, w_off = med(on.wall[key]), med(off.wall[key])
        lines.append(
            f"| {key} | {on.result[key]} | {rows} | {c_on * 1000:.1f} ms | {c_off * 1000:.1f} ms "
            f"| {c_on / c_off:.2f}x | {(c_on - c_off) / rows * 1e6:.1f} µs "
            f"| {w_on * 1000:.1f} ms | {w_off * 1000:.1f} ms | {w_on / w_off:.2f}x |"
        )
    lines += [
        "",
        f"Writing the library: {on.write_s:.2f} s encrypted, {off.write_s:.2f} s plaintext (wall). "
        f"Database size: {on.size_mib:.1f} MiB encrypted, {off.size_mib:.1f} MiB plaintext.",
        "",
    ]
    text_out = "\n".join(lines)
    print(text_out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text_out)


if __name__ == "__main__":
    main()
