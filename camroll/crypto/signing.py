"""The instance's Ed25519 signing key, derived from the master key (nothing more to keep safe)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from camroll.crypto.keys import master_key


def signing_key() -> Ed25519PrivateKey:
    seed = HKDF(hashes.SHA256(), 32, salt=None, info=b"camroll receipts ed25519 v1").derive(
        master_key()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_hex() -> str:
    raw = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    return raw.hex()


def sign(message: bytes) -> str:
    return signing_key().sign(message).hex()


def verify(message: bytes, signature_hex: str, public_hex: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True
