"""The owner's assets: a cursor-paged timeline, details, and decrypted media. A thin door:
the reads are camroll.assets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll import assets as svc
from camroll.api.deps import Caller, caller, db, decrypted_body, not_found
from camroll.api.downloads import original_disposition, served_mime
from camroll.api.limits import ID_TEXT, SHORT_TEXT, UtcDatetime
from camroll.db.models import Asset, AssetMetadata
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


class FaceOut(BaseModel):
    id: str
    box: dict[str, float] = Field(description="x, y, w, h as fractions of the upright image")
    landmarks: list[list[float]]
    score: float
    usable: bool
    reject_reason: str | None
    at_seconds: float | None
    person_id: str | None
    person_name: str | None
    expression: str | None
    smile: float | None


class TagOut(BaseModel):
    label: str
    score: float
    sources: list[str]


class PlaceOut(BaseModel):
    city: str
    region: str | None
    country: str | None
    country_code: str | None
    label: str
    distance_to_place_km: float | None
    distance_from_home_km: float | None


class QualityOut(BaseModel):
    sharpness: float
    exposure: float
    score: float
    phash: str
    duplicate_group: str | None
    is_best: bool


class AssetDetail(AssetOut):
    faces: list[FaceOut] = []
    tags: list[TagOut] = []
    place: PlaceOut | None = None
    quality: QualityOut | None = None


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


@router.get("", response_model=AssetPage)
def list_assets(
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
    cursor: str | None = Query(None, max_length=SHORT_TEXT),
    limit: int = Query(100, ge=1, le=500),
    taken_from: UtcDatetime | None = Query(None, alias="from", description="capture time >= (UTC)"),
    taken_to: UtcDatetime | None = Query(None, alias="to", description="capture time < (UTC)"),
    type: Literal["image", "raw", "video"] | None = None,
    status: Literal["pending", "ready", "quarantined", "trashed"] | None = None,
    person: str | None = Query(
        None, max_length=ID_TEXT, description="a person id: photos with their face"
    ),
    tag: str | None = Query(None, max_length=SHORT_TEXT, description="a tag label, e.g. dog"),
    place: str | None = Query(
        None, max_length=SHORT_TEXT, description="a city, region, country or country code"
    ),
) -> AssetPage:
    """Newest first by capture time (or upload time when the capture time is unknown)."""
    f = svc.AssetFilter(taken_from, taken_to, type, status, person, tag, place)
    try:
        rows, next_cursor = svc.list_assets(session, who.user.id, f, cursor, limit)
    except svc.BadCursor as e:
        raise HTTPException(400, str(e)) from None
    record(session, who, "asset.list")
    return AssetPage(items=[asset_out(a, m) for a, m in rows], next_cursor=next_cursor)


def owned_asset(session: Session, who: Caller, asset_id: str) -> Asset:
    """The caller's asset; 404 for one that is absent or someone else's alike."""
    try:
        return svc.owned_asset(session, who.user.id, asset_id)
    except LookupError:
        raise not_found("asset") from None


@router.get("/{asset_id}", response_model=AssetDetail)
def get_asset(
    asset_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> AssetDetail:
    """Metadata plus what analysis found: faces (with people), tags, place and quality."""
    asset = owned_asset(session, who, asset_id)
    meta = svc.metadata(session, asset)
    record(session, who, "asset.read", asset.id)
    found = svc.derived(session, asset)
    return AssetDetail(**asset_out(asset, meta).model_dump(), **derived_out(found))


def derived_out(found: svc.Derived) -> dict[str, object]:
    """What analysis derived, as the API and the viewer's info panel show it."""
    place, quality = found.place, found.quality
    return {
        "faces": [
            FaceOut(
                id=f.id,
                box={"x": f.box_x, "y": f.box_y, "w": f.box_w, "h": f.box_h},
                landmarks=json.loads(f.landmarks),
                score=f.score,
                usable=f.usable,
                reject_reason=f.reject_reason,
                at_seconds=f.at_seconds,
                person_id=f.person_id,
                person_name=name,
                expression=e.expression if e else None,
                smile=e.smile if e else None,
            )
            for f, e, name in found.faces
        ],
        "tags": [
            TagOut(label=t.label, score=t.score, sources=json.loads(t.sources)) for t in found.tags
        ],
        "place": PlaceOut(
            city=place.city,
            region=place.region,
            country=place.country,
            country_code=place.country_code,
            label=", ".join(x for x in (place.city, place.region, place.country) if x),
            distance_to_place_km=place.distance_to_place_km,
            distance_from_home_km=place.distance_from_home_km,
        )
        if place
        else None,
        "quality": QualityOut(
            sharpness=quality.sharpness,
            exposure=quality.exposure,
            score=quality.score,
            phash=quality.phash,
            duplicate_group=quality.duplicate_group,
            is_best=quality.is_best,
        )
        if quality
        else None,
    }


@router.get("/{asset_id}/{variant}")
def media(
    asset_id: str,
    variant: Literal["original", "preview", "thumbnail"],
    request: Request,
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
) -> StreamingResponse:
    """Decrypted on the fly. The original keeps its name; previews are JPEG, thumbnails WebP.
    Originals answer HTTP Range (206) by decrypting only the segments asked for."""
    asset = owned_asset(session, who, asset_id)
    if variant == "original":
        if asset.original_key is None:
            raise HTTPException(409, "the original is still being stored; try again shortly")
        key, mime = asset.original_key, served_mime(asset.status, asset.mime)
        headers = {"Content-Disposition": original_disposition(asset.status, asset.filename)}
        headers["Content-Length"] = str(asset.size)
        headers["Accept-Ranges"] = "bytes"
        if request.headers.get("range"):
            from camroll.api.ranges import ranged_response

            part = ranged_response(
                session, asset.user_id, key, asset.size, mime, request.headers["range"], headers
            )
            if part is not None:
                record(session, who, "asset.original", asset.id)
                return part
    else:
        rendition = svc.rendition(session, asset, variant)
        if rendition is None:
            reason = asset.quarantine_detail if asset.status == "quarantined" else "not made yet"
            raise HTTPException(404, f"no {variant} for this asset: {reason}")
        key, mime = rendition.blob_key, rendition.mime
        headers = {"Cache-Control": "private, max-age=86400"}
    record(session, who, f"asset.{variant}", asset.id)
    return StreamingResponse(
        decrypted_body(session, asset.user_id, key), media_type=mime, headers=headers
    )
