"""The upload lifecycle: create, append, complete. Consent, limits, checksums and dedupe live here;
api/uploads.py only speaks tus.

Accepting an upload is a step (UploadStep, scope cloud_processing) on the one step contract:
the runner asks for consent before anything is written, and each PATCH asks the same step's
scope again (`require_step`)."""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from camroll import job_runs
from camroll.config import get_settings
from camroll.consent.gate import ConsentRequired
from camroll.db.models import Asset, Upload, new_id, utcnow
from camroll.ingest.staging import Staging, staging_prefix
from camroll.keyring import user_data_key
from camroll.media.names import as_sent, clean_device_path, clean_name
from camroll.pipeline.step import BaseStep, require_step, run_steps
from camroll.storage import get_store

# A writer's lease lasts this long past its last sign of life; only another writer's claim
# cares (a lapsed writer nobody challenged carries on). Node clocks must agree to within it.
LEASE = timedelta(seconds=20)


class UploadError(Exception):
    """Refused with an HTTP status and a sentence the client can show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AlreadyHave(Exception):
    def __init__(self, asset_id: str) -> None:
        super().__init__(f"already have this file as asset {asset_id}")
        self.asset_id = asset_id


def owned_upload(session: Session, user_id: str, upload_id: str) -> Upload | None:
    """The owner's upload by id; someone else's is as absent as a missing one."""
    upload = session.get(Upload, upload_id)
    return upload if upload is not None and upload.user_id == user_id else None


def received(session: Session, upload_id: str) -> int:
    """Bytes safely staged, from the database (a loaded row's copy may be behind)."""
    return session.scalar(select(Upload.offset).where(Upload.id == upload_id)) or 0


def staging_for(session: Session, upload: Upload) -> Staging:
    """The upload's segments in the blob store, sealed under the owner's data key. The prefix
    is derived, not read: a row made before blob-store staging holds an older key."""
    key = user_data_key(session, upload.user_id)
    return Staging(staging_prefix(upload.user_id, upload.id), key, upload.id)


def _owner_tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _dead_here(tag: str | None) -> bool:
    """The holder is a process on this machine that no longer runs (a crashed server)."""
    host, _, pid = (tag or "").rpartition("-")
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except OSError as e:
        return e.errno != errno.EPERM
    return False


@dataclass
class Writer:
    """The one writer of an upload, on whatever node: appends sealed segments and moves the
    upload's offset with a compare-and-set that also checks its lease generation, so a writer
    whose lease was taken over can never make its bytes count."""

    upload_id: str
    staging: Staging
    gen: int
    offset: int

    def append(self, session: Session, plain: bytes) -> None:
        """Store one piece durably, then count it; commits."""
        if not plain:
            return
        key = self.staging.put_segment(self.offset, self.gen, plain)
        moved = session.execute(
            update(Upload)
            .where(
                Upload.id == self.upload_id,
                Upload.writer_gen == self.gen,
                Upload.offset == self.offset,
            )
            .values(offset=self.offset + len(plain), writer_until=utcnow() + LEASE)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        if moved != 1:
            self.staging.delete(key)
            raise UploadError(409, "another request took this upload over; resume from its offset")
        self.offset += len(plain)

    def renew(self, session: Session) -> bool:
        """Extend the lease while a slow body streams in; False if it was taken over."""
        moved = session.execute(
            update(Upload)
            .where(Upload.id == self.upload_id, Upload.writer_gen == self.gen)
            .values(writer_until=utcnow() + LEASE)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
        return moved == 1

    def release(self, session: Session) -> None:
        session.execute(
            update(Upload)
            .where(Upload.id == self.upload_id, Upload.writer_gen == self.gen)
            .values(writer_until=None, writer_tag=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def claim_writer(session: Session, upload: Upload) -> Writer | None:
    """Take the upload's single-writer lease, through the database so every API node on every
    machine sees it: free, lapsed, or held by a dead process on this machine. Returns None
    while another writer holds it; UploadError 409 once the upload is complete or gone.
    Commits."""
    # The id from the identity map, not the row: once complete and processed, the row is gone,
    # and reading an attribute of the expired object would raise instead of answering 409.
    upload_id = sa_inspect(upload).identity[0]
    session.commit()  # a fresh snapshot: the row may have changed while we waited
    now = utcnow()
    taken = _take(session, upload_id, or_(Upload.writer_until.is_(None), Upload.writer_until < now))
    if taken is None:
        held = session.execute(
            select(Upload.writer_gen, Upload.writer_tag, Upload.asset_id).where(
                Upload.id == upload_id
            )
        ).first()
        if held is None or held.asset_id is not None:
            session.rollback()
            raise UploadError(409, "this upload is already complete")
        if _dead_here(held.writer_tag):
            taken = _take(session, upload_id, Upload.writer_gen == held.writer_gen)
        if taken is None:
            session.rollback()
            return None
    session.commit()
    gen, offset = taken
    return Writer(upload_id, staging_for(session, upload), gen, offset)


def _take(session: Session, upload_id: str, free: ColumnElement[bool]) -> tuple[int, int] | None:
    """The compare-and-set that takes the lease: (new generation, offset), or None."""
    row = session.execute(
        update(Upload)
        .where(Upload.id == upload_id, Upload.asset_id.is_(None), free)
        .values(
            writer_gen=Upload.writer_gen + 1,
            writer_until=utcnow() + LEASE,
            writer_tag=_owner_tag(),
        )
        .returning(Upload.writer_gen, Upload.offset)
        .execution_options(synchronize_session=False)
    ).first()
    return (row[0], row[1]) if row is not None else None


def lacking(session: Session, user_id: str, checksums: list[str]) -> list[str]:
    """Which of these SHA-256s this user has not uploaded yet (the sync client's batch question)."""
    wanted = {c.lower() for c in checksums}
    have: set[str] = set()
    ordered = sorted(wanted)
    for i in range(0, len(ordered), 500):
        have.update(
            session.scalars(
                select(Asset.checksum).where(
                    Asset.user_id == user_id, Asset.checksum.in_(ordered[i : i + 500])
                )
            )
        )
    return [c for c in dict.fromkeys(x.lower() for x in checksums) if c not in have]


def find_by_checksum(session: Session, user_id: str, checksum: str) -> Asset | None:
    return session.scalars(
        select(Asset).where(Asset.user_id == user_id, Asset.checksum == checksum.lower())
    ).first()


@dataclass(frozen=True)
class UploadRequest:
    """What a client asks to send (tus creation, a WebDAV PUT, the share sheet)."""

    user_id: str
    length: int
    filename: str
    filetype: str
    checksum: str | None
    device_path: str | None


class UploadStep(BaseStep):
    """Accept an upload: limits, checksum, dedupe, then the upload row to stage bytes into."""

    name = "upload"
    scope = "cloud_processing"
    reads = ("assets (checksums)",)
    writes = ("uploads",)

    def run(self, session: Session, subject: UploadRequest) -> Upload:
        return _accept(session, subject)


UPLOAD = UploadStep()


def create_upload(
    session: Session,
    user_id: str,
    *,
    length: int,
    filename: str,
    filetype: str,
    checksum: str | None,
    device_path: str | None,
) -> Upload:
    """A new upload; ConsentRequired (nothing written) without cloud_processing."""
    asked = UploadRequest(user_id, length, filename, filetype, checksum, device_path)
    (done,) = run_steps(session, user_id, [UPLOAD], asked)
    if done.refused == "consent":
        raise ConsentRequired(UPLOAD.scope)
    return done.value  # type: ignore[no-any-return]


def _accept(session: Session, asked: UploadRequest) -> Upload:
    checksum = asked.checksum
    limit = get_settings().max_upload_bytes
    if asked.length < 0:
        raise UploadError(400, "Upload-Length must not be negative")
    if asked.length > limit:
        raise UploadError(
            413, f"file is {asked.length:,} bytes; this server accepts at most {limit:,}"
        )
    if checksum is not None:
        checksum = checksum.lower()
        if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
            raise UploadError(400, "checksum must be a SHA-256 in hex")
        existing = find_by_checksum(session, asked.user_id, checksum)
        if existing is not None:
            raise AlreadyHave(existing.id)
    # Cleaned once, here: every display, download and zip entry reads these.
    name = clean_name(asked.filename)
    upload_id = new_id()
    upload = Upload(
        id=upload_id,
        user_id=asked.user_id,
        filename=name,
        original_name=as_sent(asked.filename),  # encrypted; shown nowhere but the export
        filetype=asked.filetype[:200],
        device_path=clean_device_path(asked.device_path or asked.filename) or name,
        length=asked.length,
        checksum=checksum,
        expires_at=utcnow() + timedelta(hours=get_settings().upload_expiry_hours),
        offset=0,
        staging_key=staging_prefix(asked.user_id, upload_id),
    )
    session.add(upload)
    session.flush()
    return upload


def check_offset(session: Session, upload: Upload, writer: Writer, offset: int) -> None:
    """Before a PATCH, under the lease: consent still on, and the client resumes exactly
    where we are."""
    require_step(session, upload.user_id, UPLOAD)
    if offset != writer.offset:
        raise UploadError(
            409, f"Upload-Offset {offset} does not match the server's {writer.offset}"
        )


def complete(session: Session, upload: Upload, sha: str | None = None) -> tuple[Asset, bool]:
    """Verify, dedupe and turn a finished upload into an asset. Returns (asset, is_new).

    `sha` is the hash computed while streaming when the whole file came in one request;
    otherwise the staged bytes are read once more.
    """
    staging = staging_for(session, upload)
    sha = sha or staging.sha256(received(session, upload.id))
    if upload.checksum and sha != upload.checksum:
        staging.remove()
        session.delete(upload)
        raise UploadError(
            460, f"checksum mismatch: client said {upload.checksum}, server received {sha}"
        )
    existing = find_by_checksum(session, upload.user_id, sha)
    if existing is not None:
        staging.remove()
        upload.asset_id = existing.id
        session.delete(upload)
        return existing, False
    asset = Asset(
        user_id=upload.user_id,
        checksum=sha,
        size=upload.length,
        filename=upload.filename,
        original_name=upload.original_name,
        device_path=upload.device_path,
        mime=upload.filetype or None,
        status="pending",
        uploaded_at=utcnow(),
        sort_at=utcnow(),
    )
    session.add(asset)
    session.flush()
    upload.asset_id = asset.id
    job_runs.add_pending(session, "process_asset", asset.id, asset.user_id)
    return asset, True


def expire_uploads(session: Session) -> int:
    """Delete unfinished uploads past their expiry, staging included (tus leaves that to us)."""
    old = session.scalars(
        select(Upload).where(Upload.asset_id.is_(None), Upload.expires_at < utcnow())
    ).all()
    for upload in old:
        staging_for(session, upload).remove()
        session.delete(upload)
    session.flush()
    _sweep_orphan_staging(session)
    return len(old)


def _sweep_orphan_staging(session: Session) -> int:
    """Staged segments whose upload row is gone: a worker that died between storing the
    original and removing the staging. (A row always commits before its first segment.)"""
    store = get_store()
    seen: dict[str, bool] = {}
    removed = 0
    for key in list(store.keys("staging/")):
        parts = key.split("/")
        if len(parts) != 4:
            continue
        upload_id = parts[2]
        if upload_id not in seen:
            seen[upload_id] = session.get(Upload, upload_id) is not None
        if not seen[upload_id]:
            store.delete(key)
            removed += 1
    return removed
