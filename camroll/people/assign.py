"""People in the database: new faces join a person as they arrive, a periodic recluster
tidies up, and the owner's edits (name, birthday, hidden, merge, move) survive both.

The clustering itself (`camroll.people.cluster`) only sees embeddings and constraints; this
module turns rows into those and back.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, FaceEmbedding, Person, User
from camroll.people.cluster import FaceVec, assign_batch, recluster, stable_labels

CLUSTER_MODEL = ("camroll-people-cluster", "1")
_user_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)


def _lock_user(session: Session, user_id: str) -> threading.Lock:
    """Serialise people changes per user: a thread lock in this process, and on PostgreSQL a
    row lock on the user, so workers on other machines wait too."""
    session.execute(select(User.id).where(User.id == user_id).with_for_update())
    return _user_locks[user_id]


def _banned(face: Face) -> frozenset[str]:
    return frozenset(json.loads(face.banned_people)) if face.banned_people else frozenset()


def _vec(face: Face, vector: bytes) -> FaceVec:
    return FaceVec(
        face_id=face.id,
        asset_id=face.asset_id,
        embedding=np.frombuffer(vector, dtype="<f4"),
        locked_person=face.person_id if face.assigned_by == "owner" else None,
        banned_people=_banned(face),
    )


def _usable_faces(session: Session, user_id: str) -> list[tuple[Face, bytes]]:
    rows = session.execute(
        select(Face, FaceEmbedding.vector)
        .join(FaceEmbedding, FaceEmbedding.face_id == Face.id)
        .where(Face.user_id == user_id, Face.usable.is_(True))
    ).all()
    return [(f, v) for f, v in rows]


def new_person(session: Session, user_id: str, face: Face | None) -> Person:
    person = Person(
        user_id=user_id,
        asset_id=face.asset_id if face else None,
        scope="faces",
        model=CLUSTER_MODEL[0],
        model_version=CLUSTER_MODEL[1],
        cover_face_id=face.id if face else None,
        face_count=0,
    )
    session.add(person)
    session.flush()
    return person


def assign_new_faces(session: Session, user_id: str, face_ids: list[str]) -> None:
    """Place new usable faces: the part of the library they can reach is reclustered as a full
    recluster would (`assign_batch`), so people do not depend on the order photos arrive in."""
    if not face_ids:
        return
    with _lock_user(session, user_id):
        rows = _usable_faces(session, user_id)
        by_id = {f.id: f for f, _ in rows}
        vecs = [_vec(f, v) for f, v in rows]
        wanted = set(face_ids)
        current = {f.id: f.person_id for f, _ in rows if f.person_id and f.id not in wanted}
        labels = assign_batch(vecs, current, face_ids)
        existing = set(session.scalars(select(Person.id).where(Person.user_id == user_id)))
        fresh: dict[str, str] = {}
        touched: set[str] = set()
        for face_id, label in labels.items():
            face = by_id[face_id]
            if label not in existing:
                if label not in fresh:
                    fresh[label] = new_person(session, user_id, face).id
                label = fresh[label]
            if face.person_id != label:
                if face.person_id:
                    touched.add(face.person_id)
                face.person_id = label
            touched.add(label)
        session.flush()
        refresh_people(session, user_id, touched)


def recluster_user(session: Session, user_id: str) -> dict[str, int]:
    """Full recluster of the owner's faces. Faces the owner placed stay put; ids of people
    that keep their faces stay the same, so names and birthdays stay attached."""
    with _lock_user(session, user_id):
        rows = _usable_faces(session, user_id)
        by_id = {f.id: f for f, _ in rows}
        old = {f.id: f.person_id for f, _ in rows if f.person_id}
        vecs = [_vec(f, v) for f, v in rows]
        labels = stable_labels(recluster(vecs), old, vecs)
        existing = set(session.scalars(select(Person.id).where(Person.user_id == user_id)))
        fresh: dict[str, str] = {}
        moved = 0
        for face_id, label in labels.items():
            face = by_id[face_id]
            if label not in existing:
                if label not in fresh:
                    fresh[label] = new_person(session, user_id, face).id
                label = fresh[label]
            if face.person_id != label:
                face.person_id = label
                moved += 1
        session.flush()
        refresh_people(session, user_id, None)
        return {"faces": len(rows), "moved": moved, "new_people": len(fresh)}


def refresh_people(session: Session, user_id: str, person_ids: set[str] | None) -> None:
    """Face counts and covers (the sharpest, largest face); drop people left with no faces
    unless the owner named them."""
    q = select(Person).where(Person.user_id == user_id)
    if person_ids is not None:
        q = q.where(Person.id.in_(person_ids))
    for person in session.scalars(q):
        faces = list(
            session.scalars(
                select(Face).where(
                    Face.user_id == user_id,
                    Face.person_id == person.id,
                    # Photos in the trash count for no one and are no one's cover.
                    Face.asset_id.not_in(
                        select(Asset.id).where(Asset.user_id == user_id, Asset.status == "trashed")
                    ),
                )
            )
        )
        if not faces:
            # Kept while its faces wait in the trash: a restore brings the person back.
            in_trash = session.scalar(select(Face.id).where(Face.person_id == person.id).limit(1))
            if person.name is None and not person.birthday and in_trash is None:
                session.delete(person)
            else:
                person.face_count, person.cover_face_id, person.asset_id = 0, None, None
            continue
        best = max(faces, key=lambda f: (f.usable, f.box_w * f.box_h * (f.sharpness or 0.0)))
        person.face_count = len(faces)
        person.cover_face_id, person.asset_id = best.id, best.asset_id
    session.flush()
