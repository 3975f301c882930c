"""Faces at scale: placing new faces and the full recluster on synthetic libraries of 10k and
100k faces, the new path beside the old one in the same run.

    .venv/bin/python bench/scale_faces.py [--faces 10000,100000] [--backends sqlite,postgresql]
                                          [--arrivals 10] [--old-timeout 900] [--out FILE]

Faces (`synthetic_faces`): 128-d like dlib's, in n/40 people of Zipf-like sizes (at 100k the
commonest person is in 16,667 photos, the long tail in one or two), faces of one person 0.42
apart at the median (0.30-0.54 from 5th to 95th percentile; the shared labelled sets measure
0.29-0.51), people 0.9 apart, one person in five a look-alike of another; a quarter of the
photos hold 2-4 faces of different people (cannot-link).

- recluster: `camroll.people.cluster.recluster` (k-NN graph above 8,192 faces, sparse
  agglomeration of components above 4,096) against the old path kept here (`old_recluster`:
  components from every pair, each clustered on its dense matrix). Each runs in its own
  process: wall and CPU time, peak RSS (the process's ru_maxrss, interpreter and faces included)
  and pairwise P/R/F1 against the synthetic identities. The old one is stopped after
  --old-timeout seconds.
- assignment: the library stored in the database (one owner, people = identities, embeddings
  encrypted as always), then --arrivals new photos of one face each arrive and are placed as
  the analysis job places them: `assign_new_faces` (per-owner faiss index; its first build
  from the database is timed apart) against the old function (`old_assign_new_faces`: every
  face loaded and decrypted, `assign_batch` over the library). Per face: median and max.

Also called by bench/scale.py (`main(argv)`; its --sizes count photos and are ignored here).
Scratch data under bench/work/scale_faces/ (gitignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = REPO / "bench" / "work" / "scale_faces"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def synthetic_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(embeddings n x 128 float32, identity per face, photo per face); see the docstring."""
    rng = np.random.default_rng(seed)
    people = max(2, n // 40)
    weight = 1.0 / np.arange(1, people + 1) ** 1.1
    sizes = np.maximum(1, np.round(weight / weight.sum() * n)).astype(int)
    while sizes.sum() > n:
        sizes[np.argmax(sizes)] -= 1
    sizes[0] += n - sizes.sum()
    centres = rng.normal(0, 0.056, (people, 128))
    for i in rng.choice(np.arange(1, people), people // 5, replace=False):
        centres[i] = centres[rng.integers(people)] + rng.normal(0, 0.035, 128)
    ident = np.repeat(np.arange(people), sizes)
    rng.shuffle(ident)
    spread = rng.uniform(0.8, 1.2, people)[ident] * rng.uniform(0.75, 1.35, n)
    emb = (centres[ident] + rng.normal(0, 0.024, (n, 128)) * spread[:, None]).astype(np.float32)
    photos: list[str] = []
    photo, room, held = 0, 0, set()
    for i in range(n):
        if room == 0 or ident[i] in held:
            photo, room, held = (
                photo + 1,
                1 if rng.random() < 0.75 else int(rng.integers(2, 5)),
                set(),
            )
        photos.append(f"p{photo}")
        held.add(int(ident[i]))
        room -= 1
    return emb, ident, photos


def old_recluster(faces: list, threshold: float | None = None) -> dict[str, str]:
    """The recluster before the k-NN graph: components from every pair (n^2 / 2 distances),
    each clustered on its dense k x k matrix."""
    from camroll.people.cluster import (
        FRESH_PREFIX,
        THRESHOLD,
        _cluster_component,
        _components,
        _matrix,
    )

    t = THRESHOLD if threshold is None else threshold
    emb = _matrix(faces)
    by_comp: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(_components(emb, faces, t)):
        by_comp[int(c)].append(i)
    labels: dict[str, str] = {}
    fresh = 0
    for idx in sorted(by_comp.values(), key=lambda ix: ix[0]):
        sub = [faces[i] for i in idx]
        for group in _cluster_component(emb[idx], sub, t):
            lock = next((sub[i].locked_person for i in group if sub[i].locked_person), None)
            if lock is None:
                lock, fresh = f"{FRESH_PREFIX}{fresh}", fresh + 1
            for i in group:
                labels[sub[i].face_id] = lock
    return labels


def old_assign_new_faces(session, user_id: str, face_ids: list[str]) -> None:  # type: ignore[no-untyped-def]
    """`assign_new_faces` before the index: every usable face loaded (and decrypted) for each
    photo, then `assign_batch` over the whole library."""
    from camroll.people.assign import _lock_user, _usable_faces, _vec, apply_labels
    from camroll.people.cluster import assign_batch

    with _lock_user(session, user_id):
        rows = _usable_faces(session, user_id)
        by_id = {f.id: f for f, _ in rows}
        wanted = set(face_ids)
        current = {f.id: f.person_id for f, _ in rows if f.person_id and f.id not in wanted}
        labels = assign_batch([_vec(f, v) for f, v in rows], current, face_ids)
        apply_labels(session, user_id, labels, by_id)


# --- recluster, one process per run --------------------------------------------------------


def _recluster_child(n: int, which: str) -> None:
    from bench.labelled_faces import pairwise_scores
    from camroll.people.cluster import FaceVec, recluster

    emb, ident, photos = synthetic_faces(n)
    faces = [FaceVec(f"f{i}", photos[i], emb[i]) for i in range(n)]
    truth = {f"f{i}": str(ident[i]) for i in range(n)}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    w, c = time.perf_counter(), time.process_time()
    labels = (recluster if which == "new" else old_recluster)(faces)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    s = pairwise_scores(truth, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "wall": wall,
                "cpu": cpu,
                "peak_mib": peak / 1024,
                "before_mib": base / 1024,
                "p": s.precision,
                "r": s.recall,
                "f1": s.f1,
                "people": s.people_found,
                "true": s.people_true,
            }
        )
    )


