"""Login throttling: too many wrong passwords for one account, or from one address, within a
window answer 429 with Retry-After, even for the right password, until the window moves on.

Failures live in the database (`login_failures`), so every server process sees the same count.
Keys are SHA-256 digests: the table holds no email address or IP in the clear.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.db.models import LoginFailure, utcnow


def _account(email: str) -> str:
    return email.strip().lower()[:320]  # no validation: a malformed name is throttled too


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    s = get_settings()
    keys = [(_key("account", _account(email)), s.login_max_failures_per_account)]
    if address:
        keys.append((_key("address", address), s.login_max_failures_per_address))
    return keys


def retry_after(session: Session, email: str, address: str | None) -> int | None:
    """Seconds until a login may be tried again, or None when it may be tried now."""
    window = timedelta(seconds=get_settings().login_window_seconds)
    now = utcnow()
    wait = 0.0
    for key, limit in _keys(email, address):
        # The limit-th newest failure in the window: once it leaves, one more try is allowed.
        oldest_counted = session.scalar(
            select(LoginFailure.at)
            .where(LoginFailure.key == key, LoginFailure.at > now - window)
            .order_by(LoginFailure.at.desc())
            .offset(limit - 1)
            .limit(1)
        )
        if oldest_counted is not None:
            wait = max(wait, (oldest_counted + window - now).total_seconds())
    return max(1, math.ceil(wait)) if wait > 0 else None


def record_failure(session: Session, email: str, address: str | None) -> None:
    window = timedelta(seconds=get_settings().login_window_seconds)
    now = utcnow()
    for key, _ in _keys(email, address):
        session.execute(
            delete(LoginFailure).where(LoginFailure.key == key, LoginFailure.at <= now - window)
        )
        session.add(LoginFailure(key=key, at=now))


def record_success(session: Session, email: str) -> None:
    """The right password clears the account's count (not the address's: one address guessing
    at many accounts stays throttled)."""
    key = _key("account", _account(email))
    session.execute(delete(LoginFailure).where(LoginFailure.key == key))


def message(wait: int) -> str:
    minutes = max(1, math.ceil(wait / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed sign-ins. Try again in {minutes} {unit}."


def forget_old(session: Session) -> int:
    """Failures older than the window count for nothing: deleted (housekeeping, every 10 min)."""
    cutoff = utcnow() - timedelta(seconds=get_settings().login_window_seconds)
    result = session.execute(delete(LoginFailure).where(LoginFailure.at <= cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
