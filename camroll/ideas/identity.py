"""The instance's C2PA signing identity for AI-labelled creations, derived from the master key
(so there is nothing more to store or lose)."""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from camroll.create.ai_label import SigningIdentity, make_signing_identity
from camroll.crypto.keys import master_key


@lru_cache(maxsize=1)
def signing_identity() -> SigningIdentity:
    seed = HKDF(hashes.SHA256(), 32, salt=None, info=b"camroll c2pa identity v1").derive(
        master_key()
    )
    return make_signing_identity("camroll instance", private_key_seed=seed)
