"""Face clustering quality on the labelled face sets, printed as Markdown tables.

    .venv/bin/python bench/faces_eval.py [--shuffles 20] [--scale 4000]

Detection and embedding use `camroll.analyze.faces.analyze_faces` on each image as the server sees
it (upright, longest side 1440 px); only usable faces are clustered. What is scored is explained in
`labelled_faces`: the largest face of each single-identity photo, pairwise, with every
other face (bystanders, two-people photos, unlabelled photos) clustered as a distractor.

Tables: what was detected; pairwise P/R/F1 over a few thresholds for the full recluster and for
incremental assignment in file order; incremental assignment over random arrival orders; both sets
pooled (more identities, so more chances to confuse them); the two-people photos; and the
recluster's run time on a larger jittered copy of the data (timing only, not quality).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labelled_faces import (
    DATASETS,
    Dataset,
    LabelledFace,
    PairwiseScores,
    incremental_labels,
    load_dataset,
    multi_identity_hits,
    pairwise_scores,
)

from camroll.people.cluster import THRESHOLD, FaceVec, recluster

THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60)


def fmt(s: PairwiseScores) -> str:
    return f"{s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | {s.people_found}/{s.people_true}"


def pooled(sets: list[Dataset]) -> Dataset:
    """Both datasets as one library, ids prefixed so no two datasets share a photo or identity."""
    faces: list[LabelledFace] = []
    truth: dict[str, str] = {}
    for d in sets:
        for lf in d.faces:
            f = lf.face
            vec = FaceVec(f"{d.name}/{f.face_id}", f"{d.name}/{f.asset_id}", f.embedding)
            faces.append(
                LabelledFace(
                    vec,
                    f"{d.name}/{lf.photo}",
                    lf.area,
                    tuple(f"{d.name}:{i}" for i in lf.photo_identities),
                )
            )
        truth.update({f"{d.name}/{k}": f"{d.name}:{v}" for k, v in d.truth.items()})
    return Dataset("pooled", faces, truth, sum(d.photos for d in sets))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shuffles", type=int, default=20, help="random arrival orders")
    ap.add_argument("--scale", type=int, default=4000, help="faces for the timing row")
    args = ap.parse_args()

    t0 = time.perf_counter()
    sets = [load_dataset(name) for name in DATASETS]
    analysis_s = time.perf_counter() - t0
    every = [*sets, pooled(sets)]

    print(f"# Face clustering (threshold {THRESHOLD}, average linkage, dlib 128-d)\n")
    print(f"Analysis of all images: {analysis_s:.1f} s.\n")
    print("## What was detected\n")
    print(
        "| dataset | images | usable faces | scored faces | labelled photos with no usable face"
        " | single-identity photos with 2+ faces (largest scored) |"
    )
    print("|---|---:|---:|---:|---|---|")
    for d in sets:
        print(
            f"| {d.name} | {d.photos} | {len(d.faces)} | {len(d.truth)} | "
            f"{len(d.photos_without_face)} {', '.join(d.photos_without_face)} | "
            f"{len(d.photos_with_bystanders)} {', '.join(d.photos_with_bystanders)} |"
        )

    print("\n## Pairwise scores by threshold\n")
    print("P | R | F1 | people found/true; incremental = one face at a time in file order.\n")
    print("| dataset | threshold | full P | R | F1 | people | incremental P | R | F1 | people |")
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for d in every:
        vecs = [lf.face for lf in d.faces]
        for t in THRESHOLDS:
            full = pairwise_scores(d.truth, recluster(vecs, t))
            inc = pairwise_scores(d.truth, incremental_labels(vecs, t))
            mark = " **(default)**" if t == THRESHOLD else ""
            print(f"| {d.name} | {t:.2f}{mark} | {fmt(full)} | {fmt(inc)} |")

    print(f"\n## Incremental assignment over {args.shuffles} random arrival orders\n")
    print("Faces of one photo arrive together; photo order shuffled (seeded).\n")
    print("| dataset | P min | P mean | R min | R mean | F1 min | F1 mean | people found range |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    rng = random.Random(0)
    for d in every:
        photos = sorted({lf.photo for lf in d.faces})
        runs: list[PairwiseScores] = []
        for _ in range(args.shuffles):
            rng.shuffle(photos)
            rank = {p: i for i, p in enumerate(photos)}
            order = sorted(d.faces, key=lambda lf: rank[lf.photo])
            runs.append(pairwise_scores(d.truth, incremental_labels([lf.face for lf in order])))
        p = [r.precision for r in runs]
        r_ = [r.recall for r in runs]
        f = [r.f1 for r in runs]
        found = [r.people_found for r in runs]
        print(
            f"| {d.name} | {min(p):.3f} | {np.mean(p):.3f} | {min(r_):.3f} | {np.mean(r_):.3f} | "
            f"{min(f):.3f} | {np.mean(f):.3f} | {min(found)}-{max(found)} "
            f"(true {runs[0].people_true}) |"
        )

    print("\n## Two-people photos (not in the pairwise scores)\n")
    print("A face is right when its cluster's majority scored identity is one of the photo's.\n")
    print("| dataset | faces right / faces in multi-identity photos |")
    print("|---|---|")
    for d in every:
        right, total = multi_identity_hits(d, recluster([lf.face for lf in d.faces]))
        print(f"| {d.name} | {right}/{total} |")

    # Timing only: jittered copies of the real embeddings, one photo per face, so components grow
    # the way a large library's do. The noise keeps copies near their source (about 0.25 apart).
    base = np.stack([lf.face.embedding for d in sets for lf in d.faces])
    jrng = np.random.default_rng(0)
    picks = jrng.integers(0, len(base), args.scale)
    emb = base[picks] + jrng.normal(0, 0.25 / np.sqrt(2 * base.shape[1]), (args.scale, 128))
    big = [FaceVec(f"s{i}", f"a{i}", e.astype(np.float32)) for i, e in enumerate(emb)]
    t0 = time.perf_counter()
    labels = recluster(big)
    took = time.perf_counter() - t0
    print("\n## Recluster run time\n")
    print(
        f"{args.scale} jittered faces (from {len(base)} real ones): {took:.1f} s, "
        f"{len(set(labels.values()))} clusters."
    )


if __name__ == "__main__":
    main()
