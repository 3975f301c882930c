""" "Is this the same person?": pairs of people whose faces are close enough that they are
probably one person the clustering kept apart, with a calibrated confidence.

The rule (linkage, cutoff, confidence curve) was chosen by measurement on the shared labelled
face sets: `bench/people_suggestions.py` prints the numbers, `bench/RESULTS.md` records them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from camroll.people.cluster import FaceVec

# Suggest pairs whose root-mean-square face distance is below this (dlib 128-d space). The band
# above the clustering's own threshold is where the splits it leaves lie: with issue 13's
# average linkage < 0.60, 0.64 finds 10 of glint-24's 19 remaining splits, 10 of 17 right, and
# suggests one wrong pair on deepface and none on face_recognition.
CUTOFF: float = 0.64
# Logistic confidence over the rms distance, fitted on the three sets pooled (see module doc).
CONF_K: float = 40.3
CONF_MID: float = 0.630
# Each person is summarised by at most this many faces (their mean and spread), so a large
# library costs O(people^2 x 128), never O(faces^2).
_SAMPLE = 200


@dataclass(frozen=True)
class Suggestion:
    person_a: str
    person_b: str
    distance: float
    confidence: float


def confidence(distance: float) -> float:
    return 1.0 / (1.0 + math.exp(CONF_K * (distance - CONF_MID)))


def _summary(faces: Sequence[FaceVec]) -> tuple[np.ndarray, float]:
    emb = np.stack([np.asarray(f.embedding, dtype=np.float64).ravel() for f in faces[:_SAMPLE]])
    centre = emb.mean(0)
    spread = float(((emb - centre) ** 2).sum(1).mean())
    return centre, spread


def linkage_distances(
    members: Mapping[str, Sequence[FaceVec]], linkage: str = "rms"
) -> dict[tuple[str, str], float]:
    """Distance between every two people (keys sorted, a < b) that could be one person: two
    people with faces in one photo never are.

    rms: the root of the mean squared distance between their faces, which is exactly
    |mean a - mean b|^2 + spread a + spread b; single: the closest two faces; average: the mean
    distance (the clustering's own linkage). The bench compares them; the product uses rms.
    """
    ids = sorted(p for p, faces in members.items() if faces)
    assets = {p: {f.asset_id for f in members[p]} for p in ids}
    out: dict[tuple[str, str], float] = {}
    if linkage == "rms":
        summaries = [_summary(members[p]) for p in ids]
        centres = np.stack([c for c, _ in summaries]) if ids else np.zeros((0, 128))
        spreads = np.array([s for _, s in summaries])
        sq = (centres * centres).sum(1)
        d2 = sq[:, None] + sq[None, :] - 2 * centres @ centres.T
        d2 = np.maximum(d2, 0) + spreads[:, None] + spreads[None, :]
        for i, a in enumerate(ids):
            for j in range(i + 1, len(ids)):
                b = ids[j]
                if not assets[a] & assets[b]:
                    out[(a, b)] = float(math.sqrt(d2[i, j]))
        return out
    mats = {
        p: np.stack([np.asarray(f.embedding, dtype=np.float64) for f in members[p]]) for p in ids
    }
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if assets[a] & assets[b]:
                continue
            diff = mats[a][:, None, :] - mats[b][None, :, :]
            d = np.sqrt((diff * diff).sum(-1))
            out[(a, b)] = float(d.min() if linkage == "single" else d.mean())
    return out


def suggest(
    members: Mapping[str, Sequence[FaceVec]],
    rejected: set[frozenset[str]] = frozenset(),  # type: ignore[assignment]
    cutoff: float = CUTOFF,
) -> list[Suggestion]:
    """Pairs below the cutoff that the owner has not rejected, most likely first."""
    found = [
        Suggestion(a, b, round(d, 4), round(confidence(d), 3))
        for (a, b), d in linkage_distances(members, "rms").items()
        if d < cutoff and frozenset((a, b)) not in rejected
    ]
    return sorted(found, key=lambda s: (s.distance, s.person_a, s.person_b))


def fit_logistic(x: np.ndarray, y: np.ndarray, steps: int = 200) -> tuple[float, float]:
    """(k, midpoint) of p = 1 / (1 + exp(k (x - midpoint))) by Newton's method (for the bench)."""
    w = np.array([0.0, 0.0])  # p = sigmoid(w0 + w1 x)
    design = np.stack([np.ones_like(x), x], 1)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(design @ w)))
        grad = design.T @ (y - p)
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-6 * np.eye(2)
        w = w + np.linalg.solve(hess, grad)
    return float(-w[1]), float(-w[0] / w[1])
