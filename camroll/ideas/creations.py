"""What the owner does with ideas, for every door (API, web): make a collage, recap or restyle
from their photos, render one again in another layout, style, format or music, keep one, or
dismiss one (its media is deleted). The API and the pages only translate these calls.

Errors: LookupError for what the owner does not have (404), ValueError for a request that cannot
be made (422), with a message for the owner, ConsentRequired when `creations` is off (403).

Rendering runs as a step (CreationStep) under the step contract, like the ideas pass: the runner
asks for `creations` and answers `faces` (face-aware crops and clip segments) for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.consent.gate import ConsentRequired
from camroll.db.models import Asset, Idea, new_id, utcnow
from camroll.ideas import media
from camroll.pipeline.step import BaseStep, run_steps

__all__ = [
    "RECAP_FORMATS",
    "CreationStep",
    "Rerender",
    "accept_idea",
    "create_idea",
    "dismiss_idea",
    "owned_idea",
    "regenerate_idea",
]

RECAP_FORMATS = ("9:16", "16:9", "1:1")
UNSET = object()


@dataclass(frozen=True)
class Rerender:
    """What to change when an idea is made again; None keeps (or, for a layout, advances)."""

    layout: str | None = None
    style: str | None = None  # a human name (camroll.create.style_names)
    format: str | None = None
    track_id: object = UNSET  # a track id, None for the mood's own music, UNSET to keep


def owned_idea(session: Session, user_id: str, idea_id: str) -> Idea:
    idea = session.scalars(select(Idea).where(Idea.id == idea_id, Idea.user_id == user_id)).first()
    if idea is None:
        raise LookupError("idea")
    return idea


def list_ideas(session: Session, user_id: str, state: str | None = None) -> list[Idea]:
    """The owner's ideas in `state` (default: suggested and accepted), best first."""
    q = select(Idea).where(Idea.user_id == user_id)
    q = q.where(Idea.state == state) if state else q.where(Idea.state != "dismissed")
    return list(session.scalars(q.order_by(Idea.score.desc(), Idea.id)))


