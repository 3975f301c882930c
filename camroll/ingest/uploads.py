"""The upload lifecycle: create, append, complete. Consent, limits, checksums and dedupe live here;
api/uploads.py only speaks tus."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll import job_runs
from camroll.config import get_settings
from camroll.consent.gate import require
from camroll.crypto.keys import user_data_key
from camroll.db.models import Asset, Upload, new_id, utcnow
from camroll.ingest.staging import Staging
from camroll.media.names import clean_device_path, clean_name


class UploadError(Exception):
    """Refused with an HTTP status and a sentence the client can show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AlreadyHave(Exception):
    def __init__(self, asset_id: str) -> None:
        super().__init__(f"already have this file as asset {asset_id}")
        self.asset_id = asset_id


def staging_dir() -> Path:
    return get_settings().data_dir / "staging"


def staging_for(session: Session, upload: Upload) -> Staging:
    key = user_data_key(session, upload.user_id)
    return Staging(staging_dir() / upload.staging_key, key, upload.id)


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
    require(session, user_id, "cloud_processing")
    limit = get_settings().max_upload_bytes
    if length < 0:
        raise UploadError(400, "Upload-Length must not be negative")
    if length > limit:
        raise UploadError(413, f"file is {length:,} bytes; this server accepts at most {limit:,}")
    if checksum is not None:
        checksum = checksum.lower()
        if len(checksum) != 64 or any(c not in "0123456789abcdef" for c in checksum):
            raise UploadError(400, "checksum must be a SHA-256 in hex")
        existing = find_by_checksum(session, user_id, checksum)
        if existing is not None:
            raise AlreadyHave(existing.id)
    # Cleaned once, here: every display, download and zip entry reads these.
    name = clean_name(filename)
    upload_id = new_id()
    upload = Upload(
        id=upload_id,
        user_id=user_id,
        filename=name,
        filetype=filetype[:200],
        device_path=clean_device_path(device_path or filename) or name,
        length=length,
        checksum=checksum,
        expires_at=utcnow() + timedelta(hours=get_settings().upload_expiry_hours),
        staging_key=f"{user_id}/{upload_id}",
    )
    session.add(upload)
    session.flush()
    if length == 0:  # complete on creation: an empty staging file stands for the empty file
        path = staging_for(session, upload).path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return upload


def check_offset(session: Session, upload: Upload, offset: int) -> Staging:
    """Before a PATCH: consent still on, and the client resumes exactly where we are."""
    require(session, upload.user_id, "cloud_processing")
    staging = staging_for(session, upload)
    current = staging.offset()
    if offset != current:
        raise UploadError(409, f"Upload-Offset {offset} does not match the server's {current}")
    return staging


def complete(session: Session, upload: Upload, sha: str | None = None) -> tuple[Asset, bool]:
    """Verify, dedupe and turn a finished upload into an asset. Returns (asset, is_new).

    `sha` is the hash computed while streaming when the whole file came in one request;
    otherwise the staged bytes are read once more.
    """
    staging = staging_for(session, upload)
    sha = sha or staging.sha256()
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
    return len(old)
