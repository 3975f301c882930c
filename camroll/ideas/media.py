"""Rendering an idea's media from the owner's stored photos: collage, recap or restyle.

Photos come from their stored previews (decrypted in memory), faces from the faces table; video
clips are decrypted to a private work file (camroll.storage.workfiles) only while the recap is
encoded. The result is stored encrypted under the owner's key, like an original.

Everything here runs inside a step (camroll.ideas.generate.IdeasStep for the ideas pass,
camroll.ideas.creations.CreationStep for the owner's own), and both name `faces` in their
`uses`: face boxes, face-aware clip segments and smiles are read only while the runner says
`may_use("faces")`. Nothing here asks the consent gate.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetQuality, Face
from camroll.media.previews import preview_image
from camroll.pipeline.step import may_use
from camroll.storage.blobs import put_encrypted
from camroll.storage.workfiles import private_dir

if TYPE_CHECKING:
    from camroll.create.recap import RecapSlide
    from camroll.create.soundtrack import Mood

MIN_COLLAGE, MAX_COLLAGE = 4, 9
MAX_RECAP_PHOTOS = 16
MAX_RECAP_CLIPS = 2
MAX_LIVE_MOTION = 4  # Live Photos shown as their motion clip in one recap
MAX_PLACE_CAPTIONS = 4  # place changes captioned in one recap


def idea_blob_key(user_id: str, idea_id: str) -> str:
    return f"u/{user_id}/ideas/{idea_id}/media"


def _faces_px(session: Session, asset_id: str, size: tuple[int, int]) -> list[tuple[int, ...]]:
    if not may_use("faces"):
        return []
    w, h = size
    return [
        (round(f.box_x * w), round(f.box_y * h), round(f.box_w * w), round(f.box_h * h))
        for f in session.scalars(
            select(Face).where(Face.asset_id == asset_id, Face.at_seconds.is_(None))
        )
    ]


def faces_in(session: Session, assets: list[Asset]) -> bool:
    """Whether a collage or recap of these photos uses face boxes (face-aware crops, Ken Burns
    towards faces)."""
    ids = [a.id for a in assets]
    return (
        bool(ids)
        and may_use("faces")
        and session.scalar(select(Face.id).where(Face.asset_id.in_(ids)).limit(1)) is not None
    )


def creation_scope(
    session: Session, kind: str | None, assets: list[Asset], drew_on: Iterable[str] = ()
) -> str:
    """The composite scope a creation records: `creations`, the scopes its choice of photos
    drew on, and `faces` when its rendering used face boxes. Revoking any of them deletes it
    (camroll.privacy.retention.scope_matches), as it deletes the rows it came from."""
    scopes = {"creations", *(s for s in drew_on if s)}
    if kind in ("collage", "recap") and faces_in(session, assets):
        scopes.add("faces")
    if kind == "recap":
        from camroll.ideas.recap_inputs import recap_inputs

        # Its clips' segments were chosen counting faces in them, where the owner agreed.
        videos = any(a.kind == "video" or a.live_pair_id for a in assets)
        if videos and may_use("faces"):
            scopes.add("faces")

        # Its music's mood and title card drew on tags, expressions and places.
        scopes |= recap_inputs(session, assets).scopes
    # What it drew on may itself be composite (a "content+faces" row): each name once.
    return "+".join(sorted({part for s in scopes for part in s.split("+") if part}))


def best_photos(session: Session, assets: list[Asset], limit: int) -> list[Asset]:
    """The best shots, one per near-duplicate group, in time order."""
    quality = {
        q.asset_id: q
        for q in session.scalars(
            select(AssetQuality).where(AssetQuality.asset_id.in_([a.id for a in assets]))
        )
    }
    seen: set[str] = set()
    ranked = []
    for a in sorted(assets, key=lambda a: -(quality[a.id].score if a.id in quality else 0.5)):
        q = quality.get(a.id)
        group = q.duplicate_group if q else None
        if group and group in seen:
            continue
        if group:
            seen.add(group)
        ranked.append(a)
    return sorted(ranked[:limit], key=lambda a: a.sort_at)


def render_collage_for(
    session: Session, assets: list[Asset], title: str, layout: str = "auto"
) -> bytes:
    from camroll.create.collage import CollagePhoto, render_collage

    photos = []
    for a in assets:
        image = preview_image(session, a)
        if image is not None:
            photos.append(CollagePhoto(image, _faces_px(session, a.id, image.size), 0.5))
    return render_collage(photos[:MAX_COLLAGE], title, layout=layout)


@dataclass
class RecapPlan:
    """What a recap is made of before it is drawn: the story's slides (photos, clips' chosen
    segments, place captions) and its music's mood; `store` is the analysis still to save."""

    slides: list[RecapSlide]
    mood: Mood
    seed: int
    subtitle: str
    store: Callable[[], None]


