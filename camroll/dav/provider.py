"""The owner's library as WebDAV folders, and PUT as one more door into camroll's ingest.

The tree is virtual and rebuilt for each request from the owner's assets:
- date folders `YYYY/MM/` holding every photo and video by its local capture month;
- the paths the files were uploaded under (their device path), so a backup app that compares
  its folder with ours sees what it already sent and sends nothing again;
- folders a client just made with MKCOL (kept in memory: there is nothing to store in them).

Existing files are read-only (GET works, PUT over them, DELETE, MOVE and COPY answer 403: the
trash is the web app's job). A PUT of a new name streams into the same encrypted staging as tus,
record by record, then goes through the same consent gate, dedupe and processing job.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from wsgidav.dav_error import (
    HTTP_BAD_REQUEST,
    HTTP_CONFLICT,
    HTTP_FORBIDDEN,
    HTTP_INTERNAL_ERROR,
    HTTP_LOCKED,
    HTTP_NOT_FOUND,
    DAVError,
)
from wsgidav.dav_provider import DAVCollection, DAVNonCollection, DAVProvider

from camroll import assets
from camroll.config import get_settings
from camroll.consent.gate import ConsentRequired, require
from camroll.crypto.keys import KeyDestroyed
from camroll.crypto.stream import DecryptionError
from camroll.dav.auth import DEVICE, USER_ID
from camroll.db.engine import session_scope
from camroll.db.models import Asset
from camroll.ingest import uploads as svc
from camroll.ingest.staging import SEGMENT
from camroll.privacy.audit import record
from camroll.storage import BlobNotFound
from camroll.storage.blobs import read_decrypted

READ_ONLY = "camroll keeps backed-up originals read-only; delete or replace photos in the web app"
_DATE = re.compile(r"^(\d{4})-(\d{2})")
_CACHE = "camroll.dav.library"


def _norm(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise DAVError(HTTP_FORBIDDEN, "'..' is not allowed in a path")
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


@dataclass(frozen=True)
class Entry:
    asset_id: str
    size: int
    mime: str | None
    checksum: str
    uploaded_at: datetime


class Library:
    """One owner's tree. Shared by the requests of a few seconds (see `library`), so every
    change and every read of the member sets goes through its lock."""

    def __init__(self) -> None:
        self.files: dict[str, Entry] = {}
        self.children: dict[str, set[str]] = {"": set()}
        self.lock = threading.RLock()

    def add_folder(self, path: str) -> None:
        with self.lock:
            if not path or path in self.children:
                return
            self.children[path] = set()
            parent = _parent(path)
            self.add_folder(parent)
            self.children[parent].add(path.rsplit("/", 1)[-1])

    def add_file(self, path: str, entry: Entry) -> bool:
        with self.lock:
            if not path or path in self.files or path in self.children:
                return False
            parent = _parent(path)
            self.add_folder(parent)
            self.children[parent].add(path.rsplit("/", 1)[-1])
            self.files[path] = entry
            return True

    def file(self, path: str) -> Entry | None:
        with self.lock:
            return self.files.get(path)

    def is_folder(self, path: str) -> bool:
        with self.lock:
            return path in self.children

    def names(self, path: str) -> list[str]:
        with self.lock:
            return sorted(self.children.get(path, ()))


class _Recent:
    """Paths this process stored or recognised lately, per owner. A duplicate PUT under a new
    name stores nothing, yet the client reads the path back right after; and a folder made by
    MKCOL has no row to remember it by. Bounded, so it cannot grow without end."""

    def __init__(self, limit: int = 20_000) -> None:
        self._lock = threading.Lock()
        self._files: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._folders: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._limit = limit

    def add_file(self, user_id: str, path: str, entry: Entry) -> None:
        with self._lock:
            self._files[(user_id, path)] = entry
            self._files.move_to_end((user_id, path))
            while len(self._files) > self._limit:
                self._files.popitem(last=False)

    def add_folder(self, user_id: str, path: str) -> None:
        with self._lock:
            self._folders[(user_id, path)] = None
            self._folders.move_to_end((user_id, path))
            while len(self._folders) > self._limit:
                self._folders.popitem(last=False)

    def files(self, user_id: str) -> list[tuple[str, Entry]]:
        with self._lock:
            return [(p, e) for (u, p), e in self._files.items() if u == user_id]

    def folders(self, user_id: str) -> list[str]:
        with self._lock:
            return [p for (u, p) in self._folders if u == user_id]


RECENT = _Recent()


def _date_folder(sort_at: datetime, taken_local: str | None) -> str:
    m = _DATE.match(taken_local or "")
    if m:
        return f"{m[1]}/{m[2]}"
    return sort_at.strftime("%Y/%m")


def _unique_name(lib: Library, folder: str, asset_id: str, filename: str | None) -> str:
    name = (filename or asset_id).replace("/", "_")
    if f"{folder}/{name}" not in lib.files:
        return name
    stem, dot, ext = name.rpartition(".")
    return f"{stem}~{asset_id[:8]}.{ext}" if dot and stem else f"{name}~{asset_id[:8]}"


def build_library(user_id: str) -> Library:
    """The owner's tree from the database, plus what this process saw arrive lately."""
    lib = Library()
    live: set[str] = set()
    with session_scope() as session:
        rows = assets.backup_listing(session, user_id)
    for aid, size, mime, checksum, uploaded, sort_at, filename, device_path, local in rows:
        entry = Entry(aid, size, mime, checksum, uploaded)
        live.add(aid)
        folder = _date_folder(sort_at, local)
        lib.add_file(f"{folder}/{_unique_name(lib, folder, aid, filename)}", entry)
        if device_path:
            # A device path with '..' in it is just not listed there.
            with contextlib.suppress(DAVError):
                lib.add_file(_norm(device_path), entry)
    for path, entry in RECENT.files(user_id):
        if entry.asset_id in live:
            lib.add_file(path, entry)
    for path in RECENT.folders(user_id):
        if path not in lib.files:
            lib.add_folder(path)
    return lib


