"""Which "is this the same person?" rule to use, measured on the labelled face sets.

    .venv/bin/python bench/people_suggestions.py [--cache /tmp/faces-emb.pkl]

Each set is analysed as the server does (`labelled_faces.load_dataset`; glint-24's
aligned crops are padded first so the detector sees a whole head), clustered with the product's
`recluster`, and then every pair of resulting people that could be one person (no shared photo)
is a candidate. A candidate is truly one person when the majority identities of the two clusters'
scored faces agree. For each linkage we print, by cutoff, how many suggestions an owner would see,
how many of them are right (precision) and how many of the true splits they cover (recall), and
fit the logistic curve that turns a distance into the confidence the API reports.
"""

from __future__ import annotations

import argparse
import csv
import pickle
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelled_faces import FACES_DIR, Dataset, LabelledFace, load_dataset

from camroll.people.cluster import THRESHOLD, FaceVec, recluster
from camroll.people.suggest import fit_logistic, linkage_distances

LINKAGES = ("rms", "single", "average")
CUTOFFS = (0.55, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.75)


def load_glint(root: Path = FACES_DIR / "glint-24") -> Dataset:
    """24 identities x 20 aligned 112 px crops, each padded to 3x its size on a grey canvas."""
    from camroll.analyze.faces import analyze_faces

    faces: list[LabelledFace] = []
    truth: dict[str, str] = {}
    missing: list[str] = []
    with (root / "identities.csv").open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0] != "file"]
    for photo, identity in rows:
        crop = Image.open(root / photo).convert("RGB")
        canvas = Image.new("RGB", (crop.width * 3, crop.height * 3), (128, 128, 128))
        canvas.paste(crop, (crop.width, crop.height))
        canvas = canvas.resize((canvas.width * 2, canvas.height * 2), Image.Resampling.LANCZOS)
        found = [r for r in analyze_faces(canvas) if r.usable]
        if not found:
            missing.append(photo)
            continue
        best = max(found, key=lambda r: r.box[2] * r.box[3])
        vec = FaceVec(face_id=f"{photo}#0", asset_id=photo, embedding=best.embedding)
        faces.append(LabelledFace(vec, photo, best.box[2] * best.box[3], (identity,)))
        truth[vec.face_id] = identity
    return Dataset("glint-24", faces, truth, len(rows), missing)


def candidates(d: Dataset, labels: dict[str, str]) -> list[tuple[str, str, bool]]:
    """(person a, person b, truly one) for every pair of clusters holding scored faces."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for face_id, identity in d.truth.items():
        votes[labels[face_id]][identity] += 1
    major = {c: v.most_common(1)[0][0] for c, v in votes.items()}
    scored = sorted(major)
    return [(a, b, major[a] == major[b]) for i, a in enumerate(scored) for b in scored[i + 1 :]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, help="pickle of the analysed sets (analysis is slow)")
    args = ap.parse_args()
    if args.cache and args.cache.exists():
        sets = pickle.loads(args.cache.read_bytes())
    else:
        sets = [load_dataset("deepface"), load_dataset("face_recognition"), load_glint()]
        if args.cache:
            args.cache.write_bytes(pickle.dumps(sets))

    pooled_d: list[float] = []
    pooled_y: list[bool] = []
    print(f"# Merge suggestions: linkage and cutoff (clustering: average linkage < {THRESHOLD})\n")
    print(
        "| set | linkage | cutoff | people | true splits | suggested | right | precision | recall |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for d in sets:
        vecs = [lf.face for lf in d.faces]
        labels = recluster(vecs)
        members: dict[str, list[FaceVec]] = defaultdict(list)
        for f in vecs:
            members[labels[f.face_id]].append(f)
        cands = candidates(d, labels)
        splits = sum(same for _, _, same in cands)
        for linkage in LINKAGES:
            dist = linkage_distances(members, linkage)
            for cut in CUTOFFS:
                hits = [(a, b, s) for a, b, s in cands if dist.get((a, b), 9) < cut]
                right = sum(s for *_, s in hits)
                p = right / len(hits) if hits else 1.0
                r = right / splits if splits else 1.0
                print(
                    f"| {d.name} | {linkage} | {cut:.2f} | {len(votes_of(labels, d))} | {splits} |"
                    f" {len(hits)} | {right} | {p:.3f} | {r:.3f} |"
                )
            if linkage == "rms":
                for a, b, s in cands:
                    if (a, b) in dist:
                        pooled_d.append(dist[(a, b)])
                        pooled_y.append(s)
    k, x0 = fit_logistic(np.array(pooled_d), np.array(pooled_y, dtype=float))
    print(f"\nLogistic fit on rms distance, all sets pooled: k={k:.2f}, midpoint={x0:.3f}")
    for dd in (0.5, 0.55, 0.6, 0.65, 0.7):
        print(f"- distance {dd:.2f}: confidence {1 / (1 + np.exp(k * (dd - x0))):.2f}")


def votes_of(labels: dict[str, str], d: Dataset) -> set[str]:
    return {labels[f] for f in d.truth}


if __name__ == "__main__":
    main()
