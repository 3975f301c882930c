"""How well camroll understands a library: people (face clustering) and trips, measured.

    .venv/bin/python bench/understanding.py                    # everything, markdown on stdout
    .venv/bin/python bench/understanding.py --orders 3         # fewer random arrival orders
    .venv/bin/python bench/understanding.py --trips FOLDER_TRUTH.json ...   # other truth files

People: every shared labelled set (deepface, face_recognition, glint-24 with its aligned crops
padded before detection) is analysed as the server does, once, into bench/work/faces-emb.pkl
(delete it to recompute: a few minutes of CPU). Then, with no model in the loop:
- pairwise P/R/F1 of the product's clustering (`recluster` at `THRESHOLD`), scoring the largest
  face of each single-identity photo ("found faces"), and scoring every labelled photo with a photo
  whose face was not found counted as a person of its own ("all photos");
- the same for every threshold from 0.50 to 0.70, to show the window where every set passes;
- the alternatives the threshold was chosen against: dlib's Chinese whispers at the same cutoffs;
- incremental placement as the server does it (`assign_batch`, one photo at a time) over random
  arrival orders, against the full recluster.

Trips: for each truth file (bench/truth/*.json: a folder under ../shared/data and the date ranges
of its true trips), the folder's files are read by ExifTool as the ingest reads them and run
through events and trips (homes inferred, as `GET /api/moments` does). A found trip is right when
it overlaps a true trip's dates; precision = right found / found, recall = true trips found /
true trips; "exact" also asks for the same first and last day.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from labelled_faces import Dataset, PairwiseScores, pairwise_scores  # noqa: E402

from camroll.people.cluster import (  # noqa: E402
    THRESHOLD,
    FaceVec,
    assign_batch,
    is_fresh,
    recluster,
)

SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "bench" / "work" / "faces-emb.pkl"
TRUTH = sorted((ROOT / "bench" / "truth").glob("*.json"))
SCAN = [round(0.50 + 0.01 * i, 2) for i in range(21)]
MEDIA = {".jpg", ".jpeg", ".png", ".heic", ".heif", ".mov", ".mp4", ".dng", ".webp", ".tif"}


# -- people ------------------------------------------------------------------------------------


def face_sets() -> list[Dataset]:
    """The three labelled sets with their embeddings, from the cache or analysed now."""
    if CACHE.exists():
        return pickle.loads(CACHE.read_bytes())
    from labelled_faces import load_dataset
    from people_suggestions import load_glint  # the same padding as the suggestions bench

    sets = [load_dataset("deepface"), load_dataset("face_recognition"), load_glint()]
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    CACHE.write_bytes(pickle.dumps(sets))
    return sets


def all_photos_truth(d: Dataset, labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Truth and labels over every single-identity photo: a photo with no usable face is scored
    as a face of its own that no one else shares (a missed face costs recall)."""
    truth, pred = dict(d.truth), dict(labels)
    for photo in d.photos_without_face:
        identity = photo.split("/")[0] if d.name == "glint-24" else None
        if identity is None:
            continue
        truth[f"{photo}#missing"] = identity
        pred[f"{photo}#missing"] = f"missing:{photo}"
    return truth, pred


def fmt(s: PairwiseScores) -> str:
    return f"{s.precision:.3f} | {s.recall:.3f} | **{s.f1:.3f}** | {s.people_found}/{s.people_true}"


def chinese_whispers(faces: list[FaceVec], t: float) -> dict[str, str]:
    import dlib

    descs = [dlib.vector(np.asarray(f.embedding, dtype=float).tolist()) for f in faces]
    return {
        f.face_id: str(c)
        for f, c in zip(faces, dlib.chinese_whispers_clustering(descs, t), strict=True)
    }


def arrival_labels(faces: list[FaceVec], photos: list[str]) -> dict[str, str]:
    """People as photos arrive one at a time, placed as the server places them."""
    by_photo: dict[str, list[FaceVec]] = {}
    for f in faces:
        by_photo.setdefault(f.asset_id, []).append(f)
    placed: list[FaceVec] = []
    labels: dict[str, str] = {}
    made = 0
    for photo in photos:
        new = by_photo.get(photo, [])
        placed += new
        fresh: dict[str, str] = {}
        for face_id, label in assign_batch(placed, labels, [f.face_id for f in new]).items():
            if is_fresh(label):
                if label not in fresh:
                    fresh[label], made = f"p{made}", made + 1
                label = fresh[label]
            labels[face_id] = label
    return labels


