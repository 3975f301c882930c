"""Users, passwords (argon2) and bearer tokens (only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll import token_usage
from camroll.db.models import ApiToken, User, utcnow
from camroll.keyring import create_user_key

_hasher = PasswordHasher()
TOKEN_PREFIX = "crl_"


class AccountError(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise AccountError(f"not an email address: {email!r}")
    return email


def create_user(session: Session, email: str, password: str | None = None) -> User:
    email = normalise_email(email)
    if session.scalars(select(User).where(User.email == email)).first():
        raise AccountError(f"a user {email} already exists")
    user = User(email=email, password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    create_user_key(session, user.id)
    return user


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == normalise_email(email))).first()


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    user.password_hash = _hasher.hash(password)


def check_password(session: Session, email: str, password: str) -> User | None:
    try:
        user = find_user(session, email)
    except AccountError:
        return None
    if user is None or not user.password_hash:
        # Same work either way, so timing does not tell which emails exist.
        _hasher.hash(password)
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return user


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, user: User, name: str, kind: str = "api", ttl: timedelta | None = None
) -> str:
    """Returns the secret once; only its hash is kept."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + ttl if ttl else None
    session.add(
        ApiToken(
            user_id=user.id, name=name, kind=kind, token_hash=_digest(secret), expires_at=expires
        )
    )
    session.flush()
    return secret


def resolve_token(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).first()
    now = utcnow()
    if token is None or (token.expires_at is not None and token.expires_at < now):
        return None
    user = session.get(User, token.user_id)
    if user is None:
        return None
    # Never a write in the request's transaction (it would hold SQLite's write lock for the
    # whole request): noted, and written apart; a minute's precision suffices.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token_usage.note(token.id, now)
    return user, token


def revoke_token(session: Session, secret: str) -> None:
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).first()
    if token is not None:
        session.delete(token)
