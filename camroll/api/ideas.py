"""Ideas: suggestions made from the owner's photos (trips, themes, on this day), each with a
reason and real media; accept to keep, dismiss to never see it again, or make one yourself.

Everything here needs the `creations` scope; another owner's idea answers 404.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, decrypted_body, granted, not_found
from camroll.api.limits import SHORT_TEXT, IdText
from camroll.db.models import Asset, Idea, new_id, utcnow
from camroll.ideas import media
from camroll.privacy.audit import record

router = APIRouter(prefix="/api/ideas", tags=["ideas"])


creations_scope = granted("creations")


class IdeaOut(BaseModel):
    id: str
    kind: str
    title: str
    reason: str
    confidence: float
    score: float
    state: str
    cover_url: str | None
    asset_ids: list[str]
    media_url: str | None
    media_type: str | None
    created_at: datetime
    # The moment (GET /api/moments/{id}) a trip's idea was made from; None for other ideas.
    moment_id: str | None = None


RecapFormat = Literal["9:16", "16:9", "1:1"]


class IdeaIn(BaseModel):
    kind: Literal["collage", "recap", "restyle"]
    asset_ids: list[IdText] = Field(min_length=1, max_length=30)
    title: str = Field("My creation", max_length=120)
    layout: Literal["auto", "grid", "mosaic", "hero"] = "auto"
    style: str | None = Field(
        None, max_length=SHORT_TEXT, description="restyle only: a name from GET /api/ideas/styles"
    )
    format: RecapFormat = Field("9:16", description="recap only: 9:16 (phone), 16:9 or 1:1")


class RegenerateIn(BaseModel):
    layout: Literal["auto", "grid", "mosaic", "hero"] | None = None
    style: str | None = Field(None, max_length=SHORT_TEXT)
    format: RecapFormat | None = Field(None, description="recaps: render again in this format")


def idea_out(i: Idea) -> IdeaOut:
    return IdeaOut(
        id=i.id,
        kind=i.kind,
        title=i.title,
        reason=i.reason,
        confidence=i.confidence,
        score=i.score,
        state=i.state,
        cover_url=f"/api/assets/{i.asset_id}/thumbnail" if i.asset_id else None,
        asset_ids=json.loads(i.member_ids),
        media_url=f"/api/ideas/{i.id}/media" if i.blob_key else None,
        media_type=i.media_mime,
        created_at=i.created_at,
        moment_id=json.loads(i.params or "{}").get("moment_id"),
    )


def _idea(session: Session, who: Caller, idea_id: str) -> Idea:
    idea = session.scalars(
        select(Idea).where(Idea.id == idea_id, Idea.user_id == who.user.id)
    ).first()
    if idea is None:
        raise not_found("idea")
    return idea


@router.get("", response_model=list[IdeaOut])
def list_ideas(
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
    state: Literal["suggested", "accepted", "dismissed"] | None = Query(
        None, description="default: suggested and accepted"
    ),
) -> list[IdeaOut]:
    """Best first: recency, quality, the people you named, and novelty."""
    q = select(Idea).where(Idea.user_id == who.user.id)
    q = q.where(Idea.state == state) if state else q.where(Idea.state != "dismissed")
    record(session, who, "ideas.list")
    return [idea_out(i) for i in session.scalars(q.order_by(Idea.score.desc(), Idea.id))]


@router.get("/styles", response_model=list[str])
def styles(who: Caller = Depends(creations_scope)) -> list[str]:
    from camroll.create.restyle import FROM_IMAGE, STYLES

    return [s for s in STYLES if s != FROM_IMAGE]


@router.get("/{idea_id}", response_model=IdeaOut)
def get_idea(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    idea = _idea(session, who, idea_id)
    record(session, who, "idea.read", idea.asset_id)
    return idea_out(idea)


@router.post("/{idea_id}/accept", response_model=IdeaOut)
def accept(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Keep the creation: it stays as it is and goes into your export."""
    idea = _idea(session, who, idea_id)
    idea.state, idea.accepted_at = "accepted", utcnow()
    return idea_out(idea)


