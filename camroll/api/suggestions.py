""" "Is this the same person?": merge suggestions, confirmed (merge) or rejected (remembered).

Needs the `faces` scope like every people call; another owner's person answers 404. Registered
before the people router so `/api/people/suggestions` is not read as a person id.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, granted, not_found
from camroll.api.people import PersonOut, person_out
from camroll.people.edits import EditError
from camroll.people.review import confirm, reject, suggestions
from camroll.privacy.audit import record

router = APIRouter(prefix="/api/people/suggestions", tags=["people"])
faces_scope = granted("faces")


class SuggestionOut(BaseModel):
    person_a: PersonOut
    person_b: PersonOut
    confidence: float = Field(description="how likely they are one person, 0..1 (calibrated)")
    distance: float = Field(description="rms distance between their faces (dlib 128-d)")


class PairIn(BaseModel):
    person_a: str = Field(max_length=32)
    person_b: str = Field(max_length=32)


class RejectOut(BaseModel):
    person_a: PersonOut
    person_b: PersonOut


@router.get("", response_model=list[SuggestionOut])
def list_suggestions(
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
    limit: int = Query(50, ge=1, le=500),
) -> list[SuggestionOut]:
    """Pairs of people that are probably one person, most likely first."""
    found = suggestions(session, who.user.id, limit)
    record(session, who, "people.suggestions")
    return [
        SuggestionOut(
            person_a=person_out(s.a),
            person_b=person_out(s.b),
            confidence=s.confidence,
            distance=s.distance,
        )
        for s in found
    ]


@router.post("/confirm", response_model=PersonOut)
def confirm_suggestion(
    body: PairIn,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> PersonOut:
    """They are one person: merged, and the merge survives reclustering."""
    try:
        merged = confirm(session, who.user.id, body.person_a, body.person_b)
    except EditError as e:
        raise HTTPException(422, str(e)) from None
    if merged is None:
        raise not_found("person")
    return person_out(merged)


@router.post("/reject", response_model=RejectOut)
def reject_suggestion(
    body: PairIn,
    who: Caller = Depends(faces_scope),
    session: Session = Depends(db, scope="function"),
) -> RejectOut:
    """They are two people: never suggested again, and never merged by a recluster."""
    try:
        pair = reject(session, who.user.id, body.person_a, body.person_b)
    except EditError as e:
        raise HTTPException(422, str(e)) from None
    if pair is None:
        raise not_found("person")
    return RejectOut(person_a=person_out(pair[0]), person_b=person_out(pair[1]))