def people_report(sets: list[Dataset], orders: int) -> list[str]:
    out = [f"## People: average linkage < {THRESHOLD} (the product's setting)\n"]
    out.append(
        "| set | faces | photos without a usable face | found faces: P | R | F1 | people"
        " | all photos: P | R | F1 | people |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in sets:
        faces = [lf.face for lf in d.faces]
        labels = recluster(faces)
        found = pairwise_scores(d.truth, labels)
        every = pairwise_scores(*all_photos_truth(d, labels))
        out.append(
            f"| {d.name} | {len(faces)} | {len(d.photos_without_face)} | {fmt(found)} |"
            f" {fmt(every)} |"
        )

    out.append("\n## Threshold scan (found faces), one threshold for every set\n")
    out.append("| threshold | " + " | ".join(f"{d.name} P / F1" for d in sets) + " | all pass |")
    out.append("|---:|" + "---:|" * len(sets) + "---|")
    for t in SCAN:
        scores = [pairwise_scores(d.truth, recluster([lf.face for lf in d.faces], t)) for d in sets]
        ok = all(s.precision >= 0.97 and s.f1 >= 0.92 for s in scores)
        cells = " | ".join(f"{s.precision:.3f} / {s.f1:.3f}" for s in scores)
        mark = " **(chosen)**" if abs(t - THRESHOLD) < 1e-9 else ""
        out.append(f"| {t:.2f}{mark} | {cells} | {'yes' if ok else ''} |")

    out.append("\n## Alternatives: dlib Chinese whispers (found faces)\n")
    out.append("| cutoff | " + " | ".join(f"{d.name} P / R / F1" for d in sets) + " |")
    out.append("|---:|" + "---:|" * len(sets))
    for t in (0.50, 0.55, 0.60):
        cells = []
        for d in sets:
            s = pairwise_scores(d.truth, chinese_whispers([lf.face for lf in d.faces], t))
            cells.append(f"{s.precision:.3f} / {s.recall:.3f} / {s.f1:.3f}")
        out.append(f"| {t:.2f} | " + " | ".join(cells) + " |")

    out.append(f"\n## Incremental placement vs full recluster ({orders} random arrival orders)\n")
    out.append(
        "| set | full F1 | arrival F1 min | mean | max | largest F1 gap | seconds per order |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for d in sets:
        faces = [lf.face for lf in d.faces]
        full = pairwise_scores(d.truth, recluster(faces)).f1
        photos = sorted({f.asset_id for f in faces})
        f1s = []
        started = time.monotonic()
        for seed in range(orders):
            order = photos[:]
            random.Random(seed).shuffle(order)
            f1s.append(pairwise_scores(d.truth, arrival_labels(faces, order)).f1)
        per = (time.monotonic() - started) / orders
        gap = max(abs(f - full) for f in f1s)
        out.append(
            f"| {d.name} | {full:.3f} | {min(f1s):.3f} | {np.mean(f1s):.3f} | {max(f1s):.3f} |"
            f" {gap:.3f} | {per:.1f} |"
        )
    return out


# -- trips -------------------------------------------------------------------------------------


def trips_of(truth_file: Path) -> tuple[dict, list]:
    from camroll.media.metadata import read_metadata
    from camroll.moments.events import find_events, items_from_metadata
    from camroll.moments.trips import find_trips

    spec = json.loads(truth_file.read_text())
    folder = SHARED / spec["folder"]
    if not folder.is_dir():
        raise SystemExit(f"{truth_file.name}: folder missing: {folder}")
    walk = folder.rglob("*") if spec.get("recursive") else folder.iterdir()
    paths = sorted(p for p in walk if p.is_file() and p.suffix.lower() in MEDIA)
    items = items_from_metadata(read_metadata(paths), [str(p.relative_to(folder)) for p in paths])
    return spec, find_trips(find_events(items))


def trips_report(files: list[Path]) -> list[str]:
    out = ["## Trips against truth files (bench/truth)\n"]
    out.append(
        "| truth file | true trips | found | right | precision | recall | exact dates | found trips |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---|")
    for f in files:
        spec, found = trips_of(f)
        true = [
            (date.fromisoformat(t["start"]), date.fromisoformat(t["end"])) for t in spec["trips"]
        ]

        def overlaps(t: object, r: tuple[date, date]) -> bool:
            return t.start_local_day <= r[1] and r[0] <= t.end_local_day  # type: ignore[attr-defined]

        right = [t for t in found if any(overlaps(t, r) for r in true)]
        hit = [r for r in true if any(overlaps(t, r) for t in found)]
        exact = [r for r in true if any((t.start_local_day, t.end_local_day) == r for t in found)]
        p = f"{len(right) / len(found):.2f}" if found else "n/a (none found)"
        rc = f"{len(hit) / len(true):.2f}" if true else "n/a (none true)"
        names = "; ".join(
            f"{t.title} ({t.start_local_day} to {t.end_local_day}, {len(t.items)} items)"
            for t in found
        )
        out.append(
            f"| {f.name} | {len(true)} | {len(found)} | {len(right)} | {p} | {rc} |"
            f" {len(exact)}/{len(true)} | {names or '—'} |"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=5, help="random arrival orders per set")
    ap.add_argument("--trips", type=Path, nargs="*", default=TRUTH, help="truth files")
    ap.add_argument("--skip-people", action="store_true")
    args = ap.parse_args()
    lines = ["# Understanding: people and trips\n"]
    if not args.skip_people:
        lines += people_report(face_sets(), args.orders)
        lines.append("")
    lines += trips_report(args.trips)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
