"""The owner's answers to "is this the same person?": suggestions from the library's faces,
confirm (a merge the recluster keeps) and reject (a cannot-link the recluster keeps)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, Person, PersonRejection
from camroll.people.assign import _lock_user, _usable_faces, _vec
from camroll.people.cluster import FaceVec
from camroll.people.edits import EditError, merge_people, owned_person
from camroll.people.suggest import Suggestion, suggest


@dataclass(frozen=True)
class PairSuggestion:
    a: Person
    b: Person
    confidence: float
    distance: float


def rejected_pairs(session: Session, user_id: str) -> set[frozenset[str]]:
    rows = session.execute(
        select(PersonRejection.person_a, PersonRejection.person_b).where(
            PersonRejection.user_id == user_id
        )
    )
    return {frozenset(r) for r in rows}


def suggestions(session: Session, user_id: str, limit: int = 50) -> list[PairSuggestion]:
    """Pairs of the owner's visible people that are probably one person, most likely first."""
    people = {
        p.id: p
        for p in session.scalars(
            select(Person).where(
                Person.user_id == user_id, Person.hidden.is_(False), Person.face_count > 0
            )
        )
    }
    trashed = set(
        session.scalars(select(Asset.id).where(Asset.user_id == user_id, Asset.status == "trashed"))
    )
    members: dict[str, list[FaceVec]] = defaultdict(list)
    # A face the owner moved out of a person says its person is not that one: no suggestion.
    said_no = rejected_pairs(session, user_id)
    for face, vector in _usable_faces(session, user_id):
        if face.person_id in people and face.asset_id not in trashed:
            vec = _vec(face, vector)
            members[face.person_id].append(vec)
            said_no |= {frozenset((face.person_id, q)) for q in vec.banned_people}
    found: list[Suggestion] = suggest(members, said_no)
    return [
        PairSuggestion(people[s.person_a], people[s.person_b], s.confidence, s.distance)
        for s in found[:limit]
    ]


def _pair(session: Session, user_id: str, a_id: str, b_id: str) -> tuple[Person, Person] | None:
    a, b = owned_person(session, user_id, a_id), owned_person(session, user_id, b_id)
    if a is None or b is None:
        return None
    if a.id == b.id:
        raise EditError("a person cannot be compared with itself")
    return a, b


def confirm(session: Session, user_id: str, a_id: str, b_id: str) -> Person | None:
    """One person after all: merge them (into the named one, else the one with more faces).
    `merge_people` pins every face, so the next recluster keeps them together."""
    pair = _pair(session, user_id, a_id, b_id)
    if pair is None:
        return None
    a, b = pair
    into, other = (
        (a, b)
        if (a.name is not None, a.face_count) >= (b.name is not None, b.face_count)
        else (b, a)
    )
    # What the owner said about `other` now holds for the merged person.
    for row in session.scalars(
        select(PersonRejection).where(
            PersonRejection.user_id == user_id,
            or_(PersonRejection.person_a == other.id, PersonRejection.person_b == other.id),
        )
    ):
        third = row.person_b if row.person_a == other.id else row.person_a
        session.delete(row)
        if third != into.id:
            _remember(session, user_id, into.id, third)
    session.flush()
    merge_people(session, user_id, into, other)
    return into


def reject(session: Session, user_id: str, a_id: str, b_id: str) -> tuple[Person, Person] | None:
    """Two people: remember it, and pin both people's faces to them; the recluster never puts
    faces pinned to two different people in one cluster (a cannot-link between them)."""
    pair = _pair(session, user_id, a_id, b_id)
    if pair is None:
        return None
    a, b = pair
    with _lock_user(session, user_id):
        _remember(session, user_id, a.id, b.id)
        session.execute(
            update(Face)
            .where(Face.user_id == user_id, Face.person_id.in_([a.id, b.id]))
            .values(assigned_by="owner")
        )
        session.flush()
    return a, b


def _remember(session: Session, user_id: str, x: str, y: str) -> None:
    lo, hi = sorted((x, y))
    if session.get(PersonRejection, (lo, hi)) is None:
        session.add(PersonRejection(user_id=user_id, person_a=lo, person_b=hi))