def owned_assets(session: Session, user_id: str, ids: list[str]) -> list[Asset]:
    mine = (Asset.user_id == user_id, Asset.id.in_(ids), Asset.status == "ready")
    found = {a.id: a for a in session.scalars(select(Asset).where(*mine))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise LookupError(f"asset not found or not ready: {missing[0]}")
    return [found[i] for i in ids]


def accept_idea(session: Session, user_id: str, idea_id: str) -> Idea:
    """Keep the creation: it stays as it is and goes into the export."""
    idea = owned_idea(session, user_id, idea_id)
    idea.state, idea.accepted_at = "accepted", utcnow()
    return idea


def dismiss_idea(session: Session, user_id: str, idea_id: str) -> Idea:
    """Never suggest it again; a dismissed creation's media is not kept."""
    from camroll.storage import get_store

    idea = owned_idea(session, user_id, idea_id)
    idea.state = "dismissed"
    if idea.blob_key:
        get_store().delete(idea.blob_key)
        idea.blob_key = idea.media_mime = None
    return idea


def _style(name: str | None) -> str | None:
    """The style's human name as params keep it (checked: an unknown one is a ValueError)."""
    from camroll.create.style_names import style_id, style_name

    return style_name(style_id(name)) if name else None


def _format(fmt: str | None) -> str:
    fmt = fmt or "9:16"
    if fmt not in RECAP_FORMATS:
        raise ValueError(f"a recap is made in {', '.join(RECAP_FORMATS)}, not {fmt}")
    return fmt


def create_idea(
    session: Session,
    user_id: str,
    kind: str,
    asset_ids: list[str],
    title: str,
    *,
    layout: str = "auto",
    style: str | None = None,
    fmt: str | None = None,
    track_id: str | None = None,
) -> Idea:
    """A collage (4-9 photos), a recap (3-30) or a restyle (1 photo) made by the owner, kept."""
    from camroll.ideas.generate import IDEAS_MODEL

    assets = owned_assets(session, user_id, asset_ids)
    idea = Idea(
        id=new_id(),
        user_id=user_id,
        asset_id=assets[0].id,
        scope="creations",
        model=IDEAS_MODEL[0],
        model_version=IDEAS_MODEL[1],
        fingerprint=f"owner:{utcnow().isoformat()}:{assets[0].id}",
        kind=kind,
        title=title,
        reason="made by you",
        confidence=1.0,
        score=0.0,
        state="accepted",
        accepted_at=utcnow(),
        member_ids=json.dumps([a.id for a in assets]),
        members_hash="",
        params="{}",
    )
    params: dict[str, object] = {}
    if kind == "collage":
        params["layout"] = layout
    elif kind == "restyle":
        params["style"] = _style(style)
    elif kind == "recap":
        params["format"] = _format(fmt)
        if track_id:
            params["track_id"] = track_id
    # Rendered before the row is added: no write is pending (so no SQLite write lock is held)
    # for the seconds a recap takes; the row and its media land in one short commit.
    session.rollback()
    _render_into(session, idea, kind, assets, params)
    session.add(idea)
    session.flush()
    return idea


def regenerate_idea(session: Session, user_id: str, idea_id: str, change: Rerender) -> Idea:
    """Render again: a collage in its next (or the given) layout, a restyle in another style,
    a recap in another format or with other music."""
    idea = owned_idea(session, user_id, idea_id)
    assets = owned_assets(session, user_id, json.loads(idea.member_ids))
    params = json.loads(idea.params or "{}")
    if idea.kind == "recap" or idea.media_mime == "video/mp4":
        if change.format is None and change.track_id is UNSET:
            raise ValueError("recaps have no layouts or styles; give a format or a track")
        params["format"] = _format(change.format or params.get("format"))
        if change.track_id is not UNSET:
            params.pop("track_id", None)
            if change.track_id:
                params["track_id"] = change.track_id
        _render_into(session, idea, "recap", assets, params)
        return idea
    if params.get("style") or change.style:
        params["style"] = _style(change.style) or params["style"]
    else:
        params["layout"] = change.layout or _next_layout(params.get("layout"))
    _render_into(session, idea, "restyle" if params.get("style") else "collage", assets, params)
    return idea


def _next_layout(current: object) -> str:
    from camroll.create.collage import LAYOUTS

    return LAYOUTS[(LAYOUTS.index(current) + 1) % len(LAYOUTS)] if current in LAYOUTS else "grid"


class CreationStep(BaseStep):
    """One creation the owner asked for (made or made again), drawn into its idea."""

    name = "creation"
    scope = "creations"
    uses = ("faces",)  # face boxes for crops and Ken Burns, faces in clip segments
    reads = ("assets", "previews", "faces", "asset_tags", "face_expressions", "asset_places")
    writes = ("idea media", "recap_analyses")

    def __init__(self, kind: str, assets: list[Asset], params: dict[str, object]) -> None:
        self.kind, self.assets, self.params = kind, assets, params

    def run(self, session: Session, subject: Idea) -> None:
        _draw(session, subject, self.kind, self.assets, self.params)


def _render_into(
    session: Session, idea: Idea, kind: str, assets: list[Asset], params: dict[str, object]
) -> None:
    (done,) = run_steps(session, idea.user_id, [CreationStep(kind, assets, params)], idea)
    if done.refused == "consent":
        raise ConsentRequired(CreationStep.scope)


def _draw(
    session: Session, idea: Idea, kind: str, assets: list[Asset], params: dict[str, object]
) -> None:
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
        track = params.get("track_id")
        try:
            data = media.render_recap_for(
                session, photos, clips, idea.title, "", str(params.get("format") or "9:16"),
                track_id=str(track) if track else None,
            )  # fmt: skip
        except LookupError:
            raise ValueError("that track is not yours or was deleted; choose another") from None
        mime = "video/mp4"
    else:
        if len(assets) != 1 or not params.get("style"):
            raise ValueError("a restyle takes exactly one photo and a style")
        from camroll.create.style_names import style_id

        style = style_id(str(params["style"]))  # params name it; the renderer takes the id
        data = media.render_restyle_for(session, assets[0], style, idea.title)
        mime = "image/jpeg"
    idea.blob_key = media.store_media(session, idea.user_id, idea.id, data)  # replaces the old
    idea.media_mime, idea.params = mime, json.dumps(params)
    idea.updated_at = utcnow()
    idea.scope = media.creation_scope(session, kind, assets, idea.scope.split("+"))
