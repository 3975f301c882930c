"""What each hostile file costs to decode, before and after the budgets and the deadline.

For every file of the hostile corpus (`tests/hostile/make_corpus.py`, with the 78 MB metadata
flood), in one run on one machine:

- `budget`: the header check (`media/budget.py`) that ingest runs first: time and verdict;
- `deadline`: the decode as ingest now runs it (`media/deadline.py`: a helper process, killed
  at the deadline), run even for files the budget refuses, to show what the deadline alone bounds;
- `in-process`: the old path (`render_previews` in the worker itself, no limit), only for files
  the deadline lets finish, so the helper's overhead shows beside the same decode.

  .venv/bin/python bench/decode_costs.py [--deadline 30] [--flood-mb 78] [--out FILE]

Prints a Markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from camroll.media.budget import check_costs
from camroll.media.deadline import render_within
from camroll.media.previews import render_previews
from camroll.media.validate import Quarantined, classify, sniff
from tests.hostile.make_corpus import make_corpus


def _verdict(fn) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    try:
        fn()
        verdict = "ok"
    except Quarantined as q:
        verdict = q.reason
    except Exception as e:  # a bench reports, it does not stop
        verdict = type(e).__name__
    return time.perf_counter() - t, verdict


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--deadline", type=float, default=30.0)
    ap.add_argument("--flood-mb", type=int, default=78)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("CAMROLL_DATA_DIR", tempfile.mkdtemp(prefix="camroll-bench-"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        entries = make_corpus(Path(tmp), flood_mb=args.flood_mb)
        for e in entries:
            size = e.path.stat().st_size
            b_s, b_v = _verdict(lambda e=e: check_costs(e.path))
            try:
                kind = classify(e.path, sniff(e.path), decode=False)
            except Quarantined as q:
                rows.append((e.group, size, b_s, b_v, None, f"headers: {q.reason}", None))
                continue
            d_s, d_v = _verdict(lambda e=e, k=kind: render_within(e.path, k, seconds=args.deadline))
            i_s = None
            if d_v not in ("too_costly",):
                i_s, _ = _verdict(lambda e=e, k=kind: render_previews(e.path, k))
            rows.append((e.group, size, b_s, b_v, d_s, d_v, i_s))
    lines = [
        f"| file | bytes | budget check | budget verdict | decode in helper (deadline "
        f"{args.deadline:g} s) | verdict | same decode in-process |",
        "|---|---:|---:|---|---:|---|---:|",
    ]
    costly = sorted(rows, key=lambda r: -(r[4] or 0))
    for g, size, b_s, b_v, d_s, d_v, i_s in costly[:12]:
        lines.append(
            f"| {g} | {size:,} | {b_s * 1000:.1f} ms | {b_v} | "
            + (f"{d_s:.2f} s" if d_s is not None else "-")
            + f" | {d_v} | "
            + (f"{i_s:.2f} s" if i_s is not None else "-")
            + " |"
        )
    both = [r for r in rows if r[4] is not None and r[6] is not None]
    lines.append("")
    lines.append(
        f"{len(rows)} files; budget checks {sum(r[2] for r in rows):.2f} s in all "
        f"(max {max(r[2] for r in rows) * 1000:.0f} ms); {len(both)} decoded both ways: "
        f"helper {sum(r[4] for r in both):.2f} s, in-process {sum(r[6] for r in both):.2f} s "
        f"(overhead per file: mean {(sum(r[4] for r in both) - sum(r[6] for r in both)) / len(both) * 1000:.1f}"
        f" ms, median {statistics.median(r[4] - r[6] for r in both) * 1000:.1f} ms; a helper "
        f"killed at its deadline is replaced by the next file's decode)"
    )
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
