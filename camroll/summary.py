"""What an owner's library holds, in numbers: the reads behind `camroll demo`'s summary and the
timeline's header and info panel (the CLI and the web pages render them and record the read in
the audit log)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import extract, func, or_, select
from sqlalchemy.orm import Session

from camroll.db.models import (
    Asset,
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    Person,
    derived_models,
)


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


@dataclass
class Overview:
    counts: dict[str, int]  # assets by status; "ready" counts a Live Photo once, as the grid
    years: list[int]  # years with ready photos, newest first
    quarantined: list[Asset]  # by file name


def overview(session: Session, user_id: str) -> Overview:
    counts = dict(
        session.execute(
            select(Asset.status, func.count())
            .where(Asset.user_id == user_id)
            .group_by(Asset.status)
        ).all()
    )
    counts["ready"] = (
        session.scalar(
            select(func.count()).where(
                Asset.user_id == user_id,
                Asset.status == "ready",
                or_(Asset.kind != "video", Asset.live_pair_id.is_(None)),
            )
        )
        or 0
    )
    years = [
        int(y)
        for y in session.scalars(
            select(extract("year", Asset.sort_at).label("y"))
            .where(Asset.user_id == user_id, Asset.status == "ready")
            .group_by("y")
            .order_by(extract("year", Asset.sort_at).desc())
        )
        if y is not None
    ]
    # File names may be stored encrypted: sorted here, not in SQL.
    quarantined = sorted(
        session.scalars(
            select(Asset).where(Asset.user_id == user_id, Asset.status == "quarantined")
        ),
        key=lambda a: a.filename,
    )
    return Overview(counts, years, quarantined)


def provenance(session: Session, asset: Asset) -> list[dict[str, object]]:
    """For each kind of derived datum about this photo: which scope allowed it and which
    model made it (found through derived_models(), as the report and the purge do)."""
    out = []
    for model in derived_models():
        rows = session.execute(
            select(model.scope, model.model, model.model_version, func.count())  # type: ignore[attr-defined]
            .where(model.user_id == asset.user_id, model.asset_id == asset.id)  # type: ignore[attr-defined]
            .group_by(model.scope, model.model, model.model_version)  # type: ignore[attr-defined]
        ).all()
        for scope, name, version, n in rows:
            out.append(
                {
                    "what": model.__category__ or model.__tablename__,  # type: ignore[attr-defined]
                    "scope": scope,
                    "model": f"{name} {version}",
                    "count": n,
                }
            )
    return sorted(out, key=lambda r: str(r["what"]))
