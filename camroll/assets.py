"""The owner's assets as every door shows them (GET /api/assets, the timeline and its viewer's
info panel, search results, the trash): one cursor order, one asset by id, and what analysis
derived from it. Every read is scoped to its owner; the doors translate the rows and record
the read in the audit log.

Errors: LookupError for an asset the owner does not have (404 at the doors, someone else's
alike), BadCursor for a cursor this module did not write (400).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.engine import Row as DbRow
from sqlalchemy.orm import Session, aliased

from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    FaceExpression,
    Person,
    Rendition,
)

Row = tuple[Asset, AssetMetadata | None]


class BadCursor(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid cursor")


def aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def encode_cursor(asset: Asset) -> str:
    raw = json.dumps([asset.sort_at.isoformat(), asset.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, asset_id = json.loads(raw)
        return aware(datetime.fromisoformat(at)).astimezone(UTC), str(asset_id)
    except (binascii.Error, ValueError, TypeError, OverflowError) as e:
        raise BadCursor from e


def _after(q: Select, cursor: str | None) -> Select:
    """Newest first by capture time (upload time when unknown), then id: the rows past
    `cursor`."""
    if cursor:
        at, last_id = decode_cursor(cursor)
        q = q.where(or_(Asset.sort_at < at, and_(Asset.sort_at == at, Asset.id < last_id)))
    return q.order_by(Asset.sort_at.desc(), Asset.id.desc())


def _paged(session: Session, q: Select, limit: int) -> tuple[list, str | None]:
    rows = session.execute(q.limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1][0]) if more and rows else None)


@dataclass(frozen=True)
class AssetFilter:
    """What GET /api/assets narrows by; None leaves it open."""

    taken_from: datetime | None = None
    taken_to: datetime | None = None
    kind: str | None = None
    status: str | None = None  # None: everything but the trash (asked for by name)
    person: str | None = None  # a person id: photos with their face
    tag: str | None = None  # a tag label
    place: str | None = None  # a city, region, country or country code


def list_assets(
    session: Session, user_id: str, f: AssetFilter, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """One page of the owner's assets, with their metadata, and the next page's cursor."""
    q = (
        select(Asset, AssetMetadata)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == user_id)
    )
    if f.person is not None:
        faces = select(Face.asset_id).where(Face.user_id == user_id, Face.person_id == f.person)
        q = q.where(Asset.id.in_(faces))
    if f.tag is not None:
        label = f.tag.strip().lower()
        tags = select(AssetTag.asset_id).where(AssetTag.user_id == user_id, AssetTag.label == label)
        q = q.where(Asset.id.in_(tags))
    if f.place is not None:
        name = f.place.strip().lower()
        # Place names are encrypted per user: match them in memory, then filter by id.
        rows = session.execute(
            select(
                AssetPlace.asset_id,
                AssetPlace.city,
                AssetPlace.region,
                AssetPlace.country,
                AssetPlace.country_code,
            ).where(AssetPlace.user_id == user_id)
        )
        ids = [r[0] for r in rows if any(v and v.lower() == name for v in r[1:])]
        q = q.where(Asset.id.in_(ids))
    if f.taken_from is not None:
        q = q.where(Asset.sort_at >= aware(f.taken_from))
    if f.taken_to is not None:
        q = q.where(Asset.sort_at < aware(f.taken_to))
    if f.kind is not None:
        q = q.where(Asset.kind == f.kind)
    if f.status is not None:
        q = q.where(Asset.status == f.status)
    else:
        q = q.where(Asset.status != "trashed")
    rows, next_cursor = _paged(session, _after(q, cursor), limit)
    return [(a, m) for a, m in rows], next_cursor


@dataclass
class TimelineRow:
    asset: Asset
    meta: AssetMetadata | None
    thumb: tuple[int | None, int | None]  # the thumbnail's width and height
    preview: tuple[int | None, int | None]


def timeline(
    session: Session, user_id: str, cursor: str | None, before: datetime | None, limit: int
) -> tuple[list[TimelineRow], str | None]:
    """One page of the timeline grid: ready photos and videos in the API's order (the
    instant, whatever clock the camera had), a Live Photo once (as its still), with their
    renditions' sizes for the justified layout."""
    thumb = aliased(Rendition)
    preview = aliased(Rendition)
    q = (
        select(Asset, AssetMetadata, thumb.width, thumb.height, preview.width, preview.height)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .outerjoin(thumb, and_(thumb.asset_id == Asset.id, thumb.kind == "thumbnail"))
        .outerjoin(preview, and_(preview.asset_id == Asset.id, preview.kind == "preview"))
        .where(
            Asset.user_id == user_id,
            Asset.status == "ready",
            or_(Asset.kind != "video", Asset.live_pair_id.is_(None)),
        )
    )
    if before is not None:
        q = q.where(Asset.sort_at < before)
    rows, next_cursor = _paged(session, _after(q, cursor), limit)
    return [TimelineRow(a, m, (tw, th), (pw, ph)) for a, m, tw, th, pw, ph in rows], next_cursor


