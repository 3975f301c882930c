"""What an owner's library holds, in numbers: the reads behind `camroll demo`'s summary (the
CLI renders them and records the read in the audit log)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetPlace, AssetQuality, AssetTag, Face, Person


@dataclass
class LibraryCounts:
    by_kind: Counter[str]  # ready assets by kind (image, raw, video)
    by_mime: Counter[str]


@dataclass
class AnalysisSummary:
    faces: int
    people: list[int]  # each person's face count, largest first
    tags: list[tuple[str, int]]  # the commonest labels
    places: list[tuple[str | None, str | None, str | None, int]]  # city, region, country, photos
    duplicate_groups: int


def library_counts(session: Session, user_id: str) -> LibraryCounts:
    rows = session.execute(
        select(Asset.kind, Asset.mime, func.count())
        .where(Asset.user_id == user_id, Asset.status == "ready")
        .group_by(Asset.kind, Asset.mime)
    ).all()
    by_kind: Counter[str] = Counter()
    by_mime: Counter[str] = Counter()
    for kind, mime, n in rows:
        by_kind[kind or "-"] += n
        by_mime[mime or "-"] += n
    return LibraryCounts(by_kind, by_mime)


def analysis_summary(
    session: Session, user_id: str, tags: int = 12, places: int = 8
) -> AnalysisSummary:
    """People, the commonest tags and places, near-duplicate groups."""
    faces = session.scalar(select(func.count()).where(Face.user_id == user_id)) or 0
    people = session.scalars(
        select(Person.face_count)
        .where(Person.user_id == user_id)
        .order_by(Person.face_count.desc())
    ).all()
    top_tags = session.execute(
        select(AssetTag.label, func.count())
        .where(AssetTag.user_id == user_id)
        .group_by(AssetTag.label)
        .order_by(func.count().desc())
        .limit(tags)
    ).all()
    # Place names are encrypted per user: count them in memory, not with GROUP BY.
    place_counts = Counter(
        tuple(row)
        for row in session.execute(
            select(AssetPlace.city, AssetPlace.region, AssetPlace.country).where(
                AssetPlace.user_id == user_id
            )
        )
    )
    groups = session.scalar(
        select(func.count(func.distinct(AssetQuality.duplicate_group))).where(
            AssetQuality.user_id == user_id
        )
    )
    return AnalysisSummary(
        faces=faces,
        people=list(people),
        tags=[(label, n) for label, n in top_tags],
        places=[(*k, n) for k, n in place_counts.most_common(places)],
        duplicate_groups=groups or 0,
    )
