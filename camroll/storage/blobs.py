"""Encrypted blobs: every original, preview and thumbnail is stored under its owner's key
(and its photo's own key: camroll/keyring.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from sqlalchemy.orm import Session

from camroll.crypto.stream import decrypt_stream, encrypt_stream
from camroll.keyring import blob_data_key
from camroll.storage import get_store


def blob_key(user_id: str, asset_id: str, kind: str) -> str:
    return f"u/{user_id}/{asset_id}/{kind}"


def put_encrypted(session: Session, user_id: str, key: str, source: BinaryIO) -> int:
    data_key = blob_data_key(session, user_id, key, writing=True)
    return get_store().put(key, encrypt_stream(data_key, key, source))


def read_decrypted(session: Session, user_id: str, key: str) -> Iterator[bytes]:
    """Plaintext of a blob, streamed; raises KeyDestroyed, BlobNotFound or DecryptionError."""
    data_key = blob_data_key(session, user_id, key)
    return decrypt_stream(data_key, key, get_store().get(key))