def backup_listing(session: Session, user_id: str) -> Sequence[DbRow[Any]]:
    """The owner's photos outside the trash as the backup folder (WebDAV) lists them, in the
    instant's order: (id, size, mime, checksum, uploaded_at, sort_at, filename, device_path,
    local capture time). Columns, not entities: a 20,000-photo library lists in a fraction of
    the time."""
    q = (
        select(
            Asset.id,
            Asset.size,
            Asset.mime,
            Asset.checksum,
            Asset.uploaded_at,
            Asset.sort_at,
            Asset.filename,
            Asset.device_path,
            AssetMetadata.taken_at_local,
        )
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == user_id, Asset.trashed_at.is_(None))
        .order_by(Asset.sort_at, Asset.id)
    )
    return session.execute(q).all()


def owned_asset(session: Session, user_id: str, asset_id: str) -> Asset:
    asset = session.scalars(
        select(Asset).where(Asset.id == asset_id, Asset.user_id == user_id)
    ).first()
    if asset is None:
        raise LookupError("asset")
    return asset


def metadata(session: Session, asset: Asset) -> AssetMetadata | None:
    return session.scalars(select(AssetMetadata).where(AssetMetadata.asset_id == asset.id)).first()


def with_metadata(session: Session, user_id: str, ids: list[str]) -> dict[str, Row]:
    """The owner's assets among `ids` (anyone else's are left out), with their metadata."""
    rows = session.execute(
        select(Asset, AssetMetadata)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == user_id, Asset.id.in_(ids))
    )
    return {a.id: (a, m) for a, m in rows}


def filenames(session: Session, user_id: str, ids: list[str]) -> dict[str, str]:
    """The names of the owner's assets among `ids`."""
    rows = session.execute(
        select(Asset.id, Asset.filename).where(Asset.user_id == user_id, Asset.id.in_(ids))
    )
    return {asset_id: name for asset_id, name in rows}


def rendition(session: Session, asset: Asset, kind: str) -> Rendition | None:
    return session.scalars(
        select(Rendition).where(Rendition.asset_id == asset.id, Rendition.kind == kind)
    ).first()


@dataclass
class Derived:
    """What analysis derived from one asset."""

    faces: list[tuple[Face, FaceExpression | None, str | None]]  # with the person's name
    tags: list[AssetTag]  # best first
    place: AssetPlace | None
    quality: AssetQuality | None


def derived(session: Session, asset: Asset) -> Derived:
    faces = session.execute(
        select(Face, FaceExpression, Person.name)
        .outerjoin(FaceExpression, FaceExpression.face_id == Face.id)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Face.asset_id == asset.id, Face.user_id == asset.user_id)
        .order_by(Face.at_seconds, Face.box_x)
    ).all()
    tags = session.scalars(
        select(AssetTag).where(AssetTag.asset_id == asset.id).order_by(AssetTag.score.desc())
    )
    return Derived(
        faces=[(f, e, name) for f, e, name in faces],
        tags=list(tags),
        place=session.get(AssetPlace, asset.id),
        quality=session.get(AssetQuality, asset.id),
    )