class _Libraries:
    """Each owner's tree, rebuilt at most every `ttl` seconds: a backup run sends hundreds of
    requests in a row, and rebuilding for each would scan the whole library every time. What
    this process stores meanwhile is added to the cached tree at once."""

    def __init__(self, ttl: float = 15.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._built: dict[str, tuple[float, Library]] = {}
        self._building: dict[str, threading.Lock] = {}

    def get(self, user_id: str) -> Library:
        with self._lock:
            found = self._built.get(user_id)
            if found and time.monotonic() - found[0] < self.ttl:
                return found[1]
            building = self._building.setdefault(user_id, threading.Lock())
        with building:  # one build per owner at a time; the others wait and share it
            with self._lock:
                found = self._built.get(user_id)
                if found and time.monotonic() - found[0] < self.ttl:
                    return found[1]
            lib = build_library(user_id)
            with self._lock:
                self._built[user_id] = (time.monotonic(), lib)
                # Forget idle owners' trees, so memory follows the active backups only.
                now = time.monotonic()
                for uid in [u for u, (t, _) in self._built.items() if now - t > 4 * self.ttl]:
                    del self._built[uid]
            return lib

    def forget(self, user_id: str) -> None:
        with self._lock:
            self._built.pop(user_id, None)


LIBRARIES = _Libraries()


class Provider(DAVProvider):
    def __init__(self) -> None:
        super().__init__()

    def is_readonly(self) -> bool:
        return False

    def get_resource_inst(
        self, path: str, environ: dict
    ) -> DAVCollection | DAVNonCollection | None:
        user_id = environ.get(USER_ID)
        if not user_id:
            return None
        lib = environ.get(_CACHE)
        if lib is None:
            lib = environ[_CACHE] = LIBRARIES.get(user_id)
            if environ.get("REQUEST_METHOD") == "PROPFIND":
                # A listing reads the owner's file names: the access log says so.
                with session_scope() as session:
                    record(session, (user_id, environ[DEVICE]), "asset.list")
        p = _norm(path)
        href = "/" + p
        entry = lib.file(p)
        if entry is not None:
            return AssetFile(href, environ, entry)
        if lib.is_folder(p):
            return Folder(href, environ, lib)
        # A PUT or MKCOL may name a folder nobody made: it springs into being, as on a disk
        # whose app creates folders on the fly.
        method = environ.get("REQUEST_METHOD")
        target = _norm(environ.get("PATH_INFO", ""))
        if method in ("PUT", "MKCOL", "LOCK") and p == _parent(target):
            return Folder(href, environ, lib)
        # Windows and macOS clients LOCK a new name before they PUT it: the lock needs a
        # resource to hang on, though nothing is stored until the PUT.
        if method == "LOCK" and p == target:
            return Incoming(href, environ)
        return None


def _forbidden(*_args: object, **_kwargs: object) -> None:
    raise DAVError(HTTP_FORBIDDEN, READ_ONLY)


class Folder(DAVCollection):
    def __init__(self, path: str, environ: dict, lib: Library) -> None:
        super().__init__(path, environ)
        self.lib = lib
        self.key = _norm(path)

    def get_member_names(self) -> list[str]:
        return self.lib.names(self.key)

    def get_member(self, name: str) -> DAVCollection | DAVNonCollection | None:
        return self.provider.get_resource_inst(f"{self.key}/{name}", self.environ)

    def get_display_info(self) -> dict[str, str]:
        return {"type": "Directory"}

    def get_last_modified(self) -> float | None:
        return None

    def create_empty_resource(self, name: str) -> Incoming:
        return Incoming(f"/{self.key}/{name}".replace("//", "/"), self.environ)

    def create_collection(self, name: str) -> None:
        # Backup apps make their folders first; there is nothing to store, so say yes.
        path = _norm(f"{self.key}/{name}")
        RECENT.add_folder(self.environ[USER_ID], path)
        self.lib.add_folder(path)

    def support_recursive_delete(self) -> bool:
        return False

    def support_recursive_move(self, dest_path: str) -> bool:
        return False

    delete = handle_delete = handle_move = handle_copy = copy_move_single = _forbidden  # type: ignore[assignment]


class AssetFile(DAVNonCollection):
    """An existing photo or video: readable, never overwritten or deleted over WebDAV."""

    def __init__(self, path: str, environ: dict, entry: Entry) -> None:
        super().__init__(path, environ)
        self.entry = entry

    def get_content_length(self) -> int:
        return self.entry.size

    def get_content_type(self) -> str:
        return self.entry.mime or "application/octet-stream"

    def get_creation_date(self) -> float:
        return self.entry.uploaded_at.timestamp()

    def get_last_modified(self) -> float:
        return self.entry.uploaded_at.timestamp()

    def get_etag(self) -> str:
        return self.entry.checksum

    def support_etag(self) -> bool:
        return True

    def support_ranges(self) -> bool:
        return False

    def get_content(self) -> io.RawIOBase:
        user_id = self.environ[USER_ID]
        try:
            with session_scope() as session:
                try:
                    asset = assets.owned_asset(session, user_id, self.entry.asset_id)
                except LookupError:
                    asset = None
                if asset is None or asset.trashed_at is not None or asset.original_key is None:
                    raise DAVError(HTTP_NOT_FOUND, "this file is not stored (yet)")
                # The key is read here; the blob streams on after the session has closed.
                chunks = read_decrypted(session, user_id, asset.original_key)
                first = next(chunks, b"")
                record(session, (user_id, self.environ[DEVICE]), "asset.original", asset.id)
        except (KeyDestroyed, BlobNotFound, DecryptionError) as e:
            raise DAVError(HTTP_NOT_FOUND, f"this file can no longer be read: {e}") from None
        return _IterReader(first, chunks)

    begin_write = delete = handle_delete = handle_move = copy_move_single = _forbidden  # type: ignore[assignment]


class _IterReader(io.RawIOBase):
    """A file object over decrypted chunks, so GET streams without holding the file."""

    def __init__(self, first: bytes, rest: Iterator[bytes]) -> None:
        self._buf = first
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._rest, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class Incoming(DAVNonCollection):
    """A new file arriving by PUT: staged encrypted as it streams, then ingested like tus."""

    def __init__(self, path: str, environ: dict) -> None:
        super().__init__(path, environ)
        self.user_id: str = environ[USER_ID]
        self.upload_id: str | None = None
        self.writer: StagingWriter | None = None
        self.asset_id: str | None = None
        self.created = False

    def get_content_length(self) -> int | None:
        return self.writer.received if self.writer else 0

    def get_content_type(self) -> str | None:
        return None

    def get_etag(self) -> str | None:
        return None

    def support_etag(self) -> bool:
        return False

    def support_ranges(self) -> bool:
        return False

    def get_content(self) -> io.RawIOBase:
        raise DAVError(HTTP_NOT_FOUND)

    def begin_write(self, *, content_type: str | None = None) -> StagingWriter:
        declared = self.environ.get("CONTENT_LENGTH") or ""
        length = int(declared) if declared.isdigit() else 0
        with session_scope() as session:
            try:
                upload = svc.create_upload(
                    session,
                    self.user_id,
                    length=length,
                    filename=self.name,
                    filetype=(content_type or "")[:200],
                    checksum=None,
                    device_path=_norm(self.path),
                )
            except ConsentRequired as e:
                raise DAVError(HTTP_FORBIDDEN, str(e)) from None
            except svc.UploadError as e:
                raise DAVError(e.status, str(e)) from None
            self.upload_id = upload.id
            session.commit()  # the upload row exists before its bytes, as with tus
            try:
                writer = svc.claim_writer(session, upload)
            except svc.UploadError as e:  # gone meanwhile (an expiry sweep): the client's words
                raise DAVError(e.status, str(e)) from None
            if writer is None:  # nobody else knows this new upload, but never answer 500
                raise DAVError(HTTP_LOCKED, "this upload is being written; try again shortly")
        self.writer = StagingWriter(writer, get_settings().max_upload_bytes, length or None)
        return self.writer

    def end_write(self, *, with_errors: bool) -> None:
        if self.upload_id is None:
            return
        if with_errors or self.writer is None:  # failed mid-body, or before its first byte
            self._discard()
            return
        if not self.writer.closed_ok:
            self._discard()
            raise DAVError(
                HTTP_BAD_REQUEST,
                f"the body ended after {self.writer.received:,} of "
                f"{self.writer.declared:,} bytes; nothing was kept, send the file again",
            )
        self._finish()

    def _discard(self) -> None:
        with session_scope() as session:
            upload = svc.owned_upload(session, self.user_id, self.upload_id)
            if upload is not None and upload.asset_id is None:
                svc.staging_for(session, upload).remove()
                session.delete(upload)

    def _finish(self) -> None:
        from camroll.jobs.tasks import process_asset_task  # the queue starts with the app

        assert self.writer is not None
        sha = self.writer.sha256.hexdigest()
        try:
            with session_scope() as session:
                upload = svc.owned_upload(session, self.user_id, self.upload_id)
                if upload is None:
                    raise DAVError(HTTP_CONFLICT, "this upload expired before it finished")
                # Consent may have been switched off while the bytes streamed in.
                require(session, self.user_id, "cloud_processing")
                upload.length = self.writer.received
                asset, self.created = svc.complete(session, upload, sha)
                session.flush()
                entry = _entry(asset)
        except ConsentRequired as e:
            self._discard()
            raise DAVError(HTTP_FORBIDDEN, str(e)) from None
        except IntegrityError:
            # The same bytes finished in a parallel upload a moment ago.
            self._discard()
            with session_scope() as session:
                existing = svc.find_by_checksum(session, self.user_id, sha)
                if existing is None:
                    raise DAVError(HTTP_INTERNAL_ERROR, "could not store this file") from None
                entry, self.created = _entry(existing), False
        except svc.UploadError as e:
            raise DAVError(e.status, str(e)) from None
        self.asset_id = entry.asset_id
        # The client reads the path back at once (and lists it on its next run).
        path = _norm(self.path)
        RECENT.add_file(self.user_id, path, entry)
        self.environ[_CACHE].add_file(path, entry)
        if self.created:
            process_asset_task(self.asset_id)


def _entry(asset: Asset) -> Entry:
    return Entry(asset.id, asset.size, asset.mime, asset.checksum, asset.uploaded_at)


class StagingWriter:
    """What wsgidav writes the PUT body into: sealed segments in the blob store, hashed on
    the way."""

    def __init__(self, writer: svc.Writer, limit: int, declared: int | None) -> None:
        self.writer = writer
        self.limit = limit
        self.declared = declared
        self.received = 0
        self.sha256 = hashlib.sha256()
        self.closed_ok = False
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self.received += len(data)
        if self.received > self.limit:
            raise DAVError(413, f"this server accepts files of at most {self.limit:,} bytes")
        self._buf += data
        while len(self._buf) >= SEGMENT:
            self._flush(SEGMENT)
        return len(data)

    def _flush(self, n: int) -> None:
        piece = bytes(self._buf[:n])
        del self._buf[:n]
        self.sha256.update(piece)
        try:
            with session_scope() as session:
                self.writer.append(session, piece)
        except svc.UploadError as e:
            raise DAVError(e.status, str(e)) from None

    def close(self) -> None:
        if self._buf:
            self._flush(len(self._buf))
        # A body cut short (the client went away) is not a file to keep.
        self.closed_ok = self.declared is None or self.received == self.declared
