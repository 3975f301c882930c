"""The access audit log: every read of a user's originals or derived data, whoever reads it.

`record` adds one row to the caller's session, so it commits (or rolls back) with the request
that did the reading: one INSERT per request, and a request that fails leaves no trace.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import AuditEvent, utcnow

ADMIN_CLI = "admin-cli"
MAX_PAGE = 500


def record(session: Session, who: object, action: str, target: str | None = None) -> None:
    """Log that `who` did `action` on `target` (an asset id, or None for a whole-library read).

    `who` is an API `Caller` (its user is the owner, its client the actor), or, for access that
    no caller makes, a `(user_id, actor)` pair such as `(user.id, ADMIN_CLI)`."""
    if isinstance(who, tuple):
        user_id, actor = who
    else:
        user_id, actor = who.user.id, who.client  # type: ignore[attr-defined]
    session.add(AuditEvent(user_id=user_id, actor=actor, action=action, target=target, at=utcnow()))


def events(
    session: Session, user_id: str, limit: int = 100, before: int | None = None
) -> tuple[list[AuditEvent], int | None]:
    """One user's events, newest first; the second value is the `before` of the next page."""
    q = select(AuditEvent).where(AuditEvent.user_id == user_id)
    if before is not None:
        q = q.where(AuditEvent.id < before)
    rows = list(session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