def run_recluster(n: int, which: str, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child-recluster", which, "--faces", str(n)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    except subprocess.CalledProcessError as e:
        return {"error": e.stderr.strip().splitlines()[-1] if e.stderr else str(e)}
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- assignment in the database -------------------------------------------------------------


def _configure(data: Path, url: str) -> None:
    from camroll.config import get_settings
    from camroll.db.engine import _engine_for, _factory
    from camroll.storage import _cached

    os.environ.update(CAMROLL_DATA_DIR=str(data), CAMROLL_DATABASE_URL=url)
    for cache in (get_settings, _factory, _engine_for, _cached):
        cache.cache_clear()


def _database(backend: str, n: int) -> str:
    data = WORK / f"{backend}-{n}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    if backend == "sqlite":
        url = f"sqlite:///{data / 'camroll.db'}"
    else:
        import psycopg

        name = f"camroll_scale_faces_{n}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    _configure(data, url)
    from camroll.db.migrate import upgrade

    upgrade()
    return url


PROV = {"scope": "faces", "model": "bench", "model_version": "1"}


def _store(user_id: str, emb: np.ndarray, photos: list[str], person: list[str | None]) -> list[str]:
    """Rows for faces as analysis leaves them (asset, face, encrypted embedding); face ids."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, Face, FaceEmbedding, new_id

    ids: list[str] = []
    asset_of: dict[str, str] = {}
    batch: list[object] = []
    for i, photo in enumerate(photos):
        if photo not in asset_of:
            asset_of[photo] = new_id()
            asset = Asset(
                id=asset_of[photo], user_id=user_id, checksum=new_id() * 2, size=1, filename="x"
            )
            asset.status, asset.kind = "ready", "image"
            batch.append(asset)
        fid = new_id()
        ids.append(fid)
        common = {"user_id": user_id, "asset_id": asset_of[photo], **PROV}
        batch.append(
            Face(
                id=fid,
                box_x=0.1,
                box_y=0.1,
                box_w=0.2,
                box_h=0.2,
                landmarks="[]",
                score=0.99,
                sharpness=100.0,
                usable=True,
                person_id=person[i],
                **common,
            )
        )
        batch.append(FaceEmbedding(face_id=fid, vector=emb[i].astype("<f4").tobytes(), **common))
        if len(batch) >= 3000:
            with session_scope() as s:
                s.add_all(batch[: len(batch)])
            batch.clear()
    if batch:
        with session_scope() as s:
            s.add_all(batch)
    return ids


def _library(n: int, arrivals: int) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """An owner whose n faces are placed in people (their identities); the arriving faces."""
    from sqlalchemy import select

    from camroll.accounts import create_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Face, Person, new_id

    emb, ident, photos = synthetic_faces(n + arrivals, seed=1)
    with session_scope() as s:
        user_id = create_user(s, f"faces-{n}@example.org").id
    ids = {int(i): new_id() for i in np.unique(ident[:n])}
    with session_scope() as s:
        s.add_all(Person(id=pid, user_id=user_id, face_count=0, **PROV) for pid in ids.values())
    face_ids = _store(user_id, emb[:n], photos[:n], [ids[int(i)] for i in ident[:n]])
    # Counts and covers as the people refresh leaves them (every box is alike: the cover is
    # the smallest face id), so placing a face sees a library in its usual state.
    count: dict[str, int] = defaultdict(int)
    cover: dict[str, str] = {}
    for fid, i in zip(face_ids, ident[:n], strict=True):
        pid = ids[int(i)]
        count[pid] += 1
        cover[pid] = min(cover.get(pid, fid), fid)
    with session_scope() as s:
        asset_of = dict(
            s.execute(select(Face.id, Face.asset_id).where(Face.id.in_(cover.values()))).all()
        )
        for pid, fid in cover.items():
            p = s.get(Person, pid)
            p.face_count, p.cover_face_id, p.asset_id = count[pid], fid, asset_of[fid]
    return user_id, [(emb[n + j], f"new{j}") for j in range(arrivals)]


def run_assign(
    backend: str, n: int, arrivals: int, paths: tuple[str, ...] = ("new", "old")
) -> dict:
    from camroll.db.engine import session_scope
    from camroll.people.assign import assign_new_faces
    from camroll.vectors.index import INDEXES

    _database(backend, n)
    t = time.perf_counter()
    user_id, new = _library(n, 2 * arrivals)
    out: dict = {"build_s": time.perf_counter() - t}
    INDEXES.clear()
    with session_scope() as s:
        t = time.perf_counter()
        from camroll.people.assign import face_index

        face_index(s, user_id)
        out["index_build_s"] = time.perf_counter() - t
    for name, fn, faces in (
        ("new", assign_new_faces, new[:arrivals]),
        ("old", old_assign_new_faces, new[arrivals:]),
    ):
        if name not in paths:
            continue
        times, cpu = [], []
        for vec, photo in faces:
            (fid,) = _store(user_id, vec[None, :], [photo], [None])
            t, c = time.perf_counter(), time.process_time()
            with session_scope() as s:
                fn(s, user_id, [fid])
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[name], out[f"{name}_cpu"] = times, cpu
    return out


# --- report ---------------------------------------------------------------------------------


def _fmt_recluster(r: dict) -> str:
    if "timeout" in r:
        return f"not done in {r['timeout']:.0f} s | | | "
    if "error" in r:
        return f"failed: {r['error']} | | | "
    return (
        f"{r['wall']:.1f} | {r['cpu']:.1f} | {r['peak_mib']:.0f} | "
        f"{r['p']:.3f} / {r['r']:.3f} / {r['f1']:.3f} ({r['people']}/{r['true']})"
    )


def _ms(r: dict, med: dict, k: str, pick: str) -> str:
    w = med[k] if pick == "median" else max(r[k])
    c = med[f"{k}_cpu"] if pick == "median" else max(r[f"{k}_cpu"])
    return f"{w * 1e3:.0f} ({c * 1e3:.0f})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", default="10000,100000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--arrivals", type=int, default=10)
    ap.add_argument("--old-timeout", type=float, default=900.0)
    ap.add_argument("--skip", default="", help="recluster,assign: sections to leave out")
    ap.add_argument("--paths", default="new,old", help="placement paths to time: new,old")
    ap.add_argument("--child-recluster", choices=["new", "old"])
    ap.add_argument("--out", type=Path)
    args, _ = ap.parse_known_args(argv)
    sizes = [int(x) for x in args.faces.split(",")]
    if args.child_recluster:
        _recluster_child(sizes[0], args.child_recluster)
        return
    skip = set(args.skip.split(","))
    load = os.getloadavg()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    lines = [
        "## Faces at scale (bench/scale_faces.py)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at start {load[0]:.1f} (shared machine).",
        "",
    ]
    if "recluster" not in skip:
        lines += [
            "### Full recluster (in memory, one process each)",
            "",
            "| faces | path | wall s | CPU s | peak RSS MiB | P / R / F1 (people found/true) |",
            "|---:|---|---:|---:|---:|---|",
        ]
        for n in sizes:
            for which in ("new", "old"):
                print(f"recluster {which} {n:,} ...", file=sys.stderr, flush=True)
                r = run_recluster(n, which, args.old_timeout if which == "old" else 3600)
                print(r, file=sys.stderr, flush=True)
                lines.append(f"| {n:,} | {which} | {_fmt_recluster(r)} |")
        lines.append("")
    if "assign" not in skip:
        lines += [
            f"### Placing a new face ({args.arrivals} photos of one face, in the database)",
            "",
            "Per face: wall ms (this process's CPU ms), median and max; the ratio of medians.",
            "",
            "| backend | faces | library write s | index build s | new: median | max "
            "| old: median | max | old / new wall (CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for backend in args.backends.split(","):
            for n in sizes:
                print(f"assign {backend} {n:,} ...", file=sys.stderr, flush=True)
                r = run_assign(backend, n, args.arrivals, tuple(args.paths.split(",")))
                print(r, file=sys.stderr, flush=True)
                med = {k: statistics.median(v) for k, v in r.items() if isinstance(v, list)}
                ms = partial(_ms, r, med)
                old = (
                    f"{ms('old', 'median')} | {ms('old', 'max')} | {med['old'] / med['new']:.1f}x "
                    f"({med['old_cpu'] / med['new_cpu']:.1f}x)"
                    if "old" in r
                    else "| |"
                )
                lines.append(
                    f"| {backend} | {n:,} | {r['build_s']:.0f} | {r['index_build_s']:.2f} | "
                    f"{ms('new', 'median')} | {ms('new', 'max')} | {old} |"
                )
        lines.append("")
    end = os.getloadavg()
    lines.append(f"Load average at the end: {end[0]:.1f}.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
