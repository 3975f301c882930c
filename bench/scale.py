"""Scale: what one batch of new photos costs as the library grows, old path beside new.

    .venv/bin/python bench/scale.py [--sizes 1000,10000,50000] [--backends sqlite,postgresql]
                                    [--repeat 3] [--only batch,faces,search] [--out FILE]
                                    [--no-extras]

Sections (each also runnable alone with --only):
- batch (here): on a synthetic library (bench/scale_data.py) of each size, after the full pass
  that follows ingest, a batch of 20 new photos from one day at home (two dogs, a meal, faces of
  known people) costs the library refresh (near-duplicates, places, people) plus the ideas pass.
  New path: `analyze.library.refresh_library` + `ideas.generate.refresh_ideas` as the jobs run
  them (incremental). Old path: the same work as it was before (bench/old_library.py, whole
  library each time). Each repeat adds a fresh batch for each path, so both render what their
  batch changed. Also: one batch away from home (trips recomputed: the case that still reads the
  whole library), and the idea refresh on its own: a full pass and a batch pass, time and peak
  Python memory (tracemalloc, in a second call) beside the old pass (`--no-extras` skips
  these three). Every timing is wall and CPU seconds of this process, with the load average
  before and after the batches (the machine is shared).
- index (only when asked): the near-duplicate lookup alone, a band index against HashIndex.
- faces, search: bench/scale_faces.py and bench/scale_search.py when present (their owners'),
  each called as `main(argv)` with the same arguments.

Prints Markdown (and writes --out). Scratch data under bench/work/scale/ (gitignored).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORK = REPO / "bench" / "work" / "scale"
SECTIONS = {"faces": "bench.scale_faces", "search": "bench.scale_search"}

from bench.scale_data import add_batch, build_library, configure, scratch_database  # noqa: E402


def _database(backend: str, n: int) -> tuple[Path, str, Callable[[], None]]:
    return scratch_database(WORK, "scale", backend, n)


_cpu: list[float] = [0.0]  # the CPU seconds of the last `_timed` call (this process)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall seconds and result; the CPU seconds are left in `_cpu[0]` (the machine is shared:
    wall time follows the load, CPU time much less)."""
    gc.collect()
    c = time.process_time()
    t = time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    _cpu[0] = time.process_time() - c
    return wall, out


def _peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _absorbed(user_id: str) -> None:
    """After an old-path pass (whole library): the new path's next batch starts after it. The
    watermark is set once the old batch's jobs are past WATERMARK_SLACK, or the new path would
    take them again (and count them towards its next full pass)."""
    from camroll.analyze.library import library_state
    from camroll.db.engine import session_scope
    from camroll.db.models import utcnow

    _past_slack()
    with session_scope() as s:
        state = library_state(s, user_id)
        state.refreshed_until = state.ideas_until = utcnow()


def _planner_statistics(backend: str) -> None:
    """PostgreSQL's statistics after the bulk load, as autovacuum gathers them on a library that
    grew to this size over months: measured seconds after the load, without them, the idea pass
    at 50k took 0.70 s of wall time instead of 0.28 s (plans for an empty table). SQLite's are
    taken by the first full refresh (analyze.library.planner_statistics), as in the product."""
    if backend != "postgresql":
        return
    from sqlalchemy import text

    from camroll.db.engine import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("ANALYZE"))


def _past_slack() -> None:
    """Jobs that ended just before a refresh are taken again by the next (WATERMARK_SLACK);
    wait past it so a measured batch is the 20 photos and no more."""
    from camroll.analyze.library import WATERMARK_SLACK

    time.sleep(WATERMARK_SLACK.total_seconds() + 1)


