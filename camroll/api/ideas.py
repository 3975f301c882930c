"""Ideas: suggestions made from the owner's photos (trips, themes, on this day), each with a
reason and real media; accept to keep, dismiss to never see it again, or make one yourself.
Recaps can be set to the owner's own music (the tracks endpoints).

Everything here needs the `creations` scope; another owner's idea or track answers 404.
A thin door: the work is camroll.ideas.creations and camroll.ideas.tracks.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, decrypted_body, granted, not_found
from camroll.api.limits import SHORT_TEXT, IdText
from camroll.consent.gate import ConsentRequired
from camroll.db.models import Idea, RecapTrack
from camroll.ideas import creations, tracks
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
        None,
        max_length=SHORT_TEXT,
        description="restyle only: a name from GET /api/ideas/styles, e.g. 'Van Gogh-like'",
    )
    format: RecapFormat = Field("9:16", description="recap only: 9:16 (phone), 16:9 or 1:1")
    track_id: IdText | None = Field(
        None, description="recap only: your own music (GET /api/ideas/tracks) instead of ours"
    )


class RegenerateIn(BaseModel):
    layout: Literal["auto", "grid", "mosaic", "hero"] | None = None
    style: str | None = Field(None, max_length=SHORT_TEXT, description="a style's name")
    format: RecapFormat | None = Field(None, description="recaps: render again in this format")
    track_id: IdText | None = Field(
        None, description="recaps: set to your track, or null for music made for the moment"
    )

    def change(self) -> creations.Rerender:
        track = self.track_id if "track_id" in self.model_fields_set else creations.UNSET
        return creations.Rerender(self.layout, self.style, self.format, track)


class TrackOut(BaseModel):
    id: str
    name: str
    codec: str
    duration_s: float
    size: int
    created_at: datetime


def track_out(t: RecapTrack) -> TrackOut:
    return TrackOut(
        id=t.id,
        name=t.name,
        codec=t.codec,
        duration_s=t.duration_s,
        size=t.size,
        created_at=t.created_at,
    )


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


@contextmanager
def _answers() -> Iterator[None]:
    """The services' errors as HTTP: what the owner does not have is 404, a request that
    cannot be made is 422 with the reason."""
    try:
        yield
    except LookupError as e:
        what = str(e).strip("'")
        raise (not_found(what) if what in ("idea", "track") else HTTPException(404, what)) from None
    except ValueError as e:
        raise HTTPException(422, str(e)) from None
    except ConsentRequired as e:  # switched off while the request ran
        raise HTTPException(403, str(e)) from None


def _idea(session: Session, who: Caller, idea_id: str) -> Idea:
    with _answers():
        return creations.owned_idea(session, who.user.id, idea_id)


@router.get("", response_model=list[IdeaOut])
def list_ideas(
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
    state: Literal["suggested", "accepted", "dismissed"] | None = Query(
        None, description="default: suggested and accepted"
    ),
) -> list[IdeaOut]:
    """Best first: recency, quality, the people you named, and novelty."""
    record(session, who, "ideas.list")
    return [idea_out(i) for i in creations.list_ideas(session, who.user.id, state)]


@router.get("/styles", response_model=list[str])
def styles(who: Caller = Depends(creations_scope)) -> list[str]:
    """The restyles on offer, by name ("watercolour", "Van Gogh-like"): give one as `style`."""
    from camroll.create.restyle import FROM_IMAGE, STYLES
    from camroll.create.style_names import style_name

    return [style_name(s) for s in STYLES if s != FROM_IMAGE]


@router.get("/tracks", response_model=list[TrackOut])
def list_tracks(
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> list[TrackOut]:
    """Your own music for recaps, oldest first."""
    return [track_out(t) for t in tracks.list_tracks(session, who.user.id)]


async def _track_body(request: Request) -> io.BytesIO:
    """The request body, refused (413) past the largest track as it arrives."""
    limit = tracks.MAX_TRACK_BYTES
    too_big = HTTPException(413, f"a track is at most {limit >> 20} MB")
    if int(request.headers.get("content-length") or 0) > limit:
        raise too_big
    body = io.BytesIO()
    async for chunk in request.stream():
        body.write(chunk)
        if body.tell() > limit:
            raise too_big
    body.seek(0)
    return body


_AUDIO_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/tracks", response_model=TrackOut, status_code=201, openapi_extra=_AUDIO_BODY)
def upload_track(
    name: str = Query(..., min_length=1, max_length=SHORT_TEXT, description="the file's name"),
    body: io.BytesIO = Depends(_track_body),
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> TrackOut:
    """Upload a piece of music (the file itself as the body: M4A, MP3, WAV, FLAC, Ogg...),
    5 s to 20 min. It is stored encrypted like your photos; audio that does not decode is
    refused (422) with the reason."""
    with _answers():
        track = tracks.add_track(session, who.user.id, name, body)
    record(session, who, "track.upload")
    return track_out(track)


@router.delete("/tracks/{track_id}", status_code=204)
def delete_track(
    track_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The track is deleted; recaps already made with it keep their sound."""
    with _answers():
        tracks.delete_track(session, who.user.id, track_id)
    return Response(status_code=204)


@router.get("/{idea_id}", response_model=IdeaOut)
def get_idea(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    idea = _idea(session, who, idea_id)
    record(session, who, "idea.read", idea.asset_id)
    return idea_out(idea)


def _act(action: Callable[[], Idea]) -> IdeaOut:
    with _answers():
        return idea_out(action())


@router.post("/{idea_id}/accept", response_model=IdeaOut)
def accept(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Keep the creation: it stays as it is and goes into your export."""
    return _act(lambda: creations.accept_idea(session, who.user.id, idea_id))


@router.post("/{idea_id}/dismiss", response_model=IdeaOut)
def dismiss(
    idea_id: str,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Never suggest this again; ideas of the same kind rank lower from now on."""
    return _act(lambda: creations.dismiss_idea(session, who.user.id, idea_id))


@router.post("/{idea_id}/regenerate", response_model=IdeaOut)
def regenerate(
    idea_id: str,
    body: RegenerateIn,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Render again: another layout (collages), style (restyles), or format or music
    (recaps: `track_id` your track, or null for music made for the moment)."""
    change = body.change()
    return _act(lambda: creations.regenerate_idea(session, who.user.id, idea_id, change))


@router.post("", response_model=IdeaOut, status_code=201)
def create(
    body: IdeaIn,
    who: Caller = Depends(creations_scope),
    session: Session = Depends(db, scope="function"),
) -> IdeaOut:
    """Make a collage (4-9 photos), a recap (3-30) or a restyle (1 photo) from your photos."""
    return _act(
        lambda: creations.create_idea(
            session,
            who.user.id,
            body.kind,
            list(body.asset_ids),
            body.title,
            layout=body.layout,
            style=body.style,
            fmt=body.format,
            track_id=body.track_id,
        ),
    )


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
