"""Per-photo keys, so that erasing one photo crypto-shreds its blobs.

A photo's original and renditions (`u/<user>/<asset>/...`) are encrypted under a key derived
from the owner's data key and the photo's own random secret (AssetKey). Deleting that row makes
every copy of those blobs unreadable, wherever a copy survives (a backup, an S3 version).
Blobs written before per-photo keys existed, and blobs that are not a photo's (idea media,
exports), stay under the owner's data key alone: a photo gets its key when its original is
first stored, so all of its blobs agree.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.orm import Session

from camroll.crypto.keys import KEY_BYTES, user_data_key
from camroll.db.models import Asset, AssetKey


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
    row = session.get(AssetKey, asset_id)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True
