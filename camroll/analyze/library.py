"""The library-wide part of analysis: what needs all of an owner's photos at once (home areas,
near-duplicate groups, people's covers), run after each batch of per-asset analysis."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from camroll.consent.gate import is_granted
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    ConsentState,
    HomeLocation,
    HomePeriodRow,
    new_id,
)
from camroll.people.assign import recluster_user, refresh_people

if TYPE_CHECKING:
    from camroll.places.home import HomePeriod

log = logging.getLogger(__name__)
HOMES_MODEL = ("camroll-home-inference", "1")
HOME_PERIODS_MODEL = ("camroll-home-periods", "1")


def refresh_library(user_id: str) -> None:
    with session_scope() as session:
        if not is_granted(session, user_id, "cloud_processing"):
            return
        if is_granted(session, user_id, "places"):
            refresh_homes(session, user_id)
        if is_granted(session, user_id, "content"):
            refresh_duplicates(session, user_id)
        if is_granted(session, user_id, "faces"):
            refresh_people(session, user_id, None)


def _local_date(meta: AssetMetadata) -> date | None:
    if meta.taken_at_local:
        try:
            return datetime.fromisoformat(meta.taken_at_local).date()
        except ValueError:
            return None
    return None


def refresh_homes(session: Session, user_id: str) -> None:
    """Infer home areas from where photos are taken on the most days; set every place's
    distance from the nearest home."""
    from camroll.places.home import GeoPoint, distance_from_home, infer_home_periods, infer_homes

    metas = list(
        session.scalars(
            select(AssetMetadata)
            .join(Asset, Asset.id == AssetMetadata.asset_id)
            .where(
                AssetMetadata.user_id == user_id,
                Asset.status == "ready",
                AssetMetadata.latitude.is_not(None),
                AssetMetadata.longitude.is_not(None),
            )
        )
    )
    points = [GeoPoint(m.latitude, m.longitude, _local_date(m), _local_hour(m)) for m in metas]  # type: ignore[arg-type]
    homes = infer_homes(points) if points else []
    _store_periods(session, user_id, infer_home_periods(points))
    session.query(HomeLocation).filter(HomeLocation.user_id == user_id).delete()
    for h in homes:
        session.add(
            HomeLocation(
                id=new_id(),
                user_id=user_id,
                asset_id=None,
                scope="places",
                model=HOMES_MODEL[0],
                model_version=HOMES_MODEL[1],
                latitude=h.latitude,
                longitude=h.longitude,
                label=_home_label(h.latitude, h.longitude),
                days=h.days,
                photos=h.photos,
                share=h.share,
            )
        )
    by_asset = {m.asset_id: m for m in metas}
    for place in session.scalars(select(AssetPlace).where(AssetPlace.user_id == user_id)):
        m = by_asset.get(place.asset_id)
        d = distance_from_home(m.latitude, m.longitude, homes) if m and homes else None  # type: ignore[arg-type]
        place.distance_from_home_km = round(d, 2) if d is not None else None
    session.flush()


def _local_hour(meta: AssetMetadata) -> int | None:
    if meta.taken_at_local:
        try:
            return datetime.fromisoformat(meta.taken_at_local).hour
        except ValueError:
            return None
    return None


def _store_periods(session: Session, user_id: str, periods: list[HomePeriod]) -> None:
    """Replace the owner's home periods (where they lived when), shown in the report."""
    session.query(HomePeriodRow).filter(HomePeriodRow.user_id == user_id).delete()
    for p in periods:
        session.add(
            HomePeriodRow(
                id=new_id(),
                user_id=user_id,
                asset_id=None,
                scope="places",
                model=HOME_PERIODS_MODEL[0],
                model_version=HOME_PERIODS_MODEL[1],
                latitude=p.latitude,
                longitude=p.longitude,
                label=_home_label(p.latitude, p.longitude),
                start_date=p.start.isoformat(),
                end_date=p.end.isoformat(),
                days=p.days,
                share=p.share,
            )
        )


def _home_label(lat: float, lon: float) -> str | None:
    from camroll.places.geocode import reverse_geocode

    place = reverse_geocode([(lat, lon)])[0]
    return place.label() if place else None


def refresh_duplicates(session: Session, user_id: str) -> None:
    """Group near-duplicates and bursts; the best shot of each group is marked."""
    from camroll.analyze.similar import SimilarItem, group_near_duplicates

    rows = session.execute(
        select(AssetQuality, Asset.sort_at)
        .join(Asset, Asset.id == AssetQuality.asset_id)
        .where(AssetQuality.user_id == user_id)
    ).all()
    items = [SimilarItem(q.asset_id, q.phash, at, q.score) for q, at in rows]
    session.execute(
        update(AssetQuality)
        .where(AssetQuality.user_id == user_id)
        .values(duplicate_group=None, is_best=True)
    )
    by_asset = {q.asset_id: q for q, _ in rows}
    for group in group_near_duplicates(items):
        gid = new_id()
        for member in group.members:
            q = by_asset[member]
            q.duplicate_group, q.is_best = gid, member == group.best
    session.flush()


def recluster_all() -> list[str]:
    """Recluster every owner who has faces on; returns the owners with any analysis scope on,
    whose library refresh the caller then queues."""
    from camroll.analyze.run import ANALYSIS_SCOPES

    with session_scope() as session:
        users = sorted(
            set(
                session.scalars(
                    select(ConsentState.user_id).where(
                        ConsentState.scope.in_(ANALYSIS_SCOPES), ConsentState.granted.is_(True)
                    )
                )
            )
        )
    for user_id in users:
        with session_scope() as session:
            if is_granted(session, user_id, "faces"):
                stats = recluster_user(session, user_id)
                log.info("reclustered %s: %s", user_id, stats)
    return users
