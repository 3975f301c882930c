"""A person's cover: a square JPEG of their best face, cut from the photo's preview."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image
from sqlalchemy.orm import Session

from camroll.db.models import Asset, Face, Person
from camroll.media.previews import preview_image

COVER_PX = 256
MARGIN = 0.35  # of the face's size on each side: hair and chin stay in


@dataclass(frozen=True)
class Cover:
    jpeg: bytes
    asset_id: str  # the photo it was cut from (the access log names it)


def person_cover(session: Session, person: Person) -> Cover | None:
    """The cover of a person the caller owns; None when there is no usable face or preview."""
    face = session.get(Face, person.cover_face_id) if person.cover_face_id else None
    if face is not None and face.user_id != person.user_id:
        face = None  # only the refresh sets covers, from the person's own faces: never cross owners
    asset = session.get(Asset, face.asset_id) if face is not None else None
    image = preview_image(session, asset) if asset is not None else None
    if face is None or image is None:
        return None
    return Cover(square_crop(image, face), face.asset_id)


def square_crop(image: Image.Image, face: Face, margin: float = MARGIN) -> bytes:
    w, h = image.size
    cx, cy = (face.box_x + face.box_w / 2) * w, (face.box_y + face.box_h / 2) * h
    side = max(face.box_w * w, face.box_h * h) * (1 + 2 * margin)
    box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    crop = image.crop(tuple(round(v) for v in box)).resize((COVER_PX, COVER_PX))
    out = io.BytesIO()
    crop.convert("RGB").save(out, "JPEG", quality=85)
    return out.getvalue()
