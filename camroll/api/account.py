"""Account deletion and deletion receipts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db
from camroll.consent.gate import set_scopes
from camroll.crypto.signing import public_key_hex
from camroll.jobs.tasks import purge_soon_if_due
from camroll.privacy.retention import (
    find_receipt,
    receipt_document,
    receipt_id,
    schedule_deletion,
)

router = APIRouter(prefix="/api", tags=["privacy"])


class DeletionScheduled(BaseModel):
    deletion_due_at: datetime
    receipt_url: str
    undo: str


@router.delete("/me", response_model=DeletionScheduled, status_code=202)
def delete_me(who: Caller = Depends(caller), session: Session = Depends(db, scope="function")):
    """Delete the account: processing stops now; everything is purged at the deadline
    (CAMROLL_RETENTION_DAYS) unless the owner switches cloud_processing on again before it."""
    user = who.user
    set_scopes(session, user.id, {"cloud_processing": False}, who.client)
    due = schedule_deletion(user, "account_deletion")
    rid = receipt_id(user.id, due)
    purge_soon_if_due(session, user)
    return DeletionScheduled(
        deletion_due_at=due,
        receipt_url=f"/api/receipts/{rid}",
        undo='PUT /api/consent {"scopes": {"cloud_processing": true}} before the deadline',
    )


@router.get("/receipts/public-key")
def receipts_public_key() -> dict[str, str]:
    """The Ed25519 key that signs this instance's deletion receipts."""
    return {"ed25519_public_key": public_key_hex()}


@router.get("/receipts/{rid}")
def get_receipt(rid: str, session: Session = Depends(db, scope="function")) -> dict:
    """No login: after a purge the owner has no account. The id is unguessable and the receipt
    names the owner only by a hash."""
    receipt = find_receipt(session, rid)
    if receipt is None:
        raise HTTPException(404, "no receipt with this id (yet): the purge may not have run")
    return receipt_document(receipt)
