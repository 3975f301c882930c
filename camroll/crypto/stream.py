"""Chunked AES-256-GCM for blobs of any size, encrypted and decrypted as a stream.

Layout: MAGIC | 16-byte salt | segments. Each segment is up to SEGMENT plaintext bytes plus its
16-byte tag. A per-blob key comes from HKDF(data key, salt), so nonces can simply count; the
last segment's nonce carries a flag, so truncation or reordering fails authentication. The blob's
name is bound in as associated data, so a ciphertext cannot be swapped for another blob's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"CRB1"
SALT = 16
TAG = 16
SEGMENT = 1024 * 1024
HEADER = len(MAGIC) + SALT


class DecryptionError(Exception):
    """The blob was altered, truncated, or its key is wrong or destroyed."""


def _blob_cipher(data_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"camroll blob v1")
    return AESGCM(hkdf.derive(data_key))


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def encrypt_stream(data_key: bytes, name: str, source: BinaryIO) -> Iterator[bytes]:
    """Yield the encrypted blob piece by piece while reading `source` once."""
    salt = secrets.token_bytes(SALT)
    cipher = _blob_cipher(data_key, salt)
    aad = name.encode()
    yield MAGIC + salt
    counter = 0
    chunk = _read_full(source, SEGMENT)
    while True:
        nxt = _read_full(source, SEGMENT)
        last = not nxt
        yield cipher.encrypt(_nonce(counter, last), chunk, aad)
        if last:
            return
        counter += 1
        chunk = nxt


def _read_full(source: BinaryIO, n: int) -> bytes:
    """Up to n bytes, short only at end of file: pipes and raw streams may return less per read,
    and a short segment that is not the last would shift every later segment boundary."""
    first = source.read(n)
    if not first or len(first) == n:
        return first
    parts, got = [first], len(first)
    while got < n and (more := source.read(n - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def decrypt_stream(data_key: bytes, name: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield plaintext segments from encrypted bytes arriving in arbitrary pieces."""
    buf = bytearray()
    it = iter(chunks)
    for piece in it:
        buf += piece
        if len(buf) >= HEADER:
            break
    if bytes(buf[: len(MAGIC)]) != MAGIC or len(buf) < HEADER:
        raise DecryptionError(f"{name}: not a camroll blob")
    cipher = _blob_cipher(data_key, bytes(buf[len(MAGIC) : HEADER]))
    del buf[:HEADER]
    aad = name.encode()
    whole = SEGMENT + TAG
    counter = 0
    # The first b"" drains segments that arrived together with the header (e.g. one big piece).
    for piece in chain([b""], it):
        buf += piece
        # Keep one full segment back until more arrives: only the final one is "last".
        while len(buf) > whole:
            yield _open(cipher, counter, False, bytes(buf[:whole]), aad, name)
            del buf[:whole]
            counter += 1
    yield _open(cipher, counter, True, bytes(buf), aad, name)


def _open(cipher: AESGCM, counter: int, last: bool, seg: bytes, aad: bytes, name: str) -> bytes:
    try:
        return cipher.decrypt(_nonce(counter, last), seg, aad)
    except InvalidTag:
        raise DecryptionError(
            f"{name}: authentication failed (altered, truncated or shredded)"
        ) from None


def decrypt_segments(
    data_key: bytes,
    name: str,
    header: bytes,
    first: int,
    last_index: int,
    sizes: list[int],
    chunks: Iterable[bytes],
) -> Iterator[bytes]:
    """Plaintext of consecutive segments `first`, `first + 1`, ... read from the middle of a
    blob (for HTTP Range): `header` is the blob's first HEADER bytes, `sizes` each segment's
    ciphertext length, `last_index` the blob's final segment (its nonce is flagged)."""
    if header[: len(MAGIC)] != MAGIC or len(header) < HEADER:
        raise DecryptionError(f"{name}: not a camroll blob")
    cipher = _blob_cipher(data_key, header[len(MAGIC) : HEADER])
    aad = name.encode()
    buf = bytearray()
    it = iter(chunks)
    for i, size in enumerate(sizes, start=first):
        while len(buf) < size:
            piece = next(it, None)
            if piece is None:
                raise DecryptionError(f"{name}: truncated")
            buf += piece
        yield _open(cipher, i, i == last_index, bytes(buf[:size]), aad, name)
        del buf[:size]
