"""The consent ledger: one owner's history as the doors show it, and verifying the whole of it:
every user's chain must recompute, link, and end at the head recorded on the user row. Any
altered, removed or reordered record breaks one of the three."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.consent.gate import GENESIS, chain_hash
from camroll.db.models import ConsentEvent, User


def history(session: Session, user_id: str) -> list[ConsentEvent]:
    """The owner's consent records, oldest first (GET /api/consent/history, the consent page)."""
    return list(
        session.scalars(
            select(ConsentEvent).where(ConsentEvent.user_id == user_id).order_by(ConsentEvent.id)
        )
    )


def verify_ledger(session: Session) -> tuple[int, list[str]]:
    """Returns (records checked, problems); no problems means the ledger is intact."""
    problems: list[str] = []
    checked = 0
    for user in session.scalars(select(User).order_by(User.id)):
        prev = GENESIS
        events = session.scalars(
            select(ConsentEvent).where(ConsentEvent.user_id == user.id).order_by(ConsentEvent.id)
        ).all()
        for e in events:
            checked += 1
            if e.prev_hash != prev:
                problems.append(
                    f"record {e.id} ({user.email}): does not follow the record before it "
                    "(a record was removed or reordered)"
                )
            if chain_hash(e.prev_hash, e) != e.hash:
                problems.append(f"record {e.id} ({user.email}): content does not match its hash")
            prev = e.hash
        if prev != (user.ledger_head or GENESIS):
            problems.append(
                f"{user.email}: the chain ends at {prev[:12]}…, but the last record written was "
                f"{(user.ledger_head or GENESIS)[:12]}… (records were removed at the end)"
            )
    orphans = session.scalars(
        select(ConsentEvent.id).where(~ConsentEvent.user_id.in_(select(User.id)))
    ).all()
    problems += [f"record {i}: belongs to no user" for i in orphans]
    return checked, problems
