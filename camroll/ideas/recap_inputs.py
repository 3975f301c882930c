"""What a recap is made from besides its pictures: the moment's feel (tags, smiles, hours and
pace) that picks the music's mood, the dates and places of its title card, and each photo's
place and day for the captions shown where the place changes. Only the
owner's rows of these assets are read, and the scopes they came under are returned so the
creation records them (and goes when any of them is switched off)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.create.soundtrack import MomentFeel
from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetTag, Face, FaceExpression
from camroll.pipeline.step import may_use

__all__ = ["RecapInputs", "recap_inputs"]


@dataclass
class RecapInputs:
    feel: MomentFeel
    subtitle: str  # "12-15 June 2015 · Yosemite, Fresno"
    seed: int  # the melody's seed: the same moment always gets the same tune
    scopes: set[str] = field(default_factory=set)
    places: dict[str, str] = field(default_factory=dict)  # asset id -> its city
    days: dict[str, str] = field(default_factory=dict)  # asset id -> "14 June"


def _local(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def _dates(days: list[datetime]) -> str:
    if not days:
        return ""
    first, last = min(days).date(), max(days).date()
    if first == last:
        return f"{first.day} {first:%B %Y}"
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day}-{last.day} {last:%B %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%B} - {last.day} {last:%B %Y}"
    return f"{first.day} {first:%B %Y} - {last.day} {last:%B %Y}"


def recap_inputs(session: Session, assets: list[Asset]) -> RecapInputs:
    if not assets:
        return RecapInputs(MomentFeel(), "", 0)
    user_id = assets[0].user_id
    ids = [a.id for a in assets]
    scopes: set[str] = set()

    def owned(model: type) -> list:
        rows = list(
            session.scalars(select(model).where(model.user_id == user_id, model.asset_id.in_(ids)))
        )
        scopes.update(r.scope for r in rows)
        return rows

    tags = [t.label for t in owned(AssetTag) if t.score >= 0.3]
    face_ids = [f.id for f in owned(Face)] if may_use("faces") else []  # inside a step
    smiles = []
    if face_ids:
        smiles = [e.smile for e in owned(FaceExpression) if e.face_id in set(face_ids)]
    metas = list(
        session.scalars(
            select(AssetMetadata).where(
                AssetMetadata.user_id == user_id, AssetMetadata.asset_id.in_(ids)
            )
        )
    )  # metadata comes with cloud processing itself, no further scope
    local = {m.asset_id: _local(m.taken_at_local) for m in metas}
    when = [t for t in local.values() if t is not None]
    hours = [t.hour for t in when]
    span_h = (max(when) - min(when)).total_seconds() / 3600 if len(when) > 1 else 0.0
    pace = len(when) / max(span_h, 1.0)
    # Places in the order first seen, at most three, as the title card's second half.
    seen: dict[str, None] = {}
    first_seen = {a.id: a.sort_at for a in assets}
    cities: dict[str, str] = {}
    for p in sorted(owned(AssetPlace), key=lambda p: first_seen.get(p.asset_id, datetime.min)):
        if p.city:
            seen.setdefault(p.city, None)
            cities[p.asset_id] = p.city
    places = ", ".join(list(seen)[:3])
    subtitle = " · ".join(x for x in (_dates(when), places) if x)
    seed = int.from_bytes(hashlib.sha256("".join(sorted(ids)).encode()).digest()[:4], "big")
    feel = MomentFeel(tags=tags, smiles=smiles, hours=hours, photos_per_hour=pace)
    days = {i: f"{t.day} {t:%B}" for i, t in local.items() if t is not None}
    return RecapInputs(feel, subtitle, seed, scopes, cities, days)
