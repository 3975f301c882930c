"""People in the database: new faces join a person as they arrive, a periodic recluster
tidies up, and the owner's edits (name, birthday, hidden, merge, move) survive both.

The clustering itself (`camroll.people.cluster`) only sees embeddings and constraints; this
module turns rows into those and back.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, FaceEmbedding, Person, User
from camroll.people.cluster import (
    THRESHOLD,
    FaceVec,
    assign_incremental,
    recluster,
    relabel_reached,
    stable_labels,
)
from camroll.vectors.index import INDEXES, Source, VectorIndex

CLUSTER_MODEL = ("camroll-people-cluster", "1")
_user_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)

# New faces whose "closer than THRESHOLD" components hold at most this many faces recluster
# those components (the result a full recluster would give); beyond, each joins the person of
# its nearest faces by the same average-linkage rule, so a face costs the same at 100k faces.
REACH_LIMIT = 500
# Nearest faces whose people are candidates for a new face, beyond REACH_LIMIT.
CANDIDATES_K = 32


def _face_state(session: Session, user_id: str) -> tuple[int, datetime | None]:
    count, newest = session.execute(
        select(func.count(), func.max(FaceEmbedding.created_at))
        .select_from(FaceEmbedding)
        .join(Face, Face.id == FaceEmbedding.face_id)
        .where(Face.user_id == user_id, Face.usable.is_(True))
    ).one()
    return int(count or 0), newest


def _face_rows(
    session: Session, user_id: str, since: datetime | None
) -> list[tuple[str, bytes, datetime]]:
    q = (
        select(FaceEmbedding.face_id, FaceEmbedding.vector, FaceEmbedding.created_at)
        .join(Face, Face.id == FaceEmbedding.face_id)
        .where(Face.user_id == user_id, Face.usable.is_(True))
    )
    if since is not None:
        q = q.where(FaceEmbedding.created_at >= since)
    return [(i, v, c) for i, v, c in session.execute(q)]


# Usable face embeddings, per owner (camroll.vectors.index).
FACE_VECTORS = Source("faces", "l2", _face_state, _face_rows)


def face_index(session: Session, user_id: str) -> VectorIndex:
    return INDEXES.get(session, user_id, FACE_VECTORS)


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


def _faces(session: Session, user_id: str, ids: Iterable[str]) -> dict[str, Face]:
    """Face rows by id (no embeddings: those come from the index, already decrypted)."""
    ids = list(ids)
    out: dict[str, Face] = {}
    for s in range(0, len(ids), 500):
        chunk = ids[s : s + 500]
        out.update(
            (f.id, f)
            for f in session.scalars(
                select(Face).where(Face.user_id == user_id, Face.id.in_(chunk))
            )
        )
    return out


def _reach(
    session: Session, user_id: str, index: VectorIndex, start: list[str], limit: int
) -> list[str] | None:
    """The faces in the components of `start` (pairs closer than THRESHOLD, each locked person's
    faces tied together; `camroll.people.cluster.reachable`), searched outward through the
    index; None once more than `limit` are found."""
    locked: dict[str, list[str]] = defaultdict(list)
    lock_of: dict[str, str] = {}
    for face_id, person_id in session.execute(
        select(Face.id, Face.person_id).where(
            Face.user_id == user_id,
            Face.usable.is_(True),
            Face.assigned_by == "owner",
            Face.person_id.is_not(None),
        )
    ):
        if face_id in index.pos:
            locked[person_id].append(face_id)
            lock_of[face_id] = person_id
    seen = set(start)
    frontier = list(start)
    while frontier:
        found: set[str] = set()
        # A few faces at a time, so a large component is given up on early.
        for s in range(0, len(frontier), 32):
            chunk = frontier[s : s + 32]
            for hits in index.within(index.vectors(chunk), THRESHOLD):
                found.update(face_id for face_id, _ in hits)
            for face_id in chunk:
                if face_id in lock_of:
                    found.update(locked[lock_of[face_id]])
            if len(seen | found) > limit:
                return None
        frontier = [f for f in found if f not in seen]
        seen.update(frontier)
    return sorted(seen, key=index.pos.__getitem__)


def _vecs(faces: list[Face], index: VectorIndex) -> list[FaceVec]:
    """Faces for the clustering, their embeddings from the index (already decrypted)."""
    embs = index.vectors([f.id for f in faces])
    return [
        FaceVec(
            face_id=f.id,
            asset_id=f.asset_id,
            embedding=e,
            locked_person=f.person_id if f.assigned_by == "owner" else None,
            banned_people=_banned(f),
        )
        for f, e in zip(faces, embs, strict=True)
    ]


def _join_nearest(
    session: Session, user_id: str, index: VectorIndex, new_ids: list[str]
) -> dict[str, str]:
    """Each new face joins, of the people its `CANDIDATES_K` nearest faces belong to, the one
    with the smallest average distance under THRESHOLD (`assign_incremental`), or starts a
    new person ("new:i"). Only those people's faces are read."""
    labels: dict[str, str] = {}
    members: dict[str, list[FaceVec]] = {}
    new_rows = _faces(session, user_id, new_ids)
    for n, face_id in enumerate(new_ids):
        (face,) = _vecs([new_rows[face_id]], index)
        near = [i for i, d in index.nearest(face.embedding, CANDIDATES_K + 1)[0] if d < THRESHOLD]
        people = {
            p
            for p in session.scalars(
                select(Face.person_id).where(Face.user_id == user_id, Face.id.in_(near))
            )
            if p
        }
        for person_id in people - set(members):
            # Two columns, not ORM rows: a person may be in 16k photos.
            pairs = [
                (i, a)
                for i, a in session.execute(
                    select(Face.id, Face.asset_id).where(
                        Face.user_id == user_id, Face.person_id == person_id, Face.usable.is_(True)
                    )
                )
                if i in index.pos and i not in new_rows
            ]
            embs = index.vectors([i for i, _ in pairs])
            members[person_id] = [FaceVec(i, a, e) for (i, a), e in zip(pairs, embs, strict=True)]
        # People started by this batch are candidates too (say, a second face of one photo).
        fresh = {label for label in labels.values() if label.startswith("new:")}
        person = assign_incremental(face, {p: members[p] for p in people | fresh})
        label = person if person is not None else f"new:{n}"
        labels[face_id] = label
        members.setdefault(label, []).append(face)
    return labels


