"""Blob storage, chosen by CAMROLL_STORAGE_URL: a local folder by default, or s3://bucket/prefix."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlparse

from camroll.config import get_settings
from camroll.storage.base import BlobNotFound, BlobStore

__all__ = ["BlobNotFound", "BlobStore", "get_store", "store_for_url"]


def store_for_url(url: str) -> BlobStore:
    settings = get_settings()
    if not url:
        from camroll.storage.local import LocalBlobStore

        return LocalBlobStore(settings.data_dir / "blobs")
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from camroll.storage.s3 import S3BlobStore

        return S3BlobStore(parsed.netloc, parsed.path, settings.s3_endpoint_url or None)
    if parsed.scheme == "file":
        from pathlib import Path

        from camroll.storage.local import LocalBlobStore

        return LocalBlobStore(Path(parsed.path))
    raise ValueError(f"unsupported CAMROLL_STORAGE_URL scheme: {parsed.scheme!r}")


@lru_cache
def _cached(url: str, data_dir: str) -> BlobStore:
    return store_for_url(url)


def get_store() -> BlobStore:
    settings = get_settings()
    return _cached(settings.storage_url, str(settings.data_dir))
