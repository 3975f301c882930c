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
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, FaceEmbedding, Person, User
from camroll.db.plans import by_row
from camroll.people.cluster import (
    THRESHOLD,
    FaceVec,
    _distances,
    is_fresh,
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
# A candidate person with more usable faces is first compared through a random sample of this
# many, and read whole only when the sample cannot decide: within MARGIN_Z standard errors
# (the sample's) of the threshold or of a rival person's average.
SAMPLE = 512
MARGIN_Z = 6.0


def _face_state(session: Session, user_id: str) -> tuple[int, datetime | None]:
    # Every embedding of the owner, usable or not: read from the (user_id, created_at) index
    # alone, where a join to faces for `usable` visited every face (200 ms at 100k faces).
    count, newest = session.execute(
        select(func.count(), func.max(FaceEmbedding.created_at)).where(
            FaceEmbedding.user_id == user_id
        )
    ).one()
    return int(count or 0), newest


def _face_rows(
    session: Session, user_id: str, since: datetime | None
) -> list[tuple[str, bytes | None, datetime]]:
    """The owner's embeddings created at or after `since`; those of unusable faces are counted
    (None), not indexed."""
    q = (
        select(FaceEmbedding.face_id, FaceEmbedding.vector, FaceEmbedding.created_at, Face.usable)
        .join(Face, Face.id == FaceEmbedding.face_id)
        .where(FaceEmbedding.user_id == user_id)
    )
    if since is not None:
        q = q.where(FaceEmbedding.created_at >= since)
    return [(i, v if usable else None, c) for i, v, c, usable in session.execute(q)]


# Usable face embeddings, per owner (camroll.vectors.index).
FACE_VECTORS = Source("faces", "l2", _face_state, _face_rows)


def face_index(session: Session, user_id: str) -> VectorIndex:
    return INDEXES.get(session, user_id, FACE_VECTORS)


def _owned(user_id: str) -> ColumnElement[bool]:
    """The owner's faces, as a condition checked on rows found by id or photo: SQLite without
    statistics otherwise walks `ix_faces_user_id` (every face of the owner) to find a few ids,
    200-650 ms a query at 100k faces; `by_row` keeps it off that index."""
    return by_row(Face.user_id) == user_id


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
            for f in session.scalars(select(Face).where(_owned(user_id), Face.id.in_(chunk)))
        )
    return out


def _reach(
    session: Session, user_id: str, index: VectorIndex, start: list[str], limit: int
) -> list[str] | None:
    """The faces in the components of `start` (pairs closer than THRESHOLD, each locked person's
    faces tied together; `camroll.people.cluster.reachable`), searched outward through the
    index; None once more than `limit` are found.

    Which faces the owner pinned is asked of the faces reached, a chunk at a time (by primary
    key), not of the whole library: that query read every placed face (150 ms at 100k)."""
    locked: dict[str, list[str]] = {}
    lock_of: dict[str, str] = {}
    asked: set[str] = set()

    def learn_pins(face_ids: list[str]) -> bool:
        """Record which of `face_ids` are pinned, with all faces pinned to their people;
        False when one such person alone holds more than `limit` faces."""
        ids = [f for f in face_ids if f not in asked]
        asked.update(ids)
        people: set[str] = set()
        for s in range(0, len(ids), 500):
            people.update(
                p
                for p in session.scalars(
                    select(Face.person_id).where(
                        _owned(user_id),
                        Face.id.in_(ids[s : s + 500]),
                        Face.assigned_by == "owner",
                        Face.person_id.is_not(None),
                    )
                )
                if p is not None
            )
        for person_id in people - set(locked):
            pinned = session.scalars(
                select(Face.id)
                .where(
                    Face.user_id == user_id,
                    Face.person_id == person_id,
                    Face.usable.is_(True),
                    Face.assigned_by == "owner",
                )
                .limit(limit + 1)
            ).all()
            if len(pinned) > limit:
                return False
            locked[person_id] = [f for f in pinned if f in index.pos]
            for f in locked[person_id]:
                lock_of[f] = person_id
            asked.update(pinned)
        return True

    seen = set(start)
    frontier = list(start)
    while frontier:
        found: set[str] = set()
        # A few faces at a time, so a large component is given up on early.
        for s in range(0, len(frontier), 32):
            chunk = frontier[s : s + 32]
            for hits in index.within(index.vectors(chunk), THRESHOLD):
                found.update(face_id for face_id, _ in hits)
            if len(seen | found) > limit or not learn_pins(chunk):
                return None
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


