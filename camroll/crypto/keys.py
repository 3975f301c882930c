"""The instance master key and the wrapping of per-user data keys under it.

Pure cryptography: nothing in camroll.crypto imports the schema, so the schema can take its
encrypted column type from camroll.crypto.fields. Storing, reading and destroying the wrapped
keys is camroll.keyring's, above both.
"""

from __future__ import annotations

import os
import secrets
import threading
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from camroll.config import get_settings

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
