"""The consent gate: every upload, job and derived read asks it before acting."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.consent.scopes import POLICY_VERSION, SCOPES
from camroll.db.models import ConsentEvent, ConsentState, User, utcnow


class ConsentRequired(Exception):
    def __init__(self, scope: str) -> None:
        super().__init__(
            f"consent scope {scope!r} is not granted; the owner can switch it on with "
            f'PUT /api/consent {{"scopes": {{"{scope}": true}}}}'
        )
        self.scope = scope


def current_scopes(session: Session, user_id: str) -> dict[str, ConsentState | None]:
    rows = session.scalars(select(ConsentState).where(ConsentState.user_id == user_id)).all()
    by_scope = {r.scope: r for r in rows}
    return {name: by_scope.get(name) for name in SCOPES}


def is_granted(session: Session, user_id: str, scope: str) -> bool:
    """A scope counts only while cloud_processing is on and no deletion is pending."""
    return scope in granted_scopes(session, user_id, {scope})


def granted_scopes(
    session: Session, user_id: str, scopes: set[str], *, held: bool = False
) -> set[str]:
    """Which of `scopes` count now, as `is_granted` says for each: one query for all of them
    (a finished upload asks for every analysis step's scope). `held`: read afresh, under a
    share lock on PostgreSQL, for a check inside the transaction that keeps a result."""
    due = select(User.deletion_due_at, User.id).where(User.id == user_id)
    states = select(ConsentState.scope, ConsentState.granted).where(
        ConsentState.user_id == user_id, ConsentState.scope.in_(scopes | {"cloud_processing"})
    )
    if held:  # a revocation's uncommitted change is waited for; a later one waits for this
        due, states = due.with_for_update(read=True), states.with_for_update(read=True)
    user = session.execute(due).first()
    if user is None or user.deletion_due_at is not None:
        return set()
    on = {scope for scope, granted in session.execute(states) if granted}
    return scopes & on if "cloud_processing" in on else set()


def owners_granting(session: Session, scope: str) -> list[str]:
    """Every owner for whom `scope` counts now (as `is_granted` says), for periodic jobs."""
    rows = select(ConsentState.user_id).where(
        ConsentState.scope == scope, ConsentState.granted.is_(True)
    )
    return [u for u in session.scalars(rows) if is_granted(session, u, scope)]


def require(session: Session, user_id: str, scope: str) -> None:
    if not is_granted(session, user_id, scope):
        raise ConsentRequired(scope)


GENESIS = "0" * 64


def chain_hash(prev: str, e: ConsentEvent) -> str:
    at = e.at.isoformat()
    fields = [prev, e.user_id, e.scope, str(e.granted), e.policy_version, e.policy_sha256]
    return hashlib.sha256("\x1f".join([*fields, e.client, at]).encode()).hexdigest()


def set_scopes(
    session: Session,
    user_id: str,
    changes: dict[str, bool],
    client: str,
    at: datetime | None = None,
) -> list[str]:
    """Apply the changes that differ from the current state; returns the scopes that changed.

    Each change appends one hash-chained ConsentEvent; unknown scope names raise ValueError.
    """
    unknown = set(changes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown consent scope(s): {', '.join(sorted(unknown))}")
    at = at or utcnow()
    state = current_scopes(session, user_id)
    user = session.get(User, user_id)
    if user is None:
        raise ValueError(f"no user {user_id}")
    prev = user.ledger_head or GENESIS
    changed = []
    for scope, granted in changes.items():
        row = state[scope]
        if row is not None and row.granted == granted:
            continue
        if row is None:
            row = ConsentState(user_id=user_id, scope=scope)
            session.add(row)
        row.granted, row.changed_at, row.policy_version = granted, at, POLICY_VERSION
        event = ConsentEvent(
            user_id=user_id,
            scope=scope,
            granted=granted,
            policy_version=POLICY_VERSION,
            policy_sha256=SCOPES[scope].sha256,
            client=client[:100],
            at=at,
            prev_hash=prev,
        )
        event.hash = prev = chain_hash(prev, event)
        session.add(event)
        session.flush()
        changed.append(scope)
    user.ledger_head = prev
    return changed