def _members(
    session: Session, user_id: str, person_id: str, index: VectorIndex, limit: int | None
) -> tuple[list[str], bool]:
    """A person's usable faces in the index: all of them, or the first `limit` by asset id
    (random: ids are uuid4), read in that order from the (user_id, person_id, asset_id) index.
    Also whether that is all of them."""
    q = (
        select(Face.id)
        .where(Face.user_id == user_id, Face.person_id == person_id, Face.usable.is_(True))
        .order_by(Face.asset_id)
    )
    ids = list(session.scalars(q if limit is None else q.limit(limit)))
    return [i for i in ids if i in index.pos], limit is None or len(ids) < limit


def _join_nearest(
    session: Session, user_id: str, index: VectorIndex, new_ids: list[str]
) -> dict[str, str]:
    """Each new face joins, of the people its `CANDIDATES_K` nearest faces belong to, the one
    with the smallest average distance under THRESHOLD (the rule of `assign_incremental`), or
    starts a new person ("new:i").

    A person is read whole up to `SAMPLE` faces; a larger one first through a random sample of
    that many. Its average is read whole only when the samples cannot decide (a sample mean
    within `MARGIN_Z` standard errors of the threshold or of a rival's), so the answer is the
    rule's unless a sample mean is off by more than that, and the cost stays near SAMPLE faces
    a person where it read all 16,667 faces of the commonest person at 100k."""
    labels: dict[str, str] = {}
    # Per person: (faces read, all of them?); faces of this batch joined to it.
    read: dict[str, tuple[list[str], bool]] = {}
    joined: dict[str, list[np.ndarray]] = defaultdict(list)
    new_rows = _faces(session, user_id, new_ids)
    for n, face_id in enumerate(new_ids):
        (face,) = _vecs([new_rows[face_id]], index)
        if face.locked_person is not None:
            labels[face_id] = face.locked_person
            continue
        near = [i for i, d in index.nearest(face.embedding, CANDIDATES_K + 1)[0] if d < THRESHOLD]
        people = {
            p
            for p in session.scalars(
                select(Face.person_id).where(_owned(user_id), Face.id.in_(near))
            )
            if p
        }
        # Cannot-link: people (and people of this batch) holding a face of the same photo.
        same_photo = {
            p
            for p in session.scalars(
                select(Face.person_id).where(
                    _owned(user_id),
                    Face.asset_id == face.asset_id,
                    Face.usable.is_(True),
                )
            )
            if p
        } | {labels[i] for i in labels if new_rows[i].asset_id == face.asset_id}
        fresh = {label for label in labels.values() if label.startswith("new:")}
        query = np.asarray(face.embedding, dtype=np.float32)
        estimates: dict[str, tuple[float, float]] = {}
        for person in sorted((people | fresh) - face.banned_people - same_photo):
            if person.startswith("new:"):
                estimates[person] = _estimate(query, index, [], True, joined[person])
                continue
            if person not in read:
                read[person] = _members(session, user_id, person, index, SAMPLE)
            ids, whole = read[person]
            if not whole and joined.get(person):
                read[person] = ids, whole = _members(session, user_id, person, index, None)
            if not ids and not joined.get(person):
                continue
            estimates[person] = _estimate(query, index, ids, whole, joined.get(person, []))
        if _undecided(estimates):
            for person, (_m, margin) in list(estimates.items()):
                if margin > 0:
                    read[person] = ids, whole = _members(session, user_id, person, index, None)
                    estimates[person] = _estimate(query, index, ids, whole, joined[person])
        under = [(m, p) for p, (m, _) in estimates.items() if m < THRESHOLD]
        label = min(under)[1] if under else f"new:{n}"
        labels[face_id] = label
        joined[label].append(query)
    return labels


