"""Rendering an idea's media from the owner's stored photos: collage, recap or restyle.

Photos come from their stored previews (decrypted in memory), faces from the faces table; video
clips are decrypted to a private work file (camroll.storage.workfiles) only while the recap is
encoded. The result is stored encrypted under the owner's key, like an original.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from contextlib import ExitStack

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.analyze.run import preview_image
from camroll.db.models import Asset, AssetQuality, Face
from camroll.storage.blobs import put_encrypted
from camroll.storage.workfiles import private_dir

MIN_COLLAGE, MAX_COLLAGE = 4, 9
MAX_RECAP_PHOTOS = 16
MAX_RECAP_CLIPS = 2
MAX_LIVE_MOTION = 4  # Live Photos shown as their motion clip in one recap


def idea_blob_key(user_id: str, idea_id: str) -> str:
    return f"u/{user_id}/ideas/{idea_id}/media"


def _faces_px(session: Session, asset_id: str, size: tuple[int, int]) -> list[tuple[int, ...]]:
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

        # Its music's mood and title card drew on tags, expressions and places.
        scopes |= recap_inputs(session, assets).scopes
    return "+".join(sorted(scopes))


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


def render_recap_for(
    session: Session,
    photos: list[Asset],
    clips: list[Asset],
    title: str,
    subtitle: str,
    fmt: str = "9:16",
) -> bytes:
    """A recap in `fmt` (9:16, 16:9 or 1:1): music in the moment's mood, each clip's best
    scene, photos and clips in the order they were taken; `subtitle` defaults to the dates
    and places."""
    from camroll.create.clips import best_segment
    from camroll.create.recap import FORMATS, ClipSlide, PhotoSlide, render_recap
    from camroll.create.soundtrack import choose_mood
    from camroll.ideas.recap_inputs import recap_inputs
    from camroll.ingest.process import plaintext_copy

    chosen = photos[:MAX_RECAP_PHOTOS] + clips[:MAX_RECAP_CLIPS]
    inputs = recap_inputs(session, chosen)
    # Live Photos contribute their motion clip (a few of them: each is decoded while encoding).
    ids = {a.id for a in chosen}
    motion: dict[str, Asset] = {}
    for a in chosen:
        if a.kind != "video" and a.live_pair_id and a.live_pair_id not in ids:
            partner = session.get(Asset, a.live_pair_id)
            if partner and partner.user_id == a.user_id and partner.status == "ready":
                motion[a.id] = partner
        if len(motion) == MAX_LIVE_MOTION:
            break
    with ExitStack() as stack:
        slides: list[PhotoSlide | ClipSlide] = []
        for a in sorted(chosen, key=lambda a: a.sort_at):  # the moment's story, in time
            if a.kind == "video" or a.id in motion:
                video = motion.get(a.id, a)
                path = stack.enter_context(plaintext_copy(session, video))
                start, length = best_segment(path, 3.0)
                slides.append(ClipSlide(path, start, length))
                continue
            image = preview_image(session, a)
            if image is not None:
                slides.append(PhotoSlide(image, _faces_px(session, a.id, image.size)))
        workdir = stack.enter_context(private_dir("camroll-recap-"))
        out = workdir / "recap.mp4"
        render_recap(slides, out, title, subtitle or inputs.subtitle, size=FORMATS[fmt],
                     mood=choose_mood(inputs.feel), seed=inputs.seed)  # fmt: skip
        return out.read_bytes()


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
