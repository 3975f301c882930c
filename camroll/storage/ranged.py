"""Part of an encrypted blob, for HTTP Range: only the 1 MiB segments that hold the asked-for
bytes are read and decrypted, so seeking in a long video costs one or two segments."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from camroll.crypto.stream import HEADER, SEGMENT, TAG, decrypt_segments
from camroll.keyring import blob_data_key
from camroll.storage import get_store


def segment_count(plain_size: int) -> int:
    # encrypt_stream always writes at least one (possibly empty) segment.
    return max(1, -(-plain_size // SEGMENT))


def plain_size(key: str) -> int:
    """Plaintext bytes of a blob, from its stored length alone (for media with no size column):
    every segment but the last holds SEGMENT bytes, and each adds a TAG."""
    body = get_store().size(key) - HEADER
    segments = max(1, -(-body // (SEGMENT + TAG)))
    return body - segments * TAG


def read_decrypted_range(
    session: Session, user_id: str, key: str, plain_size: int, start: int, end: int
) -> Iterator[bytes]:
    """Plaintext bytes start..end (inclusive) of a blob holding `plain_size` bytes; raises
    KeyDestroyed, BlobNotFound or DecryptionError before yielding anything."""
    store = get_store()
    data_key = blob_data_key(session, user_id, key)
    header = b"".join(store.get_range(key, 0, HEADER))
    last_index = segment_count(plain_size) - 1
    first, final = start // SEGMENT, end // SEGMENT
    sizes = [
        (plain_size - i * SEGMENT if i == last_index else SEGMENT) + TAG
        for i in range(first, final + 1)
    ]
    offset = HEADER + first * (SEGMENT + TAG)
    chunks = store.get_range(key, offset, sum(sizes))
    segments = decrypt_segments(data_key, key, header, first, last_index, sizes, chunks)
    head = next(segments)  # fail here, before a response starts, if the blob is bad

    def gen() -> Iterator[bytes]:
        pos = first * SEGMENT
        for seg in _chain(head, segments):
            lo = max(start - pos, 0)
            hi = min(end + 1 - pos, len(seg))
            if hi > lo:
                yield seg[lo:hi]
            pos += len(seg)

    return gen()


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from rest
