"""The owner's assets: a cursor-paged timeline, details, and decrypted media."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db, decrypted_body, not_found
from camroll.db.models import Asset, AssetMetadata, Rendition
from camroll.privacy.audit import record

router = APIRouter(prefix="/api/assets", tags=["assets"])


class AssetOut(BaseModel):
    id: str
    filename: str
    device_path: str | None
    checksum: str
    size: int
    mime: str | None
    kind: str | None
    status: str
    quarantine_reason: str | None
    quarantine_detail: str | None
    uploaded_at: datetime
    sort_at: datetime
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    taken_at_local: str | None = None
    tz_offset: str | None = None
    tz_source: str | None = None
    taken_at_utc: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    duration: float | None = None
    rotation: int | None = None
    live_pair_id: str | None = None
    thumbnail_url: str | None = None
    preview_url: str | None = None
    original_url: str


class AssetPage(BaseModel):
    items: list[AssetOut]
    next_cursor: str | None


def asset_out(asset: Asset, meta: AssetMetadata | None) -> AssetOut:
    has_previews = asset.status == "ready"
    fields = {}
    if meta is not None:
        fields = {
            k: getattr(meta, k)
            for k in (
                "width",
                "height",
                "orientation",
                "taken_at_local",
                "tz_offset",
                "tz_source",
                "taken_at_utc",
                "latitude",
                "longitude",
                "altitude",
                "make",
                "lens",
                "duration",
                "rotation",
            )
        }
        fields["model"] = meta.model_name
    return AssetOut(
        id=asset.id,
        filename=asset.filename,
        device_path=asset.device_path,
        checksum=asset.checksum,
        size=asset.size,
        mime=asset.mime,
        kind=asset.kind,
        status=asset.status,
        quarantine_reason=asset.quarantine_reason,
        quarantine_detail=asset.quarantine_detail,
        uploaded_at=asset.uploaded_at,
        sort_at=asset.sort_at,
        live_pair_id=asset.live_pair_id,
        thumbnail_url=f"/api/assets/{asset.id}/thumbnail" if has_previews else None,
        preview_url=f"/api/assets/{asset.id}/preview" if has_previews else None,
        original_url=f"/api/assets/{asset.id}/original",
        **fields,
    )


def _encode_cursor(asset: Asset) -> str:
    raw = json.dumps([asset.sort_at.isoformat(), asset.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, asset_id = json.loads(raw)
        return datetime.fromisoformat(at), str(asset_id)
    except (binascii.Error, ValueError, TypeError) as e:
        raise HTTPException(400, "invalid cursor") from e


@router.get("", response_model=AssetPage)
def list_assets(
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=500),
    taken_from: datetime | None = Query(None, alias="from", description="capture time >= (UTC)"),
    taken_to: datetime | None = Query(None, alias="to", description="capture time < (UTC)"),
    type: Literal["image", "raw", "video"] | None = None,
    status: Literal["pending", "ready", "quarantined"] | None = None,
) -> AssetPage:
    """Newest first by capture time (or upload time when the capture time is unknown)."""
    q = (
        select(Asset, AssetMetadata)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == who.user.id)
    )
    if taken_from is not None:
        q = q.where(Asset.sort_at >= _aware(taken_from))
    if taken_to is not None:
        q = q.where(Asset.sort_at < _aware(taken_to))
    if type is not None:
        q = q.where(Asset.kind == type)
    if status is not None:
        q = q.where(Asset.status == status)
    if cursor:
        at, last_id = _decode_cursor(cursor)
        q = q.where(or_(Asset.sort_at < at, and_(Asset.sort_at == at, Asset.id < last_id)))
    rows = session.execute(q.order_by(Asset.sort_at.desc(), Asset.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    record(session, who, "asset.list")
    return AssetPage(
        items=[asset_out(a, m) for a, m in rows],
        next_cursor=_encode_cursor(rows[-1][0]) if more and rows else None,
    )


def _aware(dt: datetime) -> datetime:
    from datetime import UTC

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def owned_asset(session: Session, who: Caller, asset_id: str) -> Asset:
    asset = session.scalars(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == who.user.id)
    ).first()
    if asset is None:
        raise not_found("asset")
    return asset


@router.get("/{asset_id}", response_model=AssetOut)
def get_asset(
    asset_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> AssetOut:
    asset = owned_asset(session, who, asset_id)
    meta = session.scalars(select(AssetMetadata).where(AssetMetadata.asset_id == asset.id)).first()
    record(session, who, "asset.read", asset.id)
    return asset_out(asset, meta)


@router.get("/{asset_id}/{variant}")
def media(
    asset_id: str,
    variant: Literal["original", "preview", "thumbnail"],
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
) -> StreamingResponse:
    """Decrypted on the fly. The original keeps its name; previews are JPEG, thumbnails WebP."""
    asset = owned_asset(session, who, asset_id)
    if variant == "original":
        if asset.original_key is None:
            raise HTTPException(409, "the original is still being stored; try again shortly")
        key, mime = asset.original_key, asset.mime or "application/octet-stream"
        headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(asset.filename)}"}
        headers["Content-Length"] = str(asset.size)
    else:
        rendition = session.scalars(
            select(Rendition).where(Rendition.asset_id == asset.id, Rendition.kind == variant)
        ).first()
        if rendition is None:
            reason = asset.quarantine_detail if asset.status == "quarantined" else "not made yet"
            raise HTTPException(404, f"no {variant} for this asset: {reason}")
        key, mime = rendition.blob_key, rendition.mime
        headers = {"Cache-Control": "private, max-age=86400"}
    record(session, who, f"asset.{variant}", asset.id)
    return StreamingResponse(
        decrypted_body(session, asset.user_id, key), media_type=mime, headers=headers
    )


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
