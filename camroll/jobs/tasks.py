"""Queue tasks. Each is a thin, tracked wrapper around a service function that is idempotent."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from sqlalchemy.orm import Session

from camroll.db.engine import session_scope
from camroll.db.models import Asset, User, utcnow
from camroll.ingest.process import process_asset
from camroll.ingest.uploads import expire_uploads
from camroll.jobs import tracking
from camroll.jobs.queue import huey

log = logging.getLogger(__name__)


@huey.task(retries=2, retry_delay=3, context=True)
def process_asset_task(asset_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        asset = s.get(Asset, asset_id)
        user_id = asset.user_id if asset else ""
    if not user_id:
        return "missing"
    tracking.mark("process_asset", asset_id, user_id, "running")
    try:
        status = process_asset(asset_id)
    except Exception as e:
        last_try = task is None or task.retries == 0
        log.exception("processing asset %s failed", asset_id)
        tracking.mark(
            "process_asset", asset_id, user_id, "failed" if last_try else "pending", repr(e)
        )
        raise
    tracking.mark("process_asset", asset_id, user_id, "done")
    return status


def enqueue_process(asset_id: str, user_id: str) -> None:
    tracking.mark("process_asset", asset_id, user_id, "pending")
    process_asset_task(asset_id)


def _requeue(asset_id: str) -> None:
    process_asset_task(asset_id)


DISPATCH = {"process_asset": _requeue, "export": lambda export_id: export_task(export_id)}


def requeue_unfinished(stale_after: timedelta | None) -> int:
    return tracking.requeue_unfinished(DISPATCH, stale_after)


@huey.periodic_task(crontab(minute="*/10"))
def housekeeping() -> None:
    """Expire abandoned uploads; resend jobs a crashed worker took with it."""
    with session_scope() as s:
        n = expire_uploads(s)
    if n:
        log.info("expired %d abandoned uploads", n)
    requeue_unfinished(timedelta(minutes=30))


@huey.periodic_task(crontab(minute="17"))
def purge_task() -> None:
    """Hourly: purge every account whose deletion deadline has passed."""
    purge_now_task.call_local()


@huey.task()
def purge_now_task() -> None:
    from camroll.privacy.retention import purge_due

    for receipt in purge_due():
        log.info("purged an account; receipt %s", receipt.id)


def purge_soon_if_due(session: Session, user: User) -> None:
    """With CAMROLL_RETENTION_DAYS=0 a deadline is already due: purge now, not within the hour.
    Commits first, so the worker sees the deadline."""
    if user.deletion_due_at is not None and user.deletion_due_at <= utcnow():
        session.commit()
        purge_now_task()


@huey.task(retries=1, retry_delay=3, context=True)
def export_task(export_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    """Build the owner's export zip (camroll.privacy.export); its JobRun says who and how far."""
    from sqlalchemy import select

    from camroll.db.models import JobRun
    from camroll.privacy.export import build_export

    with session_scope() as s:
        run = s.scalars(
            select(JobRun).where(JobRun.task == "export", JobRun.subject_id == export_id)
        ).first()
        user_id, state = (run.user_id, run.state) if run else ("", "")
    if not user_id:
        return "missing"
    if state == "done":
        return "done"
    tracking.mark("export", export_id, user_id, "running")
    try:
        build_export(export_id, user_id)
    except Exception as e:
        last_try = task is None or task.retries == 0
        log.exception("export %s failed", export_id)
        tracking.mark("export", export_id, user_id, "failed" if last_try else "pending", repr(e))
        raise
    tracking.mark("export", export_id, user_id, "done")
    return "done"