def assign_new_faces(session: Session, user_id: str, face_ids: list[str]) -> None:
    """Place new usable faces through the owner's face index. The part of the library they can
    reach (up to REACH_LIMIT faces) is reclustered as a full recluster would, so people do not
    depend on the order photos arrive in; in larger components each joins its nearest person."""
    if not face_ids:
        return
    with _lock_user(session, user_id):
        index = face_index(session, user_id)
        new = [f for f in face_ids if f in index.pos]  # usable, with an embedding
        if not new:
            return
        reached = _reach(session, user_id, index, new, REACH_LIMIT)
        if reached is not None:
            rows = _faces(session, user_id, reached)
            vecs = _vecs([rows[i] for i in reached if i in rows], index)
            wanted = set(new)
            current = {i: f.person_id for i, f in rows.items() if f.person_id and i not in wanted}
            labels = relabel_reached(vecs, current)
        else:
            labels = _join_nearest(session, user_id, index, new)
        apply_labels(session, user_id, labels, _faces(session, user_id, labels))


def apply_labels(
    session: Session, user_id: str, labels: dict[str, str], by_id: dict[str, Face]
) -> None:
    """Write face_id -> person id or fresh label: fresh labels become new people, and the
    people who gained or lost faces get their counts and covers refreshed."""
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
        index = face_index(session, user_id)
        rows = [
            f
            for f in session.scalars(
                select(Face).where(Face.user_id == user_id, Face.usable.is_(True))
            )
            if f.id in index.pos
        ]
        by_id = {f.id: f for f in rows}
        old = {f.id: f.person_id for f in rows if f.person_id}
        vecs = _vecs(rows, index)
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


def refresh_people(
    session: Session,
    user_id: str,
    person_ids: set[str] | None,
    assets: Collection[str] | None = None,
) -> None:
    """Face counts and covers (the sharpest, largest face); drop people left with no faces
    unless the owner named them. Counted and chosen in SQL, so a person in 16k photos costs
    two queries, not 16k rows.

    `assets`: only these photos' faces joined the people (a batch of analysis). The cover is
    then the better of the current one and theirs, read through the (person, photo) index,
    instead of sorting all of a person's faces; a cover that left falls back to the full
    choice. The count is read from the index either way."""
    q = select(Person).where(Person.user_id == user_id)
    if person_ids is not None:
        q = q.where(Person.id.in_(person_ids))
    # Photos in the trash count for no one and are no one's cover.
    trashed = select(Asset.id).where(Asset.user_id == user_id, Asset.status == "trashed")
    for person in session.scalars(q):
        live = (Face.user_id == user_id, Face.person_id == person.id, Face.asset_id.not_in(trashed))
        count = session.scalar(select(func.count()).select_from(Face).where(*live)) or 0
        if not count:
            # Kept while its faces wait in the trash: a restore brings the person back.
            in_trash = session.scalar(select(Face.id).where(Face.person_id == person.id).limit(1))
            if person.name is None and not person.birthday and in_trash is None:
                session.delete(person)
            else:
                person.face_count, person.cover_face_id, person.asset_id = 0, None, None
            continue
        best = _better_cover(session, person, live, assets) if assets is not None else None
        if best is None:
            best = session.execute(
                select(Face.id, Face.asset_id)
                .where(*live)
                .order_by(
                    Face.usable.desc(),
                    (Face.box_w * Face.box_h * func.coalesce(Face.sharpness, 0.0)).desc(),
                    Face.id,
                )
                .limit(1)
            ).one()
        person.face_count = count
        person.cover_face_id, person.asset_id = best.id, best.asset_id
    session.flush()


def _better_cover(
    session: Session, person: Person, live: tuple[Any, ...], assets: Collection[str]
) -> Any | None:
    """The best of the person's current cover and their faces in `assets`, in the full choice's
    order (usable, then box area x sharpness, then id); None when the cover is gone."""
    if person.cover_face_id is None or person.asset_id is None:
        return None
    rows = session.execute(
        select(Face.id, Face.asset_id, Face.usable, Face.box_w, Face.box_h, Face.sharpness).where(
            *live, Face.asset_id.in_({*assets, person.asset_id})
        )
    ).all()
    if not any(r.id == person.cover_face_id for r in rows):
        return None
    return min(
        rows, key=lambda r: (not r.usable, -(r.box_w * r.box_h * (r.sharpness or 0.0)), r.id)
    )
