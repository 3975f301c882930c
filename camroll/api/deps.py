"""Request dependencies: a database session per request and the authenticated owner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from camroll.accounts import resolve_token
from camroll.consent.gate import ConsentRequired, require
from camroll.crypto.keys import KeyDestroyed
from camroll.crypto.stream import DecryptionError
from camroll.db.engine import session_scope
from camroll.db.models import User
from camroll.storage import BlobNotFound
from camroll.storage.blobs import read_decrypted

SESSION_COOKIE = "camroll_session"


def db() -> Iterator[Session]:
    """Declared with scope="function" everywhere: the commit must land before the response
    leaves, or a fast client's next request would not see what this one wrote."""
    with session_scope() as session:
        yield session


@dataclass
class Caller:
    user: User
    client: str  # who is acting, for the consent ledger: "token:<name>" or "web"


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(SESSION_COOKIE)


def optional_caller(
    request: Request, session: Session = Depends(db, scope="function")
) -> Caller | None:
    secret = _secret(request)
    if not secret:
        return None
    found = resolve_token(session, secret)
    if found is None:
        return None
    user, token = found
    return Caller(user, "web" if token.kind == "session" else f"token:{token.name}")


def caller(found: Caller | None = Depends(optional_caller)) -> Caller:
    if found is None:
        raise HTTPException(
            401,
            "missing or invalid credentials: send 'Authorization: Bearer <token>' "
            "(make one with `camroll token create EMAIL`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return found


def not_found(what: str) -> HTTPException:
    # The same answer for "absent" and "someone else's": ids must not leak existence.
    return HTTPException(404, f"{what} not found")


def decrypted_body(session: Session, user_id: str, key: str) -> Iterator[bytes]:
    """A blob's plaintext for a streaming response. Fails (410) before the response starts,
    not halfway through it, when the key was shredded or the blob is gone or damaged."""
    try:
        it = read_decrypted(session, user_id, key)
        first = next(it, b"")
    except (KeyDestroyed, BlobNotFound, DecryptionError) as e:
        raise HTTPException(410, f"this file can no longer be read: {e}") from None

    def gen() -> Iterator[bytes]:
        yield first
        yield from it

    return gen()


def granted(scope: str) -> Callable[..., Caller]:
    """A dependency: the caller, once the gate says `scope` is on (403 with how to switch it
    on otherwise). Every API call that reads or derives that scope's data goes through it."""

    def check(
        who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
    ) -> Caller:
        try:
            require(session, who.user.id, scope)
        except ConsentRequired as e:
            raise HTTPException(403, str(e)) from None
        return who

    return check
