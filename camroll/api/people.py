"""People and their faces: list, name, set a birthday, hide, merge, move a face, cover image.

Everything here needs the `faces` scope; another owner's person or face answers 404.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, granted, not_found
from camroll.api.limits import ID_TEXT, INT32_MAX
from camroll.db.models import Person
from camroll.people.covers import person_cover
from camroll.people.edits import (
    EditError,
    merge_people,
    move_face,
    owned_face,
    owned_people,
    owned_person,
    update_person,
)
from camroll.privacy.audit import record

router = APIRouter(prefix="/api", tags=["people"])


faces_scope = granted("faces")


class PersonOut(BaseModel):
    id: str
    name: str | None
    birthday: str | None
    hidden: bool
    face_count: int
    cover_face_id: str | None
    cover_url: str | None


class PersonPatch(BaseModel):
    name: Annotated[str | None, Field(max_length=200)] = None
    birthday: str | None = Field(None, max_length=10, description="YYYY-MM-DD")
    hidden: bool | None = None
    clear: list[Literal["name", "birthday"]] = Field(
        default_factory=list, max_length=2, description='fields to empty: "name", "birthday"'
    )


class MergeIn(BaseModel):
    other_id: str = Field(
        max_length=ID_TEXT, description="this person is merged into the one in the path"
    )


class MoveIn(BaseModel):
    person_id: str | None = Field(
        None, max_length=ID_TEXT, description="target person; null starts a new person"
    )


def person_out(p: Person) -> PersonOut:
    return PersonOut(
        id=p.id,
        name=p.name,
        birthday=p.birthday,
        hidden=p.hidden,
        face_count=p.face_count,
        cover_face_id=p.cover_face_id,
        cover_url=f"/api/people/{p.id}/cover" if p.cover_face_id else None,
    )


def _person(session: Session, who: Caller, person_id: str) -> Person:
    p = owned_person(session, who.user.id, person_id)
    if p is None:
        raise not_found("person")
    return p


@router.get("/people", response_model=list[PersonOut])
def list_people(
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
    include_hidden: bool = False,
    min_faces: int = Query(1, ge=0, le=INT32_MAX),
) -> list[PersonOut]:
    """Named people first, then by how many photos they are in."""
    people = owned_people(session, who.user.id, min_faces, include_hidden)
    record(session, who, "people.list")
    return [person_out(p) for p in people]


@router.get("/people/{person_id}", response_model=PersonOut)
def get_person(
    person_id: str,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> PersonOut:
    p = _person(session, who, person_id)
    record(session, who, "person.read", person_id)
    return person_out(p)


@router.patch("/people/{person_id}", response_model=PersonOut)
def patch_person(
    person_id: str,
    body: PersonPatch,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> PersonOut:
    p = _person(session, who, person_id)
    unknown = set(body.clear) - {"name", "birthday"}
    if unknown:
        raise HTTPException(422, f"cannot clear {', '.join(sorted(unknown))}")
    try:
        update_person(p, body.name, body.birthday, body.hidden, frozenset(body.clear))
    except EditError as e:
        raise HTTPException(422, str(e)) from None
    return person_out(p)


@router.post("/people/{person_id}/merge", response_model=PersonOut)
def merge(
    person_id: str,
    body: MergeIn,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> PersonOut:
    """Merge `other_id` into this person: its faces move here and it disappears."""
    into, other = _person(session, who, person_id), _person(session, who, body.other_id)
    try:
        merge_people(session, who.user.id, into, other)
    except EditError as e:
        raise HTTPException(422, str(e)) from None
    return person_out(into)


@router.post("/faces/{face_id}/move", response_model=PersonOut)
def move(
    face_id: str,
    body: MoveIn,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> PersonOut:
    """Move a face to another person, or to a new one (split). It never goes back."""
    face = owned_face(session, who.user.id, face_id)
    if face is None:
        raise not_found("face")
    target = _person(session, who, body.person_id) if body.person_id else None
    return person_out(move_face(session, who.user.id, face, target))


@router.get("/people/{person_id}/cover")
def cover(
    person_id: str,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """A square JPEG of the person's best face, cut from the photo's preview."""
    cover = person_cover(session, _person(session, who, person_id))
    if cover is None:
        raise HTTPException(404, "this person has no cover face")
    record(session, who, "person.cover", cover.asset_id)
    return Response(cover.jpeg, media_type="image/jpeg")
