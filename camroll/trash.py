"""The trash: deleted photos wait here, restorable, for CAMROLL_TRASH_DAYS; then (or when the
owner empties it) they are erased with everything derived from them.

A trashed asset has status "trashed", so every reader that asks for "ready" assets (timeline,
search, analysis, ideas, people covers) stops seeing it at once, with no extra filter.
Erasing finds derived rows through `derived_models()`, never a hand-kept list of tables.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AuditEvent,
    Base,
    Face,
    Idea,
    JobRun,
    Upload,
    derived_models,
    utcnow,
)
from camroll.keyring import shred_asset_key
from camroll.storage import get_store

log = logging.getLogger(__name__)
TRASHED = "trashed"


class StillProcessing(Exception):
    """An asset being ingested cannot be trashed yet: the ingest would bring it back."""


def _with_partner(session: Session, asset: Asset) -> list[Asset]:
    """A Live Photo's still and motion clip go to (and come back from) the trash together."""
    found = [asset]
    if asset.live_pair_id:
        partner = session.get(Asset, asset.live_pair_id)
        if partner is not None and partner.user_id == asset.user_id:
            found.append(partner)
    return found


def _people_of(session: Session, asset_ids: list[str]) -> set[str]:
    return {
        pid
        for pid in session.scalars(select(Face.person_id).where(Face.asset_id.in_(asset_ids)))
        if pid
    }


def _refresh_people(session: Session, user_id: str, person_ids: set[str]) -> None:
    if person_ids:
        from camroll.people.assign import refresh_people

        refresh_people(session, user_id, person_ids)


def trash_asset(session: Session, asset: Asset) -> list[Asset]:
    """Move the asset (and its Live Photo partner) to the trash; returns what moved."""
    if asset.status == "pending":
        raise StillProcessing("this file is still being processed; try again shortly")
    moved = [a for a in _with_partner(session, asset) if a.status != TRASHED]
    now = utcnow()
    for a in moved:
        a.status, a.trashed_at = TRASHED, now
    session.flush()
    _refresh_people(session, asset.user_id, _people_of(session, [a.id for a in moved]))
    return moved


def restore_asset(session: Session, asset: Asset) -> list[Asset]:
    """Back to the timeline as it was: ready, or quarantined with its reason."""
    back = [a for a in _with_partner(session, asset) if a.status == TRASHED]
    for a in back:
        a.status = "quarantined" if a.quarantine_reason else "ready"
        a.trashed_at = None
    session.flush()
    _refresh_people(session, asset.user_id, _people_of(session, [a.id for a in back]))
    return back


def _withdraw_ideas(session: Session, user_id: str, asset_id: str) -> int:
    """Any idea or creation that used the photo is withdrawn, its media deleted."""
    store = get_store()
    ideas = session.scalars(
        select(Idea).where(
            Idea.user_id == user_id,
            or_(Idea.asset_id == asset_id, Idea.member_ids.contains(json.dumps(asset_id))),
        )
    ).all()
    withdrawn = 0
    for idea in ideas:
        if asset_id not in json.loads(idea.member_ids) and idea.asset_id != asset_id:
            continue  # a substring match only; not a member
        if idea.blob_key:
            store.delete(idea.blob_key)
        session.delete(idea)
        withdrawn += 1
    session.flush()
    return withdrawn


def erase_asset(session: Session, asset: Asset) -> dict[str, int]:
    """Shred the photo's key, then remove the original, its renditions, every derived row and
    every idea that used it."""
    user_id, asset_id = asset.user_id, asset.id
    store = get_store()
    counts: dict[str, int] = {"ideas": _withdraw_ideas(session, user_id, asset_id)}
    people = _people_of(session, [asset_id])
    # Shred first, and make it stick: any copy of the photo's blobs is unreadable from here on,
    # even if a later step fails (a retry then finds the rest).
    counts["photo_keys_destroyed"] = int(shred_asset_key(session, asset_id))
    session.commit()

    # Children before parents (face expressions and embeddings before faces).
    order = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}
    models = sorted(derived_models(), key=lambda m: -order[m.__tablename__])  # type: ignore[attr-defined]
    for model in models:
        column = model.asset_id  # type: ignore[attr-defined]
        where = (model.user_id == user_id, column == asset_id)  # type: ignore[attr-defined]
        if column.nullable:
            # Rows about many photos (a person, a home) only lose this one as their example.
            session.execute(update(model).where(*where).values(asset_id=None))
            continue
        if hasattr(model, "blob_key"):
            for key in session.scalars(select(model.blob_key).where(*where)):  # type: ignore[attr-defined]
                if key:
                    store.delete(key)
        n = session.execute(delete(model).where(*where)).rowcount
        if n:
            name = model.__category__ or model.__tablename__  # type: ignore[attr-defined]
            counts[name] = counts.get(name, 0) + n

    if asset.original_key:
        store.delete(asset.original_key)
    # Anything else stored under the asset's folder (e.g. a rendition not yet recorded).
    store.delete_prefix(f"u/{user_id}/{asset_id}/")
    session.execute(delete(Upload).where(Upload.user_id == user_id, Upload.asset_id == asset_id))
    session.execute(delete(JobRun).where(JobRun.user_id == user_id, JobRun.subject_id == asset_id))
    # The access log keeps that something was read, but no longer which (now erased) photo.
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.user_id == user_id, AuditEvent.target == asset_id)
        .values(target=None)
    )
    session.execute(
        update(Asset)
        .where(Asset.user_id == user_id, Asset.live_pair_id == asset_id)
        .values(live_pair_id=None)
    )
    session.delete(asset)
    session.flush()
    _refresh_people(session, user_id, people)
    counts["originals"] = 1
    return counts


def trashed(session: Session, user_id: str) -> list[Asset]:
    return list(
        session.scalars(
            select(Asset)
            .where(Asset.user_id == user_id, Asset.status == TRASHED)
            .order_by(Asset.trashed_at.desc(), Asset.id.desc())
        )
    )


def expires_at(asset: Asset) -> datetime | None:
    if asset.trashed_at is None:
        return None
    return asset.trashed_at + timedelta(days=get_settings().trash_days)


def empty_trash(session: Session, user_id: str, before: datetime | None = None) -> int:
    """Erase the user's trashed assets (only those trashed before `before`, when given)."""
    q = select(Asset).where(Asset.user_id == user_id, Asset.status == TRASHED)
    if before is not None:
        q = q.where(Asset.trashed_at <= before)
    n = 0
    for asset in session.scalars(q).all():
        erase_asset(session, asset)
        n += 1
    return n


def purge_expired_trash(as_of: datetime | None = None) -> int:
    """The retention purge's part: erase what has waited CAMROLL_TRASH_DAYS (as of `as_of`)."""
    cutoff = (as_of or utcnow()) - timedelta(days=get_settings().trash_days)
    with session_scope() as s:
        users = set(
            s.scalars(
                select(Asset.user_id).where(Asset.status == TRASHED, Asset.trashed_at <= cutoff)
            )
        )
    erased = 0
    for user_id in users:
        # One transaction per user: one failure does not hold back everyone else's purge.
        with session_scope() as s:
            erased += empty_trash(s, user_id, before=cutoff)
    if erased:
        log.info("erased %d expired item(s) from the trash", erased)
    return erased
