"""The owner's edits to people. Each one pins the faces it touches (`assigned_by="owner"`), so
the next recluster keeps the owner's word."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, Person
from camroll.people.assign import _lock_user, new_person, refresh_people


class EditError(ValueError):
    pass


def owned_person(session: Session, user_id: str, person_id: str) -> Person | None:
    return session.scalars(
        select(Person).where(Person.id == person_id, Person.user_id == user_id)
    ).first()


def owned_people(
    session: Session, user_id: str, min_faces: int = 1, include_hidden: bool = True
) -> list[Person]:
    """The owner's people: named first (by name), then by how many faces they have."""
    q = select(Person).where(Person.user_id == user_id, Person.face_count >= min_faces)
    if not include_hidden:
        q = q.where(Person.hidden.is_(False))
    people = list(session.scalars(q))
    people.sort(key=lambda p: (p.name is None, -p.face_count, p.name or "", p.id))
    return people


def person_photos(session: Session, user_id: str, person_id: str) -> list[tuple[Face, Asset]]:
    """A person's ready photos, newest first, each with the face that is them (two faces of
    one photo are never one person)."""
    rows = session.execute(
        select(Face, Asset)
        .join(Asset, Asset.id == Face.asset_id)
        .where(
            Face.user_id == user_id,
            Face.person_id == person_id,
            Asset.user_id == user_id,
            Asset.status == "ready",
        )
        .order_by(Asset.sort_at.desc(), Face.id)
    )
    return [(f, a) for f, a in rows]


def owned_face(session: Session, user_id: str, face_id: str) -> Face | None:
    return session.scalars(select(Face).where(Face.id == face_id, Face.user_id == user_id)).first()


def update_person(
    person: Person,
    name: str | None = None,
    birthday: str | None = None,
    hidden: bool | None = None,
    clear: frozenset[str] = frozenset(),
) -> None:
    """Set the fields given; names in `clear` are emptied (e.g. a birthday set by mistake)."""
    if name is not None:
        name = " ".join(name.split())
        if not name or len(name) > 200:
            raise EditError("a name must have 1 to 200 characters")
        person.name = name
    if birthday is not None:
        try:
            day = date.fromisoformat(birthday)
        except ValueError:
            raise EditError("birthday must be a date as YYYY-MM-DD") from None
        if day > date.today() or day.year < 1850:
            raise EditError("birthday must be a real date in the past")
        person.birthday = day.isoformat()
    if hidden is not None:
        person.hidden = hidden
    if "name" in clear:
        person.name = None
    if "birthday" in clear:
        person.birthday = None


def merge_people(session: Session, user_id: str, into: Person, other: Person) -> int:
    """Move every face of `other` into `into` and delete `other`; returns faces moved.
    `into` keeps its name, or takes the other's when it had none."""
    if into.id == other.id:
        raise EditError("cannot merge a person with itself")
    with _lock_user(session, user_id):
        moved = session.execute(
            update(Face)
            .where(Face.user_id == user_id, Face.person_id == other.id)
            .values(person_id=into.id, assigned_by="owner")
        ).rowcount
        # The faces of `into` are confirmed too: the recluster must not pull them apart again.
        session.execute(
            update(Face)
            .where(Face.user_id == user_id, Face.person_id == into.id)
            .values(assigned_by="owner")
        )
        into.name = into.name or other.name
        into.birthday = into.birthday or other.birthday
        session.delete(other)
        session.flush()
        refresh_people(session, user_id, {into.id})
    return moved


def move_face(session: Session, user_id: str, face: Face, target: Person | None) -> Person:
    """Put a face in another person (or a new one); it never returns to the one it left."""
    with _lock_user(session, user_id):
        old = face.person_id
        if target is None:
            target = new_person(session, user_id, face)
        if old == target.id:
            face.assigned_by = "owner"
            return target
        banned = set(json.loads(face.banned_people)) if face.banned_people else set()
        if old:
            banned.add(old)
        banned.discard(target.id)
        face.banned_people = json.dumps(sorted(banned)) if banned else None
        face.person_id, face.assigned_by = target.id, "owner"
        session.flush()
        refresh_people(session, user_id, {target.id} | ({old} if old else set()))
    return target
