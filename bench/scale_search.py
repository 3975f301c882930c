"""Scale, search section: query latency as the library grows, the database's index beside the
scan it replaced, in one run.

    .venv/bin/python bench/scale_search.py [--sizes 1000,10000,50000]
                                           [--backends sqlite,postgresql] [--repeat 5]

(bench/scale.py runs it as its `search` section with the same arguments.)

On each synthetic library (bench/scale_data.py: tags, places at home and on trips, named people,
five years of dates) the search index is built once (`index_missing`, timed), then each query
runs --repeat times through both paths:
- new: `search.service.indexed`: blind tokens through SQLite FTS5 / PostgreSQL GIN, candidates
  only loaded and ranked;
- old: `search.service.scan`: every document of the owner loaded, decrypted and ranked in Python.
Both must give the same hits (checked). p50/p95 over every query and repeat; MiniLM is warmed
first (its label cache is the same for both paths). Scratch data under
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


def run(backend: str, n: int, repeat: int) -> dict[str, Any]:
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
        new: list[float] = []
        old: list[float] = []
        per_query: dict[str, list[float]] = {q: [] for q in qs}
        same = True
        with session_scope() as s:
            for q in qs:  # warm: MiniLM, its label cache, the database's pages
                indexed(s, built.user_id, parse_query(q))
                scan(s, built.user_id, q)
            hits = 0
            for _ in range(repeat):
                for q in qs:
                    t = time.perf_counter()
                    a = indexed(s, built.user_id, parse_query(q))
                    new.append(time.perf_counter() - t)
                    per_query[q].append(new[-1])
                    t = time.perf_counter()
                    b = scan(s, built.user_id, q)
                    old.append(time.perf_counter() - t)
                    same &= [h.asset_id for h in a] == [h.asset_id for h in b]
                    hits += len(a)
        return {
            "backend": backend,
            "n": n,
            "build_s": build_s,
            "new_p50": _p(new, 50),
            "new_p95": _p(new, 95),
            "old_p50": _p(old, 50),
            "old_p95": _p(old, 95),
            "same": same,
            "hits_per_query": hits / (repeat * len(qs)),
            "slowest_new": max(per_query, key=lambda q: statistics.median(per_query[q])),
            "slowest_new_s": max(statistics.median(v) for v in per_query.values()),
        }
    finally:
        drop()


def _ms(s: float) -> str:
    return f"{s * 1000:.1f} ms"


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        "| backend | photos | index build | hits/query | new p50 | new p95 | old p50 | old p95 "
        "| old/new p50 | same hits |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['n']:,} | {r['build_s']:.1f} s | {r['hits_per_query']:.0f} "
            f"| {_ms(r['new_p50'])} | {_ms(r['new_p95'])} | {_ms(r['old_p50'])} "
            f"| {_ms(r['old_p95'])} | {r['old_p50'] / r['new_p50']:.1f}x "
            f"| {'yes' if r['same'] else 'NO'} |"
        )
    lines.append("")
    for r in results:
        lines.append(
            f"- {r['backend']} {r['n']:,}: slowest query through the index "
            f'"{r["slowest_new"]}" ({_ms(r["slowest_new_s"])} median)'
        )
    lines.append("")
    for backend in dict.fromkeys(r["backend"] for r in results):
        rows = sorted((r for r in results if r["backend"] == backend), key=lambda r: r["n"])
        if len(rows) > 1:
            a, b = rows[0], rows[-1]
            lines.append(
                f"- {backend}: {b['n']:,} / {a['n']:,} photos: new p50 "
                f"{b['new_p50'] / a['new_p50']:.2f}x, p95 {b['new_p95'] / a['new_p95']:.2f}x; "
                f"old p50 {b['old_p50'] / a['old_p50']:.2f}x, p95 {b['old_p95'] / a['old_p95']:.2f}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--repeat", type=int, default=5)
    args, _rest = ap.parse_known_args(argv)
    results = []
    for backend in args.backends.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"search section: {backend} {n:,} photos ...", file=sys.stderr, flush=True)
            results.append(run(backend, n, args.repeat))
            print(results[-1], file=sys.stderr, flush=True)
    print(report(results))


if __name__ == "__main__":
    main()
