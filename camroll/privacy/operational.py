"""Operational tables kept for a window: the access log (CAMROLL_AUDIT_DAYS) and the job
bookkeeping (CAMROLL_JOB_DAYS). The hourly purge prunes them; nothing else grows without end.

Only finished jobs go: pending and running rows are how a crashed worker's task is resent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from camroll.config import get_settings
from camroll.db.engine import session_scope
from camroll.db.models import AuditEvent, JobRun


def prune_operational(now: datetime) -> dict[str, int]:
    """Delete access-log events and finished jobs older than their windows (as if the clock
    read `now`); returns the rows deleted per table."""
    settings = get_settings()
    audit_cutoff = now - timedelta(days=settings.audit_days)
    job_cutoff = now - timedelta(days=settings.job_days)
    with session_scope() as s:
        audit = s.execute(delete(AuditEvent).where(AuditEvent.at < audit_cutoff)).rowcount
        jobs = s.execute(
            delete(JobRun).where(
                JobRun.state.in_(("done", "failed")), JobRun.updated_at < job_cutoff
            )
        ).rowcount
    return {AuditEvent.__tablename__: audit, JobRun.__tablename__: jobs}
