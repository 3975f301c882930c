"""The life of an export zip: one in flight per owner, deleted at its expiry, at any scope's
revocation and at account deletion, and listed in the transparency report.

An export holds everything (names, face regions, GPS), so it is treated as data, not as a
download: `Export` rows say which zips exist, and the blob key is derived from the id, so a zip
still being built when consent changes is found and deleted all the same.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.db.engine import session_scope
from camroll.db.models import Export, JobRun, utcnow
from camroll.storage import get_store

log = logging.getLogger(__name__)
TASK = "export"
IN_FLIGHT = ("pending", "running")
DELETED = "deleted: consent changed or the account is being deleted"


def export_key(user_id: str, export_id: str) -> str:
    return f"u/{user_id}/exports/{export_id}.zip"


def in_flight(session: Session, user_id: str) -> JobRun | None:
    """The owner's export being built now, if any (its Export row still existing)."""
    return session.scalars(
        select(JobRun)
        .join(Export, Export.id == JobRun.subject_id)
        .where(
            JobRun.task == TASK,
            JobRun.user_id == user_id,
            JobRun.state.in_(IN_FLIGHT),
            Export.user_id == user_id,
        )
        .order_by(JobRun.id)
    ).first()


def job(session: Session, user_id: str, export_id: str) -> JobRun | None:
    """The job that builds (or built) this export of the owner's."""
    return session.scalars(
        select(JobRun).where(
            JobRun.task == TASK, JobRun.subject_id == export_id, JobRun.user_id == user_id
        )
    ).first()


def new_export(session: Session, user_id: str) -> Export:
    now = utcnow()
    export = Export(
        user_id=user_id, created_at=now, expires_at=now + timedelta(days=get_settings().export_days)
    )
    session.add(export)
    session.flush()
    return export


def get_live(
    session: Session, user_id: str, export_id: str, now: datetime | None = None
) -> Export | None:
    """The owner's export if it still exists and has not expired (the purge may not have run)."""
    export = session.get(Export, export_id)
    if export is None or export.user_id != user_id or export.expires_at <= (now or utcnow()):
        return None
    return export


def finish(user_id: str, export_id: str, size: int) -> bool:
    """Record a built zip. False (and the zip deleted) when the export was deleted meanwhile:
    a revocation during the build must not leave a zip built from what was revoked."""
    now = utcnow()
    with session_scope() as session:
        n = session.execute(
            update(Export)
            .where(Export.id == export_id, Export.user_id == user_id)
            .values(
                blob_key=export_key(user_id, export_id),
                size=size,
                expires_at=now + timedelta(days=get_settings().export_days),
            )
        ).rowcount
    if not n:
        get_store().delete(export_key(user_id, export_id))
    return bool(n)


def delete_exports(session: Session, user_id: str) -> int:
    """Delete every export of this owner now, built or in flight; returns how many."""
    ids = list(session.scalars(select(Export.id).where(Export.user_id == user_id)))
    store = get_store()
    for export_id in ids:
        store.delete(export_key(user_id, export_id))
    session.execute(delete(Export).where(Export.user_id == user_id))
    # Builds in flight finish into nothing (see `finish`); their jobs read as failed, not lost.
    session.execute(
        update(JobRun)
        .where(
            JobRun.task == TASK,
            JobRun.user_id == user_id,
            JobRun.subject_id.in_(ids),
            JobRun.state.in_(IN_FLIGHT),
        )
        .values(state="failed", error=DELETED)
    )
    return len(ids)


def expire_exports(as_of: datetime | None = None) -> int:
    """The periodic purge's part: delete every export past its expiry (as if the clock read
    `as_of`); returns how many."""
    now = as_of or utcnow()
    with session_scope() as session:
        due = session.execute(
            select(Export.id, Export.user_id).where(Export.expires_at <= now)
        ).all()
        store = get_store()
        for export_id, user_id in due:
            store.delete(export_key(user_id, export_id))
        if due:
            session.execute(delete(Export).where(Export.id.in_([e for e, _ in due])))
    if due:
        log.info("deleted %d expired exports", len(due))
    return len(due)


def listing(session: Session, user_id: str) -> list[dict[str, Any]]:
    """The exports that exist, for the transparency report."""
    rows = session.execute(
        select(Export, JobRun.state)
        .outerjoin(JobRun, (JobRun.subject_id == Export.id) & (JobRun.task == TASK))
        .where(Export.user_id == user_id)
        .order_by(Export.created_at)
    ).all()
    return [
        {
            "id": e.id,
            "status": state or "pending",
            "created_at": e.created_at,
            "expires_at": e.expires_at,
            "bytes": e.size,
            "url": f"/api/me/export/{e.id}",
        }
        for e, state in rows
    ]