def run_batch_section(
    backend: str, n: int, repeat: int, extras: bool = True, ideas: bool = True
) -> dict[str, Any]:
    """`ideas` False (--refresh-only): the library refresh alone, no idea pass on either path
    (the ideas' first pass renders every idea: minutes at 50k on a loaded machine)."""
    from bench.old_library import old_refresh_ideas, old_refresh_library
    from camroll.analyze.library import refresh_library
    from camroll.db.migrate import upgrade
    from camroll.ideas.generate import refresh_ideas

    if not ideas:
        extras = False
        refresh_ideas = old_refresh_ideas = lambda *_a, **_k: 0

    data, url, drop = _database(backend, n)
    configure(data, url)
    try:
        upgrade()
        t_build, built = _timed(lambda: build_library(n))
        uid = built.user_id
        _planner_statistics(backend)
        _past_slack()
        # After ingest: the full pass the first refresh makes, then the first ideas.
        t_full_new, mode = _timed(lambda: refresh_library(uid))
        assert mode == "full", mode
        t_ideas_first, rendered_first = _timed(lambda: refresh_ideas(uid))
        t_full_old, _ = _timed(lambda: old_refresh_library(uid))
        _absorbed(uid)

        keys = ("new_ref", "new_ideas", "old_ref", "old_ideas")
        rows: dict[str, list[float]] = {k: [] for k in keys}
        cpu: dict[str, list[float]] = {k: [] for k in keys}
        load_before = os.getloadavg()[0]
        renders = {"new": 0, "old": 0}
        modes: list[str] = []  # "full" when the library grew by a tenth since the last one
        seed = 100
        for r in range(repeat):
            seed += 1
            add_batch(built, 20, seed=seed, day_offset=1 + r)
            t1, mode = _timed(lambda: refresh_library(uid))
            cpu["new_ref"].append(_cpu[0])
            modes.append(mode)
            t2, k = _timed(lambda: refresh_ideas(uid))
            cpu["new_ideas"].append(_cpu[0])
            rows["new_ref"].append(t1)
            rows["new_ideas"].append(t2)
            renders["new"] += k
            seed += 1
            add_batch(built, 20, seed=seed, day_offset=1 + r)
            t1, _ = _timed(lambda: old_refresh_library(uid))
            cpu["old_ref"].append(_cpu[0])
            t2, k = _timed(lambda: old_refresh_ideas(uid))
            cpu["old_ideas"].append(_cpu[0])
            rows["old_ref"].append(t1)
            rows["old_ideas"].append(t2)
            renders["old"] += k
            _absorbed(uid)

        load_after = os.getloadavg()[0]
        nan = float("nan")
        t_away_ref = t_away_ideas = t_ideas_full = t_ideas_batch = t_ideas_old = nan
        mem_full = mem_batch = mem_old = nan
        if extras:
            # A batch on a trip: moments span the library, so trips are made from all of it.
            add_batch(built, 20, away=True, seed=999, day_offset=repeat + 2)
            t_away_ref, _ = _timed(lambda: refresh_library(uid))
            t_away_ideas, _ = _timed(lambda: refresh_ideas(uid))

            # The idea refresh alone, nothing new to render: full pass, batch pass, old pass.
            t_ideas_full, _ = _timed(lambda: refresh_ideas(uid, full=True))
            t_ideas_batch, _ = _timed(lambda: refresh_ideas(uid, full=False))
            t_ideas_old, _ = _timed(lambda: old_refresh_ideas(uid))
            mem_full = _peak_mib(lambda: refresh_ideas(uid, full=True))
            mem_batch = _peak_mib(lambda: refresh_ideas(uid, full=False))
            mem_old = _peak_mib(lambda: old_refresh_ideas(uid))

        med = {k: statistics.median(v) for k, v in rows.items()}
        med_cpu = {f"{k}_cpu_s": statistics.median(v) for k, v in cpu.items()}
        return {
            "backend": backend,
            "n": n,
            "faces": built.n_faces,
            "build_s": t_build,
            "full_new_s": t_full_new,
            "full_old_s": t_full_old,
            "ideas_first_s": t_ideas_first,
            "ideas_first_rendered": rendered_first,
            "batch_new_s": med["new_ref"] + med["new_ideas"],
            "batch_old_s": med["old_ref"] + med["old_ideas"],
            **{f"{k}_s": v for k, v in med.items()},
            **med_cpu,
            "batch_new_cpu_s": med_cpu["new_ref_cpu_s"] + med_cpu["new_ideas_cpu_s"],
            "batch_old_cpu_s": med_cpu["old_ref_cpu_s"] + med_cpu["old_ideas_cpu_s"],
            "load": (load_before, load_after),
            "renders": renders,
            "full_passes": modes.count("full"),
            "repeat": repeat,
            "ideas": ideas,
            "away_new_s": t_away_ref + t_away_ideas,
            "ideas_full_s": t_ideas_full,
            "ideas_batch_s": t_ideas_batch,
            "ideas_old_s": t_ideas_old,
            "mem_full_mib": mem_full,
            "mem_batch_mib": mem_batch,
            "mem_old_mib": mem_old,
        }
    finally:
        drop()
        shutil.rmtree(data, ignore_errors=True)


