"""Scale, search section: query latency as the library grows, the database's index beside the
scan it replaced, in one run.

    .venv/bin/python bench/scale_search.py [--sizes 1000,10000,50000]
                                           [--backends sqlite,postgresql] [--repeat 5]
                                           [--page 100]

(bench/scale.py runs it as its `search` section with the same arguments.)

On each synthetic library (bench/scale_data.py: tags, places at home and on trips, named people,
five years of dates) the search index is built once (`index_missing`, timed), then each query
runs --repeat times through three paths, one after the other per query:
- new: `search.service.indexed(limit=--page)`: the database ranks every match on the blind
  tokens and faces and returns one page (the API's default 100); only its documents are loaded;
- old index: `bench/old_search.py` (the index path before, 8f2480e): every candidate loaded,
  decrypted and ranked in Python, then cut to the page as the API did;
- scan: `search.service.scan`: every document of the owner loaded, decrypted and ranked.
The new page must equal the first --page hits of both (ids, scores and reasons) and its total
their length (checked). p50/p95 of wall time over every query and repeat, and CPU time
(process_time); MiniLM is warmed first (its label cache is the same for all paths). Scratch data under
bench/work/scale-search/ (removed after each size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scale_data import build_library, configure, scratch_database  # noqa: E402

WORK = REPO / "bench" / "work" / "scale-search"


def _database(backend: str, n: int) -> tuple[Path, str, Callable[[], None]]:
    return scratch_database(WORK, "scale_search", backend, n)


def queries(year: int) -> list[str]:
    """Words, a place, a prefix, a name, a meaning, dates alone and with words."""
    return [
        "dog",
        "beach",
        "lisbon",
        "kyo",
        "Person 3",
        "puppy",
        f"food {year - 1}",
        f"june {year - 2}",
        "snow mountain",
        "berlin party",
    ]


def _p(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def run(backend: str, n: int, repeat: int, page: int) -> dict[str, Any]:
    from bench.old_search import indexed_before
    from camroll.db.engine import session_scope
    from camroll.db.migrate import upgrade
    from camroll.search.index import index_missing
    from camroll.search.query import parse_query
    from camroll.search.service import indexed, scan

    data, url, drop = _database(backend, n)
    try:
        configure(data, url)
        upgrade()
        built = build_library(n)
        t = time.perf_counter()
        with session_scope() as s:
            index_missing(s, built.user_id)
        build_s = time.perf_counter() - t
        if backend == "postgresql":  # planner statistics, as autovacuum keeps them on a live server
            from sqlalchemy import text

            with session_scope() as s:
                s.execute(text("ANALYZE"))
        qs = queries(built.end.year)
        paths: dict[str, Callable[[Any, str], Any]] = {
            "new": lambda s, q: indexed(s, built.user_id, parse_query(q), page),
            "old": lambda s, q: indexed_before(s, built.user_id, parse_query(q)),
            "scan": lambda s, q: scan(s, built.user_id, q),
        }
        wall: dict[str, list[float]] = {k: [] for k in paths}
        cpu: dict[str, list[float]] = {k: [] for k in paths}
        per_query: dict[str, list[float]] = {q: [] for q in qs}
        differs: list[str] = []
        with session_scope() as s:
            for q in qs:  # warm: MiniLM, its label cache, the database's pages
                for path in paths.values():
                    path(s, q)
            hits = 0
            for _ in range(repeat):
                for q in qs:
                    got = {}
                    for name, path in paths.items():
                        t, c = time.perf_counter(), time.process_time()
                        got[name] = path(s, q)
                        wall[name].append(time.perf_counter() - t)
                        cpu[name].append(time.process_time() - c)
                    per_query[q].append(wall["new"][-1])
                    new = [(h.asset_id, h.score, h.matched) for h in got["new"].hits]
                    for other in ("old", "scan"):
                        full = [(h.asset_id, h.score, h.matched) for h in got[other]]
                        if new != full[:page] or got["new"].total != len(full):
                            differs.append(f"{q} ({other})")
                    hits += got["new"].total
        out: dict[str, Any] = {
            "backend": backend,
            "n": n,
            "page": page,
            "build_s": build_s,
            "same": not differs,
            "differs": sorted(set(differs)),
            "hits_per_query": hits / (repeat * len(qs)),
            "slowest_new": max(per_query, key=lambda q: statistics.median(per_query[q])),
            "slowest_new_s": max(statistics.median(v) for v in per_query.values()),
            "load": Path("/proc/loadavg").read_text().split()[0],
        }
        for name in paths:
            out[f"{name}_p50"], out[f"{name}_p95"] = _p(wall[name], 50), _p(wall[name], 95)
            out[f"{name}_cpu50"], out[f"{name}_cpu95"] = _p(cpu[name], 50), _p(cpu[name], 95)
        return out
    finally:
        drop()


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | photos | index build | hits/query | new p50 | new p95 | new CPU p50/p95 "
        "| old index p50 | old p95 | old CPU p50 | scan p50 | scan p95 | old/new p50 "
        "| same first page | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['n']:,} | {r['build_s']:.1f} s | {r['hits_per_query']:.0f} "
            f"| {_ms(r['new_p50'])} | {_ms(r['new_p95'])} "
            f"| {_ms(r['new_cpu50'])} / {_ms(r['new_cpu95'])} "
            f"| {_ms(r['old_p50'])} | {_ms(r['old_p95'])} | {_ms(r['old_cpu50'])} "
            f"| {_ms(r['scan_p50'])} | {_ms(r['scan_p95'])} | {r['old_p50'] / r['new_p50']:.1f}x "
            f"| {'yes' if r['same'] else 'NO: ' + ', '.join(r['differs'])} | {r['load']} |"
        )
    lines.append("")
    for r in results:
        lines.append(
            f"- {r['backend']} {r['n']:,}: slowest query, new path "
            f'"{r["slowest_new"]}" ({_ms(r["slowest_new_s"])} median); page of {r["page"]}'
        )
    lines.append("")
    for backend in dict.fromkeys(r["backend"] for r in results):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["n"])
        if len(rows) > 1:
            a, b = rows[0], rows[-1]
            lines.append(
                f"- {backend}: {b['n']:,} / {a['n']:,} photos: new p50 "
                f"{b['new_p50'] / a['new_p50']:.2f}x, p95 {b['new_p95'] / a['new_p95']:.2f}x, "
                f"CPU p50 {b['new_cpu50'] / a['new_cpu50']:.2f}x, "
                f"CPU p95 {b['new_cpu95'] / a['new_cpu95']:.2f}x; old index p50 "
                f"{b['old_p50'] / a['old_p50']:.2f}x, p95 {b['old_p95'] / a['old_p95']:.2f}x; "
                f"scan p50 {b['scan_p50'] / a['scan_p50']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--page", type=int, default=100, help="hits per page (the API's default)")
    args, _rest = ap.parse_known_args(argv)
    results = []
    for backend in args.backends.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"search section: {backend} {n:,} photos ...", file=sys.stderr, flush=True)
            results.append(run(backend, n, args.repeat, args.page))
            print(results[-1], file=sys.stderr, flush=True)
    print(report(results))


if __name__ == "__main__":
    main()