@router.post("/{idea_id}/dismiss", response_model=IdeaOut)
def dismiss(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Never suggest this again; ideas of the same kind rank lower from now on."""
    idea = _idea(session, who, idea_id)
    idea.state = "dismissed"
    if idea.blob_key:
        from camroll.storage import get_store

        get_store().delete(idea.blob_key)  # a dismissed creation is not kept
        idea.blob_key = idea.media_mime = None
    return idea_out(idea)


@router.post("/{idea_id}/regenerate", response_model=IdeaOut)
def regenerate(
    idea_id: str,
    body: RegenerateIn,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Render again with another layout (collages) or style (restyles)."""
    idea = _idea(session, who, idea_id)
    assets = _owned_assets(session, who, json.loads(idea.member_ids))
    params = json.loads(idea.params or "{}")
    if idea.media_mime == "video/mp4":
        if body.format is None:
            raise HTTPException(422, "recaps have no layouts or styles; give a format to change")
        params["format"] = body.format
        _render_into(session, idea, "recap", assets, params)
        return idea_out(idea)
    if params.get("style") or body.style:
        params["style"] = body.style or params["style"]
    else:
        params["layout"] = body.layout or _next_layout(params.get("layout"))
    _render_into(session, idea, "restyle" if params.get("style") else "collage", assets, params)
    return idea_out(idea)


def _next_layout(current: object) -> str:
    from camroll.create.collage import LAYOUTS

    return LAYOUTS[(LAYOUTS.index(current) + 1) % len(LAYOUTS)] if current in LAYOUTS else "grid"


@router.post("", response_model=IdeaOut, status_code=201)
def create(
    body: IdeaIn,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Make a collage (4-9 photos), a recap (3-30) or a restyle (1 photo) from your photos."""
    from camroll.ideas.generate import IDEAS_MODEL

    assets = _owned_assets(session, who, body.asset_ids)
    idea = Idea(
        id=new_id(),
        user_id=who.user.id,
        asset_id=assets[0].id,
        scope="creations",
        model=IDEAS_MODEL[0],
        model_version=IDEAS_MODEL[1],
        fingerprint=f"owner:{utcnow().isoformat()}:{assets[0].id}",
        kind=body.kind,
        title=body.title,
        reason="made by you",
        confidence=1.0,
        score=0.0,
        state="accepted",
        accepted_at=utcnow(),
        member_ids=json.dumps([a.id for a in assets]),
        members_hash="",
        params="{}",
    )
    params: dict[str, object] = {"layout": body.layout} if body.kind == "collage" else {}
    if body.kind == "restyle":
        params["style"] = body.style
    elif body.kind == "recap":
        params["format"] = body.format
    # Rendered before the row is added: no write is pending (so no SQLite write lock is held)
    # for the seconds a recap takes; the row and its media land in one short commit.
    session.rollback()
    _render_into(session, idea, body.kind, assets, params)
    session.add(idea)
    session.flush()
    return idea_out(idea)


def _owned_assets(session: Session, who: Caller, ids: list[str]) -> list[Asset]:
    found = {
        a.id: a
        for a in session.scalars(
            select(Asset).where(
                Asset.user_id == who.user.id, Asset.id.in_(ids), Asset.status == "ready"
            )
        )
    }
    missing = [i for i in ids if i not in found]
    if missing:
        raise HTTPException(404, f"asset not found or not ready: {missing[0]}")
    return [found[i] for i in ids]


def _render_into(
    session: Session, idea: Idea, kind: str, assets: list[Asset], params: dict[str, object]
) -> None:
    try:
        if kind == "collage":
            if not media.MIN_COLLAGE <= len(assets) <= media.MAX_COLLAGE:
                raise ValueError("a collage takes 4 to 9 photos")
            data = media.render_collage_for(session, assets, idea.title, str(params["layout"]))
            mime = "image/jpeg"
        elif kind == "recap":
            if len(assets) < 3:
                raise ValueError("a recap takes at least 3 photos or videos")
            photos = [a for a in assets if a.kind != "video"]
            clips = [a for a in assets if a.kind == "video"]
            fmt = str(params.get("format") or "9:16")
            data = media.render_recap_for(session, photos, clips, idea.title, "", fmt)
            mime = "video/mp4"
        else:
            if len(assets) != 1 or not params.get("style"):
                raise ValueError("a restyle takes exactly one photo and a style")
            data = media.render_restyle_for(session, assets[0], str(params["style"]), idea.title)
            mime = "image/jpeg"
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    idea.blob_key = media.store_media(session, idea.user_id, idea.id, data)
    idea.media_mime, idea.params = mime, json.dumps(params)
    idea.scope = media.creation_scope(session, kind, assets, idea.scope.split("+"))


@router.get("/{idea_id}/media")
def idea_media(
    idea_id: str,
    request: Request,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> StreamingResponse:
    """The rendered collage or recap; answers HTTP Range (206), so recaps seek on iOS Safari."""
    idea = _idea(session, who, idea_id)
    if not idea.blob_key or not idea.media_mime:
        raise HTTPException(404, "this idea has no media (too few photos to render)")
    record(session, who, "idea.media", idea.asset_id)
    headers = {"Cache-Control": "private, max-age=3600", "Accept-Ranges": "bytes"}
    if request.headers.get("range"):
        from camroll.api.ranges import ranged_response
        from camroll.storage import BlobNotFound
        from camroll.storage.ranged import plain_size

        try:
            size = plain_size(idea.blob_key)
        except BlobNotFound:
            raise HTTPException(410, "this idea's media can no longer be read") from None
        spec = request.headers["range"]
        part = ranged_response(
            session, idea.user_id, idea.blob_key, size, idea.media_mime, spec, headers
        )
        if part is not None:
            return part
    return StreamingResponse(
        decrypted_body(session, idea.user_id, idea.blob_key),
        media_type=idea.media_mime,
        headers=headers,
    )