def plan_recap(
    session: Session, photos: list[Asset], clips: list[Asset], stack: ExitStack
) -> RecapPlan:
    """The recap's story: photos and clips in the order they were taken, a caption where the
    place changes, each clip's best segment and the mood, analysed once per moment and reused
    by every format (camroll.ideas.recap_analysis). Clips are decrypted to work files that
    live as long as `stack`."""
    from camroll.create.clips import best_segment
    from camroll.create.recap import CardSlide, ClipSlide, PhotoSlide
    from camroll.create.soundtrack import MOODS, choose_mood
    from camroll.ideas.recap_analysis import (
        Analysis,
        analysis_key,
        cached_analysis,
        store_analysis,
    )
    from camroll.ideas.recap_inputs import recap_inputs
    from camroll.ingest.process import plaintext_copy

    chosen = photos[:MAX_RECAP_PHOTOS] + clips[:MAX_RECAP_CLIPS]
    if not chosen:
        raise ValueError("a recap needs at least one photo or video")
    user_id = chosen[0].user_id
    inputs = recap_inputs(session, chosen)
    # Live Photos contribute their motion clip (a few of them: each is decoded while encoding).
    ids = {a.id for a in chosen}
    videos: dict[str, Asset] = {a.id: a for a in chosen if a.kind == "video"}
    live = 0
    for a in chosen:
        if live == MAX_LIVE_MOTION:
            break
        if a.kind != "video" and a.live_pair_id and a.live_pair_id not in ids:
            partner = session.get(Asset, a.live_pair_id)
            if partner and partner.user_id == a.user_id and partner.status == "ready":
                videos[a.id] = partner
                live += 1
    faces_ok = may_use("faces")
    key = analysis_key([a.id for a in chosen] + [v.id for v in videos.values()], faces_ok)
    analysis = cached_analysis(session, user_id, key)
    segments = dict(analysis.segments) if analysis else {}
    mood = (MOODS.get(analysis.mood) if analysis else None) or choose_mood(inputs.feel)
    slides: list[RecapSlide] = []
    place: str | None = None
    captions = 0
    for a in sorted(chosen, key=lambda a: a.sort_at):  # the moment's story, in time
        here = inputs.places.get(a.id)
        moved = bool(here and place and here != place and captions < MAX_PLACE_CAPTIONS)
        place = here or place
        image: Image.Image | None = None
        slide: RecapSlide
        if a.id in videos:
            video = videos[a.id]
            path = stack.enter_context(plaintext_copy(session, video))
            if video.id not in segments:
                segments[video.id] = best_segment(path, 3.0, faces=faces_ok)
            slide = ClipSlide(path, *segments[video.id])
        else:
            image = preview_image(session, a)
            if image is None:
                continue
            slide = PhotoSlide(image, _faces_px(session, a.id, image.size))
        if moved and here:
            # The place is shown where it changes, over the picture that arrives there.
            slides.append(CardSlide(here, inputs.days.get(a.id, ""), image))
            captions += 1
        slides.append(slide)

    def store() -> None:
        if analysis is None:
            scope = creation_scope(session, "recap", chosen)
            done = Analysis(segments, mood.name, inputs.seed)
            store_analysis(session, user_id, key, done, chosen[0].id, scope)

    return RecapPlan(slides, mood, inputs.seed, inputs.subtitle, store)


def render_recap_for(
    session: Session,
    photos: list[Asset],
    clips: list[Asset],
    title: str,
    subtitle: str,
    fmt: str = "9:16",
    track_id: str | None = None,
) -> bytes:
    """A recap in `fmt` (9:16, 16:9 or 1:1) of the story `plan_recap` tells, set to music in
    the moment's mood or to the owner's track `track_id` (LookupError when it is not theirs);
    `subtitle` defaults to the dates and places."""
    from camroll.create.recap import FORMATS, MAX_SECONDS, render_recap
    from camroll.ideas.tracks import get_track, track_music

    owner = (photos or clips)[0].user_id if photos or clips else ""
    track = get_track(session, owner, track_id) if track_id else None
    with ExitStack() as stack:
        plan = plan_recap(session, photos, clips, stack)
        music, beat = track_music(session, track, MAX_SECONDS + 1) if track else (None, None)
        out = stack.enter_context(private_dir("camroll-recap-")) / "recap.mp4"
        render_recap(plan.slides, out, title, subtitle or plan.subtitle, size=FORMATS[fmt],
                     mood=plan.mood, seed=plan.seed, track=music, beat=beat)  # fmt: skip
        data = out.read_bytes()
    plan.store()  # after the render: no write is pending while it encodes
    return data


def render_restyle_for(session: Session, asset: Asset, style: str, title: str) -> bytes:
    from camroll.create.ai_label import label_ai_image
    from camroll.create.restyle import digital_source_type, restyle
    from camroll.ideas.identity import signing_identity

    image = preview_image(session, asset)
    if image is None:
        raise ValueError("this photo has no preview to restyle")
    out = io.BytesIO()
    restyle(image, style).save(out, "JPEG", quality=90)
    return label_ai_image(
        out.getvalue(), signing_identity(), title, digital_source_type=digital_source_type(style)
    )


def store_media(session: Session, user_id: str, idea_id: str, data: bytes) -> str:
    key = idea_blob_key(user_id, idea_id)
    put_encrypted(session, user_id, key, io.BytesIO(data))
    return key


def cover_image(session: Session, asset: Asset) -> Image.Image | None:
    return preview_image(session, asset)
