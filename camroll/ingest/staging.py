"""Encrypted upload staging in the blob store, so any node can finish or process any upload.

Each piece a writer receives (a tus PATCH, or up to SEGMENT bytes of one) is sealed as one
object, `staging/<user>/<upload>/<offset>.<length>.<gen>`, in the blob format of
camroll.crypto.stream with that name bound in: a segment cannot be moved, swapped or cut short
unnoticed. Nothing is rewritten; a resumed upload adds objects after the last one.

The database says how far an upload got (`uploads.offset`). A segment counts only once its
writer's compare-and-set moved the offset past it (camroll.ingest.uploads.Writer). An object
left by a crash, or by a writer whose lease lapsed and was taken over (`gen`, its lease
generation, is then older), is never read and goes with the rest in `remove`.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

from camroll.crypto.stream import DecryptionError, decrypt_stream, encrypt_stream
from camroll.storage import BlobNotFound, get_store

SEGMENT = 8 * 1024 * 1024  # the sync client's PATCH size: one object per PATCH


def staging_prefix(user_id: str, upload_id: str = "") -> str:
    """`staging/<user>/<upload>/`, or with no upload every upload of the user."""
    return f"staging/{user_id}/{upload_id}/" if upload_id else f"staging/{user_id}/"


class StagingDamaged(DecryptionError):
    """A committed segment is missing or does not decrypt."""


class Staging:
    def __init__(self, prefix: str, data_key: bytes, upload_id: str) -> None:
        self.prefix = prefix
        self.upload_id = upload_id
        self._key = data_key

    def put_segment(self, offset: int, gen: int, plain: bytes) -> str:
        """Seal and store one piece starting at `offset`; returns its object key. The caller
        makes it count (or deletes it) with the offset's compare-and-set."""
        key = f"{self.prefix}{offset:016d}.{len(plain)}.{gen}"
        get_store().put(key, encrypt_stream(self._key, key, io.BytesIO(plain)))
        return key

    def delete(self, key: str) -> None:
        get_store().delete(key)

    def segments(self, received: int) -> list[str]:
        """The object keys of bytes 0..received, in order: from each offset, the segment of
        the newest lease generation (an older one there was never committed)."""
        best: dict[int, tuple[int, int, str]] = {}
        for key in get_store().keys(self.prefix):
            name = key[len(self.prefix) :]
            try:
                offset, length, gen = (int(p) for p in name.split("."))
            except ValueError:
                continue  # not a segment (a store's own temporary file)
            if offset not in best or gen > best[offset][0]:
                best[offset] = (gen, length, key)
        chain, pos = [], 0
        while pos < received:
            if pos not in best:
                raise StagingDamaged(
                    f"staging for upload {self.upload_id} lacks the bytes from {pos}"
                )
            _, length, key = best[pos]
            chain.append(key)
            pos += length
        if pos != received:
            raise StagingDamaged(f"staging for upload {self.upload_id} does not end at {received}")
        return chain

    def chunks(self, received: int) -> Iterator[bytes]:
        store = get_store()
        for key in self.segments(received):
            try:
                yield from decrypt_stream(self._key, key, store.get(key))
            except BlobNotFound:
                raise StagingDamaged(f"staging for upload {self.upload_id} lost {key}") from None

    def sha256(self, received: int) -> str:
        h = hashlib.sha256()
        for chunk in self.chunks(received):
            h.update(chunk)
        return h.hexdigest()

    def write_plaintext(self, dest: Path, received: int) -> None:
        with dest.open("wb") as out:
            for chunk in self.chunks(received):
                out.write(chunk)

    def remove(self) -> int:
        """Delete every object of this upload, committed or not; returns how many."""
        return get_store().delete_prefix(self.prefix)
