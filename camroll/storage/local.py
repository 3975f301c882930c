"""The embedded default: blobs as files under one folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from camroll.storage.base import BlobNotFound

READ_CHUNK = 1024 * 1024


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys come from our code, but a key must never escape the root all the same.
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"invalid blob key {key!r}")
        return path

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        written = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    written += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # readers see the old blob or the whole new one, never half
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def get(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return _read_chunks(f)

    def get_range(self, key: str, start: int, length: int) -> Iterator[bytes]:
        """`length` bytes from `start`: a seek, so a range costs what it asks for."""
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        f.seek(start)
        return _read_chunks(f, length)

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.keys(prefix))
        for key in keys:
            self.delete(key)
        folder = self.root / prefix
        if prefix and folder.is_dir() and folder.resolve().is_relative_to(self.root):
            shutil.rmtree(folder, ignore_errors=True)
        return len(keys)

    def keys(self, prefix: str = "") -> Iterator[str]:
        # Walk only the prefix's folder: one upload's staging must not cost a whole-store walk.
        folder = (self.root / prefix.rpartition("/")[0]).resolve()
        if not folder.is_relative_to(self.root) or not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


def _read_chunks(f, limit: int | None = None) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    with f:
        left = limit
        while left is None or left > 0:
            chunk = f.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
