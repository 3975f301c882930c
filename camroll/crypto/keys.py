"""Per-user data keys wrapped by the instance master key.

Every blob of a user is encrypted under a key derived from that user's data key. The data key is
stored only wrapped (AES-256-GCM under the master key, bound to the user id), so deleting the
wrapped key makes every copy of every blob of that user unreadable: crypto-shredding.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.crypto import fields
from camroll.db.models import UserKey

KEY_BYTES = 32


class KeyDestroyed(Exception):
    """The user's data key is gone; their blobs can no longer be decrypted."""


class MasterKeyMismatch(Exception):
    """This node's master key is not the one the database's keys were wrapped with."""


_master_lock = threading.Lock()
# Read once per process and data folder: every blob operation needs it.
_master_cache: dict[Path, bytes] = {}


def master_key() -> bytes:
    """The instance key: CAMROLL_MASTER_KEY, or data_dir/master.key made on first use (0600)."""
    settings = get_settings()
    if settings.master_key:
        key = bytes.fromhex(settings.master_key)
        if len(key) != KEY_BYTES:
            raise ValueError("CAMROLL_MASTER_KEY must be 64 hex characters (32 bytes)")
        return key
    path: Path = (settings.data_dir / "master.key").resolve()
    with _master_lock:
        if path in _master_cache:
            return _master_cache[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # O_EXCL: two processes starting at once must not write two different keys.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(KEY_BYTES))
        key = bytes.fromhex(path.read_text().strip())
        _master_cache[path] = key
        return key


def wrap(data_key: bytes, user_id: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(master_key()).encrypt(
        nonce, data_key, b"camroll-user-key:" + user_id.encode()
    )


def unwrap(wrapped: bytes, user_id: str) -> bytes:
    return AESGCM(master_key()).decrypt(
        wrapped[:12], wrapped[12:], b"camroll-user-key:" + user_id.encode()
    )


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
