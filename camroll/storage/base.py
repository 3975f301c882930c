"""The blob-store interface. Stores see only ciphertext; encryption lives in storage/blobs.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol


class BlobNotFound(KeyError):
    pass


class BlobStore(Protocol):
    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the bytes under key atomically; returns the number of bytes written."""
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """Stream the stored bytes; raises BlobNotFound."""
        ...

    def get_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """Stream `length` stored bytes from offset `start` (fewer at the end); BlobNotFound."""
        ...

    def size(self, key: str) -> int:
        """Stored (ciphertext) bytes of key; raises BlobNotFound."""
        ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under prefix; returns how many."""
        ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def exists(self, key: str) -> bool: ...