def run_index_section(sizes: list[int], queries: int = 20) -> str:
    """Near-duplicate lookup for a batch, measured on the asset_quality schema alone (SQLite,
    random 64-bit hashes): multi-index hashing through the indexed 16-bit bands (radius 2 per
    band: 548 values per photo) against `similar.HashIndex` (every hash in one array)."""
    import random
    import sqlite3

    from camroll.analyze.similar import DUPLICATE_DISTANCE, HashIndex

    def phash_bands(h: str) -> list[int]:  # the four 16-bit bands, as migration 0014 stored
        value = int(h, 16)
        return [(value >> (48 - 16 * k)) & 0xFFFF for k in range(4)]

    def band_variants(band: int) -> list[int]:  # every 16-bit value within 2 bits
        one = [band ^ (1 << i) for i in range(16)]
        two = [band ^ (1 << i) ^ (1 << j) for i in range(16) for j in range(i + 1, 16)]
        return [band, *one, *two]

    lines = [
        "| photos | band index (SQL): 20 lookups | candidates per lookup "
        "| HashIndex: 20 lookups | HashIndex built from rows | band/HashIndex |",
        "|---:|---|---:|---|---|---:|",
    ]
    rng = random.Random(5)
    for n in sizes:
        db = sqlite3.connect(":memory:")
        db.execute(
            "CREATE TABLE q (user_id TEXT, asset_id TEXT PRIMARY KEY, phash TEXT, "
            "b0 INT, b1 INT, b2 INT, b3 INT)"
        )
        for k in range(4):
            db.execute(f"CREATE INDEX ix{k} ON q (user_id, b{k})")
        rows = []
        for i in range(n):
            h = f"{rng.getrandbits(64):016x}"
            rows.append(("u", f"a{i}", h, *phash_bands(h)))
        db.executemany("INSERT INTO q VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        probes = [f"{rng.getrandbits(64):016x}" for _ in range(queries)]
        found = 0
        t = time.perf_counter()
        for h in probes:
            bands = phash_bands(h)
            where, args = [], ["u"]
            for k, b in enumerate(bands):
                vs = band_variants(b)
                where.append(f"b{k} IN ({','.join('?' * len(vs))})")
                args += vs
            found += len(
                db.execute(
                    f"SELECT asset_id, phash FROM q WHERE user_id = ? AND ({' OR '.join(where)})",
                    args,
                ).fetchall()
            )
        t_index = time.perf_counter() - t
        t = time.perf_counter()
        index = HashIndex()
        now = datetime.now(UTC)
        index.add([(a, h, now) for a, h in db.execute("SELECT asset_id, phash FROM q")])
        t_build = time.perf_counter() - t
        t = time.perf_counter()
        hits = sum(len(index.within(h, DUPLICATE_DISTANCE)) for h in probes)
        t_scan = time.perf_counter() - t
        assert hits <= found
        lines.append(
            f"| {n:,} | {_ms(t_index)} | {found / queries:.1f} | {_ms(t_scan)} "
            f"| {_ms(t_build)} | {t_index / t_scan:.0f}x |"
        )
    return "\n".join(lines) + "\n"


def _ms(s: float) -> str:
    if s != s:  # NaN: not measured (--no-extras)
        return "-"
    if s < 0.01:
        return f"{s * 1000:.2f} ms"
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.1f} s"


