"""Delete and the trash: DELETE /api/assets/{id} moves a photo to the trash, where it can be
restored until CAMROLL_TRASH_DAYS pass or the owner empties it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel
from sqlalchemy.orm import Session

from camroll.api.assets import owned_asset
from camroll.api.deps import Caller, caller, db
from camroll.privacy.audit import record
from camroll.trash import (
    StillProcessing,
    empty_trash,
    expires_at,
    restore_asset,
    trash_asset,
    trashed,
)

router = APIRouter(prefix="/api", tags=["trash"])


class TrashedOut(BaseModel):
    id: str
    filename: str
    kind: str | None
    trashed_at: datetime
    erased_after: datetime
    thumbnail_url: str | None


class MovedOut(BaseModel):
    ids: list[str]  # the asset and, for a Live Photo, its partner
    status: str


class TrashOut(BaseModel):
    items: list[TrashedOut]
    days: int


class EmptiedOut(BaseModel):
    erased: int


@router.delete("/assets/{asset_id}", response_model=MovedOut)
def delete_asset(
    asset_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> MovedOut:
    """Move to the trash (a Live Photo's still and motion together); restorable until erased."""
    asset = owned_asset(session, who, asset_id)
    try:
        moved = trash_asset(session, asset)
    except StillProcessing as e:
        raise HTTPException(409, str(e)) from None
    record(session, who, "asset.trash", asset.id)
    return MovedOut(ids=[a.id for a in moved], status="trashed")


@router.post("/assets/{asset_id}/restore", response_model=MovedOut)
def restore(
    asset_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> MovedOut:
    """Take it out of the trash, back to the timeline."""
    asset = owned_asset(session, who, asset_id)
    if asset.status != "trashed":
        raise HTTPException(409, "this asset is not in the trash")
    back = restore_asset(session, asset)
    record(session, who, "asset.restore", asset.id)
    return MovedOut(ids=[a.id for a in back], status=asset.status)


def trash_items(session: Session, user_id: str) -> list[TrashedOut]:
    return [
        TrashedOut(
            id=a.id,
            filename=a.filename,
            kind=a.kind,
            trashed_at=a.trashed_at,  # type: ignore[arg-type]
            erased_after=expires_at(a),  # type: ignore[arg-type]
            thumbnail_url=f"/api/assets/{a.id}/thumbnail" if not a.quarantine_reason else None,
        )
        for a in trashed(session, user_id)
    ]


@router.get("/trash", response_model=TrashOut)
def list_trash(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> TrashOut:
    """What is in the trash, newest deletion first, with when each is erased for good."""
    from camroll.config import get_settings

    record(session, who, "trash.list")
    return TrashOut(items=trash_items(session, who.user.id), days=get_settings().trash_days)


@router.delete("/trash", response_model=EmptiedOut)
def empty(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> EmptiedOut:
    """Erase everything in the trash now: originals, renditions, every derived row, and any
    idea that used them. Cannot be undone."""
    n = empty_trash(session, who.user.id)
    record(session, who, "trash.empty")
    return EmptiedOut(erased=n)
