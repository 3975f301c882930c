"""Per-user data keys wrapped by the instance master key.

Every blob of a user is encrypted under a key derived from that user's data key. The data key is
stored only wrapped (AES-256-GCM under the master key, bound to the user id), so deleting the
wrapped key makes every copy of every blob of that user unreadable: crypto-shredding.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.crypto import fields
from camroll.crypto.master import KEY_BYTES, KeyDestroyed, MasterKeyMismatch, unwrap, wrap
from camroll.db.models import UserKey


def create_user_key(session: Session, user_id: str) -> None:
    data_key = secrets.token_bytes(KEY_BYTES)
    session.add(UserKey(user_id=user_id, wrapped_key=wrap(data_key, user_id)))
    # Rows of this user may be written before the key row commits: other connections can't see it.
    fields.remember(user_id, data_key)


def user_data_key(session: Session, user_id: str) -> bytes:
    row = session.get(UserKey, user_id)
    if row is None:
        raise KeyDestroyed(f"no data key for user {user_id}")
    return unwrap(row.wrapped_key, user_id)


def destroy_user_key(session: Session, user_id: str) -> bool:
    """Crypto-shred: remove the wrapped key. Returns whether there was one."""
    fields.forget(user_id)
    row = session.get(UserKey, user_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def check_master_key(session: Session) -> None:
    """At the start of `serve` and `worker`: a node on another machine, with its own data
    folder, would otherwise make a master key of its own and fail on every photo. Raises
    MasterKeyMismatch, saying what to set."""
    from sqlalchemy import select

    row = session.scalars(select(UserKey).limit(1)).first()
    if row is None:
        return  # a new instance: the first key made is the instance's
    settings = get_settings()
    if not settings.master_key and not (settings.data_dir / "master.key").exists():
        raise MasterKeyMismatch(
            "this node has no master key, but the database holds keys wrapped with one: give "
            "every node the instance's key as CAMROLL_MASTER_KEY (64 hex characters)"
        )
    try:
        unwrap(row.wrapped_key, row.user_id)
    except InvalidTag:
        raise MasterKeyMismatch(
            "this node's master key does not open the database's keys: every node needs the "
            "same CAMROLL_MASTER_KEY"
        ) from None
