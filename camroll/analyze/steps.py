"""The analysis steps, on the one step contract (camroll.pipeline.step): each states its consent
scope, what it reads and writes, and when it is `able_to_run` (the kind of asset, whether there
is anything to read); the runner asks the consent gate. Each runs idempotently: it replaces its
own rows for the asset, so a retried job changes nothing.

Every row a step writes carries its provenance (asset, scope, model, model version).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from camroll.db.models import (
    Asset,
    AssetEmbedding,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    FaceEmbedding,
    FaceExpression,
    HomeLocation,
)
from camroll.pipeline.step import BaseStep, may_use


@dataclass
class Subject:
    """What a step looks at. The image is the upright preview, decoded on first use (`picture`)
    so that a job whose steps are all refused never decodes it; a video's original is fetched
    (decrypted to a private temp file) only if a step asks for it."""

    asset: Asset
    meta: AssetMetadata | None
    image: Image.Image | None
    video_path: Callable[[], Path] | None = None
    load_image: Callable[[], Image.Image | None] | None = None
    faces_found: int | None = None  # set by the faces step when it ran in this job
    new_faces: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    def picture(self) -> Image.Image | None:
        if self.image is None and self.load_image is not None:
            self.image, self.load_image = self.load_image(), None
        return self.image


class Step(BaseStep, ABC):
    name: ClassVar[str]
    scope: ClassVar[str]
    # Granting any of these (again) reruns the step; tags also read the face count.
    reruns_for: ClassVar[frozenset[str]] = frozenset()
    kinds: ClassVar[frozenset[str]] = frozenset({"image", "raw", "video"})

    def able_to_run(self, session: Session, subject: Subject) -> bool:
        """Asked when the job runs, not when it was queued (the runner asks for consent then)."""
        return subject.asset.status == "ready" and subject.asset.kind in self.kinds

    @abstractmethod
    def run(self, session: Session, subject: Subject) -> None: ...


def _provenance(asset: Asset, scope: str, model: tuple[str, str]) -> dict[str, str]:
    return {
        "user_id": asset.user_id,
        "asset_id": asset.id,
        "scope": scope,
        "model": model[0][:60],
        "model_version": model[1][:40],
    }


class FacesStep(Step):
    name = "faces"
    scope = "faces"
    reads = ("preview", "original (videos)")
    writes = ("faces", "face_embeddings", "face_expressions")

    def run(self, session: Session, subject: Subject) -> None:
        from camroll.analyze import faces as fa

        asset = subject.asset
        # A rerun keeps who each face is: the owner's edits and the clustering's choices.
        previous = list(session.scalars(select(Face).where(Face.asset_id == asset.id)))
        _delete_faces(session, asset.id)
        found: list[tuple[float | None, Any, tuple[int, int]]] = []
        if asset.kind == "video" and subject.video_path is not None:
            path = subject.video_path()  # boxes are in upright frame pixels
            found = [(v.at_seconds, v.face, v.frame_size) for v in fa.analyze_video_faces(path)]
        elif (image := subject.picture()) is not None:
            found = [(None, f, image.size) for f in fa.analyze_faces(image)]
        detector = fa.FACE_MODELS["detector"]
        new_ids = []
        for at, f, (w, h) in found:
            x, y, bw, bh = f.box
            face = Face(
                **_provenance(asset, self.scope, _detector_model(f, detector)),
                box_x=x / w,
                box_y=y / h,
                box_w=bw / w,
                box_h=bh / h,
                landmarks=json.dumps(
                    [[round(px / w, 5), round(py / h, 5)] for px, py in f.landmarks]
                ),
                score=float(f.score),
                sharpness=float(f.sharpness),
                usable=bool(f.usable),
                reject_reason=f.reject_reason,
                at_seconds=at,
            )
            same = _same_face(face, previous)
            if same is not None:
                face.person_id, face.assigned_by = same.person_id, same.assigned_by
                face.banned_people = same.banned_people
            session.add(face)
            session.flush()
            session.add(
                FaceEmbedding(
                    **_provenance(asset, self.scope, fa.FACE_MODELS["embedding"]),
                    face_id=face.id,
                    vector=np.asarray(f.embedding, dtype="<f4").tobytes(),
                )
            )
            session.add(
                FaceExpression(
                    **_provenance(asset, self.scope, fa.FACE_MODELS["expression"]),
                    face_id=face.id,
                    expression=f.expression,
                    smile=float(f.smile),
                    scores=json.dumps(
                        {k: round(float(v), 4) for k, v in f.expression_scores.items()}
                    ),
                )
            )
            if f.usable and face.person_id is None:
                new_ids.append(face.id)
        subject.faces_found = len(found)
        # Joining people happens after this transaction commits, in a short one of its own
        # (it locks the owner's people; holding that through tagging would serialise workers).
        subject.new_faces = new_ids


def _same_face(face: Face, previous: list[Face]) -> Face | None:
    """The earlier row for the same face: same frame, boxes overlapping by IoU >= 0.5."""

    def iou(a: Face, b: Face) -> float:
        x1, y1 = max(a.box_x, b.box_x), max(a.box_y, b.box_y)
        x2 = min(a.box_x + a.box_w, b.box_x + b.box_w)
        y2 = min(a.box_y + a.box_h, b.box_y + b.box_h)
        inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        union = a.box_w * a.box_h + b.box_w * b.box_h - inter
        return inter / union if union > 0 else 0.0

    best = max(
        (p for p in previous if p.person_id and p.at_seconds == face.at_seconds),
        key=lambda p: iou(face, p),
        default=None,
    )
    return best if best is not None and iou(face, best) >= 0.5 else None


def _detector_model(f: Any, default: tuple[str, str]) -> tuple[str, str]:
    from camroll.analyze import faces as fa

    fallback = fa.FACE_MODELS.get("fallback_detector")
    return fallback if fallback and f.detector != "retinaface" else default


def _delete_faces(session: Session, asset_id: str) -> None:
    for model in (FaceExpression, FaceEmbedding, Face):
        session.execute(delete(model).where(model.asset_id == asset_id))


class TagsStep(Step):
    name = "tags"
    scope = "content"
    reruns_for = frozenset({"content", "faces"})
    reads = ("preview", "asset_metadata", "faces (count, with the faces scope)")
    writes = ("asset_tags", "asset_quality", "asset_embeddings")
    uses = ("faces",)  # the face count is an optional input: read only while faces is granted

    def run(self, session: Session, subject: Subject) -> None:
        from camroll.analyze import quality as qa
        from camroll.analyze import similar
        from camroll.analyze import tags as ta

        asset, image = subject.asset, subject.picture()
        if image is None:
            return
        session.execute(delete(AssetTag).where(AssetTag.asset_id == asset.id))
        session.execute(delete(AssetQuality).where(AssetQuality.asset_id == asset.id))
        faces = _face_count(session, subject) if may_use("faces") else 0
        meta = subject.meta
        hints = ta.TagHints(
            has_camera_exif=bool(meta and (meta.make or meta.model_name)),
            width=meta.width if meta else None,
            height=meta.height if meta else None,
            local_hour=_local_hour(meta),
        )
        for t in ta.tag_image(image, faces=faces, hints=hints):
            # A tag that leaned on the face count needs both scopes: revoking either deletes it.
            uses_faces = any(src.startswith("faces:") for src in t.sources)
            session.add(
                AssetTag(
                    **_provenance(
                        asset, "content+faces" if uses_faces else "content", ta.TAGS_MODEL
                    ),
                    label=t.label,
                    score=float(t.score),
                    sources=json.dumps(list(t.sources)),
                )
            )
        _clip(session, asset, image, self.scope)
        q = qa.assess(image)
        h = similar.phash(image)
        session.add(
            AssetQuality(
                **_provenance(asset, self.scope, qa.QUALITY_MODEL),
                sharpness=float(q.sharpness),
                exposure=float(q.exposure),
                score=float(q.score),
                phash=h,
                duplicate_group=None,
                is_best=True,
            )
        )


def _face_count(session: Session, subject: Subject) -> int:
    """The faces the faces step found in this job, or those stored by an earlier one."""
    if subject.faces_found is not None:
        return subject.faces_found
    query = select(func.count()).where(Face.asset_id == subject.asset.id)
    return session.scalar(query) or 0


# A CLIP vocabulary label counts as a tag at this softmax probability (over the vocabulary).
CLIP_TAG_MIN = 0.3


def _clip(session: Session, asset: Asset, image: Image.Image, scope: str) -> None:
    """With an optional CLIP model installed: zero-shot tags over the camroll vocabulary, and
    the image embedding that search by description compares queries with."""
    from camroll.analyze.vocabulary import VOCABULARY
    from camroll.inference.registry import get_clip

    session.execute(delete(AssetEmbedding).where(AssetEmbedding.asset_id == asset.id))
    clip = get_clip()
    if clip is None:
        return
    model = (clip.name, clip.version)
    vector = clip.encode_images([image])
    session.add(
        AssetEmbedding(
            **_provenance(asset, scope, model), vector=np.asarray(vector[0], "<f4").tobytes()
        )
    )
    have = {t.label for t in session.scalars(select(AssetTag).where(AssetTag.asset_id == asset.id))}
    for label, p in clip.zero_shot_tags(vector, list(VOCABULARY))[0]:
        if p >= CLIP_TAG_MIN and label not in have:
            session.add(
                AssetTag(
                    **_provenance(asset, scope, model),
                    label=label,
                    score=float(p),
                    sources=json.dumps([f"clip:{label}"]),
                )
            )


def _local_hour(meta: AssetMetadata | None) -> int | None:
    if meta is None or not meta.taken_at_local:
        return None
    try:
        return datetime.fromisoformat(meta.taken_at_local).hour
    except ValueError:
        return None


class PlacesStep(Step):
    name = "places"
    scope = "places"
    reads = ("asset_metadata (GPS)", "home_locations")
    writes = ("asset_places",)

    def able_to_run(self, session: Session, subject: Subject) -> bool:
        meta = subject.meta
        return (
            super().able_to_run(session, subject)
            and meta is not None
            and meta.latitude is not None
            and meta.longitude is not None
        )

    def run(self, session: Session, subject: Subject) -> None:
        from camroll.places.geocode import GEOCODER_MODEL, reverse_geocode

        asset, meta = subject.asset, subject.meta
        if meta is None or meta.latitude is None or meta.longitude is None:
            return
        session.execute(delete(AssetPlace).where(AssetPlace.asset_id == asset.id))
        place = reverse_geocode([(meta.latitude, meta.longitude)])[0]
        if place is None:
            return
        session.add(
            AssetPlace(
                **_provenance(asset, self.scope, GEOCODER_MODEL),
                city=place.city,
                subregion=place.subregion or None,
                region=place.region or None,
                country=place.country or None,
                country_code=place.country_code or None,
                distance_to_place_km=round(place.distance_km, 2),
                distance_from_home_km=_from_home(session, asset.user_id, meta),
            )
        )


def _from_home(session: Session, user_id: str, meta: AssetMetadata) -> float | None:
    """Distance from the nearest known home; None until homes are inferred (the library
    refresh after each batch fills it in)."""
    from camroll.places.home import Home, distance_from_home

    homes = [
        Home(h.latitude, h.longitude, h.days, h.photos, h.share)
        for h in session.scalars(select(HomeLocation).where(HomeLocation.user_id == user_id))
    ]
    if not homes or meta.latitude is None or meta.longitude is None:
        return None
    d = distance_from_home(meta.latitude, meta.longitude, homes)
    return round(d, 2) if d is not None else None


STEPS: tuple[Step, ...] = (FacesStep(), TagsStep(), PlacesStep())
