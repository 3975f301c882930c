"""How well faces group into people, measured on the labelled face sets in shared/data/faces.

Pipeline per dataset: every image (labelled or not) is loaded upright, downscaled to the server's
preview size and run through `analyze_faces`; usable faces are clustered; then pairwise
precision/recall/F1 are scored over the *scored* faces.

Which faces are scored, and why:
- photos labelled with exactly one identity: only their largest usable face. Such a photo may also
  hold a bystander in the background, whose identity the label does not give;
- everything else (the bystanders, photos labelled with two people such as `obama;biden`, and
  unlabelled photos such as couple.jpg or selfie-many-people.jpg) still goes into the clustering as
  distractors, so a wrong merge through them costs precision, but is not scored pairwise.
  `multi_identity_hits` checks the two-people photos separately.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from math import comb
from pathlib import Path

from PIL import Image, ImageOps

from camroll.people.cluster import THRESHOLD, FaceVec, assign_incremental, recluster

FACES_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces"
DATASETS = ("deepface", "face_recognition")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
# The server analyses the preview rendition, whose longest side is this (camroll.media.previews).
ANALYSIS_PX = 1440


@dataclass(frozen=True)
class PairwiseScores:
    precision: float
    recall: float
    f1: float
    faces: int  # faces scored
    people_found: int  # clusters among the scored faces
    people_true: int  # identities among the scored faces


@dataclass(frozen=True)
class LabelledFace:
    face: FaceVec
    photo: str  # path relative to the dataset folder
    area: int  # box width x height, in analysis pixels
    photo_identities: tuple[str, ...]  # the photo's label; () when unlabelled


@dataclass(frozen=True)
class Dataset:
    name: str
    faces: list[LabelledFace]
    truth: dict[str, str]  # scored face_id -> identity
    photos: int
    photos_without_face: list[str] = field(default_factory=list)  # labelled, no usable face
    photos_with_bystanders: list[str] = field(default_factory=list)  # one identity, 2+ faces


def pairwise_scores(truth: dict[str, str], predicted: dict[str, str]) -> PairwiseScores:
    """Pairwise P/R/F1 over the faces in `truth` (face_id -> identity), given face_id -> cluster.

    A pair is truly positive when both faces share an identity, predicted positive when they share
    a cluster. A scored face missing from `predicted` counts as a cluster of its own.
    """
    pred = {f: predicted.get(f, f"\0missing:{f}") for f in truth}
    both = Counter((truth[f], pred[f]) for f in truth)
    tp = sum(comb(n, 2) for n in both.values())
    pred_pos = sum(comb(n, 2) for n in Counter(pred.values()).values())
    true_pos = sum(comb(n, 2) for n in Counter(truth.values()).values())
    precision = tp / pred_pos if pred_pos else 1.0
    recall = tp / true_pos if true_pos else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseScores(
        precision=precision,
        recall=recall,
        f1=f1,
        faces=len(truth),
        people_found=len(set(pred.values())),
        people_true=len(set(truth.values())),
    )


def load_for_analysis(path: Path) -> Image.Image:
    """The image as the server analyses it: upright, RGB, longest side at most ANALYSIS_PX."""
    with Image.open(path) as raw:
        image = ImageOps.exif_transpose(raw).convert("RGB")
    scale = ANALYSIS_PX / max(image.size)
    if scale < 1:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return image


def photo_labels(name: str, root: Path = FACES_DIR) -> dict[str, tuple[str, ...]]:
    """Every image of a dataset (path relative to its folder) -> its identities; () = unlabelled."""
    folder = root / name
    labels: dict[str, tuple[str, ...]] = {
        p.relative_to(folder).as_posix(): ()
        for p in sorted(folder.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES
    }
    if name == "deepface":
        identities = json.loads((folder / "identities.json").read_text())["identities"]
        for person, files in identities.items():
            for f in files:
                labels[f] = (person,)
    elif name == "face_recognition":
        with (folder / "identities.csv").open(newline="") as fh:
            for row in csv.reader(fh):
                if row and row[0] != "file":
                    labels[row[0]] = tuple(row[1].split(";"))
    else:
        raise ValueError(f"unknown face dataset {name!r}")
    return labels


@cache
def load_dataset(name: str, root: Path = FACES_DIR) -> Dataset:
    """Detect and embed every image of a dataset once per process (analysis is the slow part)."""
    from camroll.analyze.faces import analyze_faces  # heavy: dlib and onnxruntime models

    faces: list[LabelledFace] = []
    truth: dict[str, str] = {}
    missing: list[str] = []
    bystanders: list[str] = []
    labels = photo_labels(name, root)
    for photo, identities in labels.items():
        found = [r for r in analyze_faces(load_for_analysis(root / name / photo)) if r.usable]
        here = [
            LabelledFace(
                face=FaceVec(face_id=f"{photo}#{i}", asset_id=photo, embedding=r.embedding),
                photo=photo,
                area=int(r.box[2]) * int(r.box[3]),
                photo_identities=identities,
            )
            for i, r in enumerate(found)
        ]
        faces.extend(here)
        if identities and not here:
            missing.append(photo)
        if len(identities) == 1 and here:
            if len(here) > 1:
                bystanders.append(photo)
            largest = max(here, key=lambda lf: lf.area)
            truth[largest.face.face_id] = identities[0]
    return Dataset(name, faces, truth, len(labels), missing, bystanders)


def incremental_labels(faces: Iterable[FaceVec], threshold: float = THRESHOLD) -> dict[str, str]:
    """Cluster faces one at a time in the given order, as photos arriving would be."""
    members: dict[str, list[FaceVec]] = {}
    labels: dict[str, str] = {}
    for f in faces:
        person = assign_incremental(f, members, threshold)
        if person is None:
            person = f"p{len(members)}"
            members[person] = []
        members[person].append(f)
        labels[f.face_id] = person
    return labels


def multi_identity_hits(data: Dataset, labels: dict[str, str]) -> tuple[int, int]:
    """(right, total) over the faces of photos labelled with several people: a face is right when
    the identity most of the scored faces of its cluster have is one of its photo's people."""
    votes = Counter((labels[f], identity) for f, identity in data.truth.items())
    majority: dict[str, str] = {}
    for (cluster, identity), _n in votes.most_common():
        majority.setdefault(cluster, identity)
    multi = [lf for lf in data.faces if len(lf.photo_identities) > 1]
    right = sum(majority.get(labels[lf.face.face_id]) in lf.photo_identities for lf in multi)
    return right, len(multi)


def evaluate_dataset(name: str, threshold: float = THRESHOLD, mode: str = "full") -> PairwiseScores:
    """Detect, embed, cluster (mode "full" = `recluster`, "incremental" = one photo at a time in
    file order) and score one dataset: "deepface" or "face_recognition"."""
    data = load_dataset(name)
    vecs = [lf.face for lf in data.faces]
    if mode == "full":
        labels = recluster(vecs, threshold)
    elif mode == "incremental":
        labels = incremental_labels(vecs, threshold)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return pairwise_scores(data.truth, labels)