def report(results: list[dict[str, Any]], argv: list[str]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO
    ).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [
        f"### Scale: one batch of 20 new photos ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"commit {commit})",
        "",
        f"`bench/scale.py {' '.join(argv)}` on {platform.machine()}, {os.cpu_count()} cores "
        f"shared with other work; load average at the end {load}. Medians of "
        f"{results[0]['repeat'] if results else '?'} batches per path. CPU = this process's "
        "CPU seconds (time.process_time) for the same calls.",
        "",
        "| backend | photos | faces | batch: new (refresh + ideas), wall | CPU "
        "| batch: old, wall | CPU | old/new (wall) | new vs smallest: wall / CPU "
        "| refresh alone vs smallest: wall / CPU | load before / after "
        "| batch away (new) | ideas full pass: new / old | ideas batch pass "
        "| peak MiB full / batch / old | first full refresh new / old | build |",
        "|---|---:|---:|---|---|---|---|---:|---|---|---|---|---|---|---|---|---|",
    ]
    first: dict[str, dict[str, Any]] = {}
    for r in results:
        base = first.setdefault(r["backend"], r)
        out.append(
            f"| {r['backend']} | {r['n']:,} | {r['faces']:,} "
            f"| {_ms(r['batch_new_s'])} ({_ms(r['new_ref_s'])} + {_ms(r['new_ideas_s'])}) "
            f"| {_ms(r['batch_new_cpu_s'])} ({_ms(r['new_ref_cpu_s'])} "
            f"+ {_ms(r['new_ideas_cpu_s'])}) "
            f"| {_ms(r['batch_old_s'])} ({_ms(r['old_ref_s'])} + {_ms(r['old_ideas_s'])}) "
            f"| {_ms(r['batch_old_cpu_s'])} "
            f"| {r['batch_old_s'] / r['batch_new_s']:.1f}x "
            f"| {r['batch_new_s'] / base['batch_new_s']:.2f}x "
            f"/ {r['batch_new_cpu_s'] / base['batch_new_cpu_s']:.2f}x "
            f"| {r['new_ref_s'] / base['new_ref_s']:.2f}x "
            f"/ {r['new_ref_cpu_s'] / base['new_ref_cpu_s']:.2f}x "
            f"| {r['load'][0]:.1f} / {r['load'][1]:.1f} "
            f"| {_ms(r['away_new_s'])} "
            f"| {_ms(r['ideas_full_s'])} / {_ms(r['ideas_old_s'])} "
            f"| {_ms(r['ideas_batch_s'])} "
            f"| {r['mem_full_mib']:.0f} / {r['mem_batch_mib']:.1f} / {r['mem_old_mib']:.0f} "
            f"| {_ms(r['full_new_s'])} / {_ms(r['full_old_s'])} "
            f"| {_ms(r['build_s'])} |"
        )
    out.append("")
    if not all(r.get("ideas", True) for r in results):
        out.append("Ideas were not run (--refresh-only): the ideas columns are zero.\n")
    out.append(
        "Renders (ideas whose photos changed, both paths render them): "
        + "; ".join(
            f"{r['backend']} {r['n']:,}: new {r['renders']['new']}, old {r['renders']['old']}"
            for r in results
        )
        + ". Batches that became a full pass (growth by a tenth since the last): "
        + "; ".join(f"{r['backend']} {r['n']:,}: {r['full_passes']}" for r in results)
    )
    return "\n".join(out) + "\n"


def _without(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """argv less these options and their values: sections get the sizes and backends."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in flags:
            skip = True
        elif not a.startswith(tuple(f + "=" for f in flags)):
            out.append(a)
    return out


def _skip_rendering() -> None:
    """The ideas' first full pass draws every idea (2,919 s for 135 at 10k under load), which
    keeps 50k out of reach; what a batch costs apart from drawing does not need the pixels. Both
    paths call these three through camroll.ideas.media, so both skip the same work."""
    import io

    from PIL import Image

    from camroll.ideas import media

    blank = io.BytesIO()
    Image.new("RGB", (8, 8)).save(blank, "JPEG")

    def stand_in(*_a: Any, **_k: Any) -> bytes:
        return blank.getvalue()

    for name in ("render_collage_for", "render_recap_for", "render_restyle_for"):
        setattr(media, name, stand_in)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="batch," + ",".join(SECTIONS))
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--refresh-only",
        action="store_true",
        help="batch section: the library refresh alone, no idea pass (implies --no-extras)",
    )
    ap.add_argument(
        "--no-extras",
        action="store_true",
        help="batch section: only the batches (no away batch, ideas alone or memory)",
    )
    ap.add_argument(
        "--no-render",
        action="store_true",
        help="batch section: ideas are chosen and stored as the jobs do, but their collages, "
        "recaps and restyles are not drawn (both paths); rendering is timed in bench/creations.py",
    )
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if args.no_render:
        _skip_rendering()
    if "batch" in only:
        results = []
        for backend in args.backends.split(","):
            for n in (int(x) for x in args.sizes.split(",")):
                print(f"batch section: {backend} {n:,} photos ...", file=sys.stderr, flush=True)
                results.append(
                    run_batch_section(
                        backend, n, args.repeat, not args.no_extras, not args.refresh_only
                    )
                )
                print(results[-1], file=sys.stderr, flush=True)
        text = report(results, argv)
        print(text)
        if args.out:
            args.out.write_text(text)
    if "index" in only:
        text = run_index_section([int(x) for x in args.sizes.split(",")])
        print(text)
    for name, module in SECTIONS.items():
        if name not in only:
            continue
        try:
            section = importlib.import_module(module)
        except ModuleNotFoundError:
            print(f"({module} is not here yet: section {name} skipped)", file=sys.stderr)
            continue
        section.main(_without(argv, ("--only", "--out")))


if __name__ == "__main__":
    main()
