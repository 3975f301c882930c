"""Consent scopes: read, change, and the append-only history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db
from camroll.consent import ledger
from camroll.consent.gate import current_scopes
from camroll.consent.scopes import POLICY_VERSION, SCOPES, TRAINING_STATEMENT
from camroll.consent_change import change_scopes
from camroll.db.models import ConsentEvent, User
from camroll.privacy.audit import record

router = APIRouter(prefix="/api/consent", tags=["consent"])


class ScopeInfo(BaseModel):
    granted: bool
    changed_at: datetime | None
    title: str
    text: str


class ConsentOut(BaseModel):
    scopes: dict[str, bool]
    deletion_due_at: datetime | None = None
    changed_at: dict[str, datetime | None]
    details: dict[str, ScopeInfo]
    policy_version: str
    training: str


class ConsentIn(BaseModel):
    scopes: dict[Annotated[str, Field(max_length=40)], bool] = Field(max_length=20)


class ConsentEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    scope: str
    granted: bool
    at: datetime
    client: str
    policy_version: str
    policy_sha256: str
    hash: str


def _out(session: Session, user: User) -> ConsentOut:
    state = current_scopes(session, user.id)
    return ConsentOut(
        scopes={k: bool(v and v.granted) for k, v in state.items()},
        changed_at={k: v.changed_at if v else None for k, v in state.items()},
        details={
            k: ScopeInfo(
                granted=bool(v and v.granted),
                changed_at=v.changed_at if v else None,
                title=SCOPES[k].title,
                text=SCOPES[k].text,
            )
            for k, v in state.items()
        },
        policy_version=POLICY_VERSION,
        training=TRAINING_STATEMENT,
        deletion_due_at=user.deletion_due_at,
    )


@router.get("", response_model=ConsentOut)
def get_consent(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> ConsentOut:
    return _out(session, who.user)


@router.put("", response_model=ConsentOut)
def put_consent(
    body: ConsentIn, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> ConsentOut:
    """Change some scopes; scopes left out stay as they are."""
    try:
        change_scopes(session, who.user, body.scopes, who.client)
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    return _out(session, who.user)


@router.get("/history", response_model=list[ConsentEventOut])
def history(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> list[ConsentEvent]:
    record(session, who, "consent.read")
    return ledger.history(session, who.user.id)
