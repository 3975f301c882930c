"""The keys kept in the database: each user's wrapped data key and each photo's key secret.

Every blob of a user is encrypted under a key derived from that user's data key. The data key is
stored only wrapped (AES-256-GCM under the master key, bound to the user id: camroll.crypto.keys),
so deleting the wrapped key makes every copy of every blob of that user unreadable:
crypto-shredding.

Per-photo keys, so that erasing one photo crypto-shreds its blobs: a photo's original and
renditions (`u/<user>/<asset>/...`) are encrypted under a key derived from the owner's data key
and the photo's own random secret (AssetKey). Deleting that row makes every copy of those blobs
unreadable, wherever a copy survives (a backup, an S3 version). Blobs written before per-photo
keys existed, and blobs that are not a photo's (idea media, exports), stay under the owner's data
key alone: a photo gets its key when its original is first stored, so all of its blobs agree.

This sits above both camroll.crypto (pure cryptography, and the encrypted column type) and
camroll.db (the schema): neither imports the other's side back.
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.config import get_settings
from camroll.crypto import fields
from camroll.crypto.keys import KEY_BYTES, KeyDestroyed, MasterKeyMismatch, unwrap, wrap
from camroll.db.models import Asset, AssetKey, UserKey

# --- a user's data key --------------------------------------------------------------------


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
    return _delete(session, UserKey, user_id)


def check_master_key(session: Session) -> None:
    """At the start of `serve` and `worker`: a node on another machine, with its own data
    folder, would otherwise make a master key of its own and fail on every photo. Raises
    MasterKeyMismatch, saying what to set."""
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


# --- a photo's key ------------------------------------------------------------------------


def _asset_id(user_id: str, key: str) -> str | None:
    parts = key.split("/")
    if len(parts) >= 4 and parts[0] == "u" and parts[1] == user_id:
        return parts[2]
    return None


def blob_data_key(session: Session, user_id: str, key: str, *, writing: bool = False) -> bytes:
    """The data key for blob `key`; `writing` an original that has none yet makes the photo's
    key. Raises KeyDestroyed when the owner's key is gone."""
    user_key = user_data_key(session, user_id)
    asset_id = _asset_id(user_id, key)
    if asset_id is None:
        return user_key
    row = session.get(AssetKey, asset_id)
    if row is None and writing and key.endswith("/original"):
        asset = session.get(Asset, asset_id)
        if asset is not None and asset.user_id == user_id and asset.original_key is None:
            row = AssetKey(asset_id=asset_id, user_id=user_id, secret=secrets.token_bytes(32))
            session.add(row)
            session.flush()
    if row is None or row.user_id != user_id:
        return user_key
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=row.secret, info=b"camroll asset v1"
    )
    return hkdf.derive(user_key)


def shred_asset_key(session: Session, asset_id: str) -> bool:
    """Delete the photo's key; returns whether it had one (photos stored before keys did not)."""
    return _delete(session, AssetKey, asset_id)


def _delete(session: Session, model: type[UserKey] | type[AssetKey], key: str) -> bool:
    row = session.get(model, key)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True
