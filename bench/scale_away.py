"""Scale: where a batch away from home spends its time, the whole-library trip pass beside the
windowed one (issue 14 part 1), on the synthetic library of bench/scale_data.py.

    .venv/bin/python bench/scale_away.py [--sizes 1000,10000] [--backends sqlite,postgresql]
                                         [--repeat 3] [--out FILE]

For each backend (SQLite by default) and size: build the library, the full library refresh (stores home periods), the
full idea pass without rendering (fits and keeps the event gap threshold), then 20 photos in
Lisbon as a batch and the batch library refresh. Then, in one session, alternating, `--repeat`
times each:
- whole (the path before): `load_library` of everything, the trip items, `find_events`,
  `find_trips`, and the trip suggestions (`trip_ideas` on the found trips);
- window (now): `_batch_trip_ideas`, which reads a window of the timeline (`moments.window`).
Both must give the same trip ideas (checked). Then what rendering the batch's new trip costs (a
collage and a recap, both paths render them the same), and the whole `refresh_ideas` batch pass
as the job runs it. Wall and CPU (process) seconds; load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.scale import _ms, _past_slack  # noqa: E402
from bench.scale_data import add_batch, build_library, configure, scratch_database  # noqa: E402

WORK = REPO / "bench" / "work" / "scale-away"  # gitignored, as bench/work/scale


def _clock(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w, time.process_time() - c, out


def _database(backend: str, n: int) -> tuple[Path, str, Callable[[], None]]:
    return scratch_database(WORK, "scale_away", backend, n)


def run(backend: str, n: int, repeat: int) -> dict[str, Any]:
    from sqlalchemy import select

    from camroll.analyze.library import library_state, refresh_library
    from camroll.db.engine import session_scope
    from camroll.db.migrate import upgrade
    from camroll.db.models import AssetPlace, Idea, utcnow
    from camroll.ideas import generate as g
    from camroll.moments.events import effective_instants, find_events, gap_threshold
    from camroll.moments.trips import find_trips
    from camroll.moments.window import stored_periods

    data, url, drop = _database(backend, n)
    configure(data, url)
    try:
        upgrade()
        built = build_library(n)
        uid = built.user_id
        _past_slack()
        assert refresh_library(uid) == "full"
        with session_scope() as s:
            t_full = _clock(lambda: g.suggestions(s, uid, faces=True))[:2]
            state = library_state(s, uid)
            state.ideas_until = state.ideas_full_at = utcnow()
        _past_slack()
        batch = add_batch(built, 20, away=True, seed=999, day_offset=3)
        assert refresh_library(uid) == "batch"

        whole_parts: dict[str, list[float]] = {
            k: [] for k in ("load", "events", "trips", "ideas", "total", "cpu")
        }
        window_parts: dict[str, list[float]] = {"total": [], "cpu": [], "read": []}
        with session_scope() as s:
            periods = stored_periods(s, uid) or None
            for _ in range(repeat):
                # The path before: the whole library, then trips over all of it.
                w0, c0 = time.perf_counter(), time.process_time()
                t_load, _, whole = _clock(lambda: g.load_library(s, uid))
                items = g.trip_items(whole)

                def events(items=items):  # type: ignore[no-untyped-def]
                    return find_events(items, gap_threshold(effective_instants(items)))

                t_ev, _, evs = _clock(events)
                t_tr, _, trips = _clock(lambda evs=evs: find_trips(evs, periods=periods))
                t_id, _, old = _clock(
                    lambda whole=whole, trips=trips: g.trip_ideas(s, whole, uid, trips=trips)
                )
                for k, v in (
                    ("load", t_load),
                    ("events", t_ev),
                    ("trips", t_tr),
                    ("ideas", t_id),
                    ("total", time.perf_counter() - w0),
                    ("cpu", time.process_time() - c0),
                ):
                    whole_parts[k].append(v)
                # Now: the window around the batch.
                seen = g.Library({}, {}, {}, {}, {})  # type: ignore[arg-type]
                tw, cw, new = _clock(lambda seen=seen: g._batch_trip_ideas(s, uid, batch, seen))
                window_parts["total"].append(tw)
                window_parts["cpu"].append(cw)
                window_parts["read"].append(len(seen.assets))

                def key(found):  # type: ignore[no-untyped-def]
                    return {(x.fingerprint, tuple(sorted(a.id for a in x.assets))) for x in found}

                assert key(new) <= key(old), "a window trip idea differs from the full pass's"
            # A batch on a holiday: the home country is counted over every place row.
            t_country = _clock(
                lambda: g.home_country(
                    s.scalars(select(AssetPlace.country_code).where(AssetPlace.user_id == uid))
                )
            )[:2]
            existing = set(s.scalars(select(Idea.fingerprint).where(Idea.user_id == uid)))
            fresh = [x for x in new if x.fingerprint not in existing and x.render]
            renders = {}
            for x in fresh:
                renders[x.fingerprint] = _clock(lambda x=x: x.render(s, x.assets))[:2]
        t_job, spent = _with_render_times(lambda: _clock(lambda: g.refresh_ideas(uid)))
        med = {k: statistics.median(v) for k, v in whole_parts.items()}
        wmed = {k: statistics.median(v) for k, v in window_parts.items()}
        return {
            "n": n,
            "backend": backend,
            "full_ideas": t_full,
            "whole": med,
            "window": wmed,
            "renders": renders,
            "job": t_job[:2],
            "job_renders": spent,
            "home_country": t_country,
            "rendered": t_job[2],
            "library": len(whole.assets),
        }
    finally:
        drop()


def _with_render_times(fn: Callable[[], Any]) -> tuple[Any, dict[str, list[float]]]:
    """Run `fn` with the idea renderers timed (wall seconds per call, by renderer)."""
    from camroll.ideas import media

    spent: dict[str, list[float]] = {}
    names = ("render_collage_for", "render_recap_for", "render_restyle_for")
    saved = {k: getattr(media, k) for k in names}

    def timed(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                spent.setdefault(name.split("_")[1], []).append(time.perf_counter() - t)

        return call

    for k in names:
        setattr(media, k, timed(k, saved[k]))
    try:
        return fn(), spent
    finally:
        for k in names:
            setattr(media, k, saved[k])


def report(results: list[dict[str, Any]], load_before: str, argv: list[str]) -> str:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [
        f"`bench/scale_away.py {' '.join(argv)}`; load average before {load_before}, "
        f"after {load}. Medians of the repeats; CPU = process time.",
        "",
        "| backend | photos | whole: load / events / trips / trip ideas | whole total (CPU) "
        "| window total (CPU) | photos read by the window | whole ÷ window "
        "| render the new trip: collage, recap | `refresh_ideas` batch pass (CPU), rendered "
        "| of which rendering | holidays: home country counted (CPU) |",
        "|---|---:|---|---|---|---:|---:|---|---|---|---|",
    ]
    for r in results:
        w, v = r["whole"], r["window"]
        renders = ", ".join(f"{_ms(t)}" for t, _ in r["renders"].values()) or "none"
        spent = ", ".join(
            f"{len(v)} {k} {_ms(sum(v))}" for k, v in sorted(r["job_renders"].items())
        )
        out.append(
            f"| {r['backend']} | {r['n']:,} | {_ms(w['load'])} / {_ms(w['events'])} / {_ms(w['trips'])} / "
            f"{_ms(w['ideas'])} | {_ms(w['total'])} ({_ms(w['cpu'])}) "
            f"| {_ms(v['total'])} ({_ms(v['cpu'])}) | {v['read']:.0f} of {r['library']:,} "
            f"| {w['total'] / v['total']:.1f}x | {renders} "
            f"| {_ms(r['job'][0])} ({_ms(r['job'][1])}), {r['rendered']} "
            f"| {spent} | {_ms(r['home_country'][0])} ({_ms(r['home_country'][1])}) |"
        )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="sqlite")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    for backend in args.backends.split(","):
        for n in (int(x) for x in args.sizes.split(",")):
            print(f"away batch: {backend} {n:,} photos ...", file=sys.stderr, flush=True)
            results.append(run(backend, n, args.repeat))
            print(results[-1], file=sys.stderr, flush=True)
    text = report(results, load_before, argv)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