def _estimate(
    query: np.ndarray, index: VectorIndex, ids: list[str], whole: bool, joined: list[np.ndarray]
) -> tuple[float, float]:
    """(average distance, margin): exact (margin 0) when `ids` are all the person's faces."""
    dists = _distances(query[None, :], index.vectors(ids))[0].astype(np.float64) if ids else None
    extra = _distances(query[None, :], np.stack(joined))[0].astype(np.float64) if joined else None
    parts = [d for d in (dists, extra) if d is not None]
    d = np.concatenate(parts)
    if whole or dists is None:
        return float(d.mean()), 0.0
    # A sample (no faces of this batch: those make `_join_nearest` read the person whole).
    return float(dists.mean()), MARGIN_Z * float(dists.std() / np.sqrt(len(dists)))


def _undecided(estimates: dict[str, tuple[float, float]]) -> bool:
    """Whether sampled averages could change the choice: one straddles the threshold, or the
    best interval under it overlaps another's."""
    if all(margin == 0 for _, margin in estimates.values()):
        return False
    if any(m - e < THRESHOLD <= m + e for m, e in estimates.values() if e > 0):
        return True
    under = sorted((m + e, m - e) for m, e in estimates.values() if m - e < THRESHOLD)
    return len(under) > 1 and any(low <= under[0][0] for _, low in under[1:])


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
    people who gained or lost faces get their counts and covers refreshed (by the delta, for
    people that only gained: `_add_to_people`)."""
    named = {label for label in labels.values() if not is_fresh(label)}
    existing = set(
        session.scalars(select(Person.id).where(Person.user_id == user_id, Person.id.in_(named)))
    )
    fresh: dict[str, str] = {}
    gained: dict[str, list[Face]] = defaultdict(list)
    lost: set[str] = set()
    for face_id, label in labels.items():
        face = by_id[face_id]
        if label not in existing:
            if label not in fresh:
                fresh[label] = new_person(session, user_id, face).id
            label = fresh[label]
        if face.person_id != label:
            if face.person_id:
                lost.add(face.person_id)
            face.person_id = label
            gained[label].append(face)
    session.flush()
    # People who lost a face, and new ones, are counted whole; the others by the delta.
    whole = lost | set(fresh.values())
    whole |= _add_to_people(session, user_id, {p: f for p, f in gained.items() if p not in whole})
    refresh_people(session, user_id, whole)


def _cover_key(face: Face) -> tuple[bool, float, str]:
    """`refresh_people`'s cover order as a key to minimise: usable, then the largest box times
    sharpness, then the smallest id."""
    area = face.box_w * face.box_h * (face.sharpness if face.sharpness is not None else 0.0)
    return (not face.usable, -area, face.id)


def _add_to_people(session: Session, user_id: str, gained: dict[str, list[Face]]) -> set[str]:
    """Count and cover of people who only gained faces, updated by the delta instead of two
    queries over all their faces (16,667 at 100k). Returns the people that need the full
    refresh instead (no count or cover yet, or a cover that is gone)."""
    if not gained:
        return set()
    assets = {f.asset_id for faces in gained.values() for f in faces}
    trashed = set(
        session.scalars(
            select(Asset.id).where(
                Asset.user_id == user_id, Asset.id.in_(assets), Asset.status == "trashed"
            )
        )
    )
    people = {
        p.id: p
        for p in session.scalars(
            select(Person).where(Person.user_id == user_id, Person.id.in_(gained))
        )
    }
    covers = _faces(session, user_id, [p.cover_face_id for p in people.values() if p.cover_face_id])
    whole: set[str] = set()
    for person_id, faces in gained.items():
        person = people.get(person_id)
        cover = covers.get(person.cover_face_id or "") if person else None
        if person is None or not person.face_count or cover is None or cover.person_id != person_id:
            whole.add(person_id)
            continue
        live = [f for f in faces if f.asset_id not in trashed]
        best = min([cover, *live], key=_cover_key)
        person.face_count += len(live)
        person.cover_face_id, person.asset_id = best.id, best.asset_id
    session.flush()
    return whole


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
            in_trash = session.scalar(
                select(Face.id).where(Face.user_id == user_id, Face.person_id == person.id).limit(1)
            )
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
