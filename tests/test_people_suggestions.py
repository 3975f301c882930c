"""Merge suggestions in the database, on SQLite and PostgreSQL: the rows, the cannot-link a "no"
leaves behind, and the recluster honouring both answers.

The embeddings are made up (the subject is what the database and the recluster do with the
owner's answers; real faces go through the browser tests in test_web_pages.py): each person is a
point in the 128-d space and their faces lie 0.2 around it, so two people 0.3 apart are, to the
clustering, one person it happened to split, and a full recluster joins them unless told not to.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.accounts import create_user
from camroll.db.engine import session_scope
from camroll.db.models import Asset, Face, FaceEmbedding, Person, PersonRejection
from camroll.people.assign import new_person, recluster_user, refresh_people
from camroll.people.review import confirm, reject, suggestions

RNG = np.random.default_rng(7)
PROVENANCE = {"scope": "faces", "model": "test-fixture", "model_version": "1"}


def _point(offset: np.ndarray | None = None) -> np.ndarray:
    base = RNG.normal(size=128)
    base /= np.linalg.norm(base)
    return base if offset is None else offset + 0.3 * base


def _face(s: Session, user_id: str, person: Person, centre: np.ndarray) -> None:
    asset = Asset(user_id=user_id, checksum=RNG.bytes(32).hex(), size=1, filename="x.jpg")
    asset.status, asset.kind = "ready", "image"
    s.add(asset)
    s.flush()
    noise = RNG.normal(size=128)
    vec = (centre + 0.2 * noise / np.linalg.norm(noise)).astype("<f4")
    face = Face(
        user_id=user_id,
        asset_id=asset.id,
        box_x=0.1,
        box_y=0.1,
        box_w=0.3,
        box_h=0.3,
        landmarks="[]",
        score=0.99,
        sharpness=100.0,
        usable=True,
        person_id=person.id,
        **PROVENANCE,
    )
    s.add(face)
    s.flush()
    s.add(
        FaceEmbedding(
            user_id=user_id, asset_id=asset.id, face_id=face.id, vector=vec.tobytes(), **PROVENANCE
        )
    )
    s.flush()


def _library(email: str) -> tuple[str, list[str]]:
    """Two look-alike pairs (each one person split in two) and a stranger: person ids."""
    with session_scope() as s:
        user = create_user(s, email)
        ids = []
        anna, bea = _point(), _point()
        for centre in (anna, _point(anna), bea, _point(bea), _point()):
            person = new_person(s, user.id, None)
            for _ in range(3):
                _face(s, user.id, person, centre)
            ids.append(person.id)
        refresh_people(s, user.id, None)
        return user.id, ids


def _person_of_faces(user_id: str) -> dict[str, set[str]]:
    with session_scope() as s:
        out: dict[str, set[str]] = {}
        for face in s.scalars(select(Face).where(Face.user_id == user_id)):
            out.setdefault(face.person_id, set()).add(face.id)
        return out


def test_suggestions_answers_and_the_recluster(env: dict) -> None:
    control, _ = _library("control@example.org")
    user_id, (a1, a2, b1, b2, stranger) = _library("owner@example.org")

    with session_scope() as s:
        found = {frozenset((p.a.id, p.b.id)): p for p in suggestions(s, user_id)}
    assert set(found) == {frozenset((a1, a2)), frozenset((b1, b2))}  # never the stranger
    assert all(0.5 < p.confidence <= 1.0 for p in found.values())

    # Left alone, a full recluster joins each split pair: what a "no" must prevent.
    with session_scope() as s:
        recluster_user(s, control)
    assert len(_person_of_faces(control)) == 3

    with session_scope() as s:
        assert reject(s, user_id, a2, a1) is not None
        merged = confirm(s, user_id, b1, b2)
        assert merged is not None and merged.face_count == 6
    with session_scope() as s:
        rows = s.scalars(select(PersonRejection).where(PersonRejection.user_id == user_id)).all()
        assert [(r.person_a, r.person_b) for r in rows] == [tuple(sorted((a1, a2)))]
        assert suggestions(s, user_id) == []
        recluster_user(s, user_id)
    after = _person_of_faces(user_id)
    assert len(after[a1]) == 3 and len(after[a2]) == 3  # still two people
    assert len(after[merged.id]) == 6 and len(after) == 4  # still one person
    with session_scope() as s:
        assert suggestions(s, user_id) == []
        # Another owner's ids are unknown here: nothing happens, the API answers 404.
        assert reject(s, control, a1, a2) is None and confirm(s, control, a1, a2) is None
        # The rejection goes with its people (revoking faces deletes people).
        s.delete(s.get(Person, a1))
        s.flush()
        assert (
            s.scalars(select(PersonRejection).where(PersonRejection.user_id == user_id)).all() == []
        )
    assert stranger in after
