"""Changing consent, wherever the owner does it (API, web switches): record the change in the
ledger, then set in motion what it means (deletion deadlines, scope data deleted, re-analysis).

It sits above consent/, privacy/ and jobs/, which it drives, so none of them imports another
back (the gate in consent/ is what every job and privacy step asks)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from camroll.consent.gate import set_scopes
from camroll.db.models import User
from camroll.jobs.tasks import purge_soon_if_due, reanalyze_if_granted
from camroll.privacy.retention import apply_consent_change


def change_scopes(session: Session, user: User, changes: dict[str, bool], client: str) -> list[str]:
    """Apply `changes` (scope -> granted); returns the scopes that actually changed.

    Unknown scope names raise ValueError before anything is written."""
    changed = set_scopes(session, user.id, changes, client)
    diff = {s: changes[s] for s in changed}
    apply_consent_change(session, user, diff)
    purge_soon_if_due(session, user)
    reanalyze_if_granted(session, user.id, diff)
    return changed
