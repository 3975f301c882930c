"""Revocation, opt-out deadlines, purge with crypto-shredding, and signed deletion receipts.

Everything here finds data structurally: derived rows through `derived_models()`, and all of a
user's rows through the tables that carry a `user_id` column. Nothing keeps a list of tables.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session, object_session

from camroll.config import get_settings
from camroll.crypto import signing
from camroll.db.engine import session_scope
from camroll.db.models import (
    ApiToken,
    Asset,
    AuditEvent,
    Base,
    ConsentEvent,
    DeletionReceipt,
    JobRun,
    Upload,
    User,
    derived_models,
    utcnow,
)
from camroll.ingest.staging import staging_prefix
from camroll.keyring import destroy_user_key
from camroll.privacy.exports import delete_exports, expire_exports
from camroll.privacy.scrub import scrub
from camroll.storage import get_store
from camroll.vectors.index import INDEXES


def receipt_id(user_id: str, due: datetime) -> str:
    """Known when deletion is requested, so the owner can fetch the receipt after it is done."""
    return hashlib.sha256(f"camroll-receipt|{user_id}|{due.isoformat()}".encode()).hexdigest()[:32]


def scope_matches(column: Any, scope: str) -> ColumnElement[bool]:
    """Rows that `scope` allowed: alone, or with others ("content+faces" needs both, so
    revoking either deletes it)."""
    return or_(
        column == scope,
        column.like(f"{scope}+%"),
        column.like(f"%+{scope}"),
        column.like(f"%+{scope}+%"),
    )


def delete_scope_data(session: Session, user_id: str, scope: str) -> dict[str, int]:
    """Delete every derived row (and blob it points to) that `scope` allowed for this user."""
    deleted: dict[str, int] = {}
    store = get_store()
    INDEXES.invalidate(user_id)  # this process's copies of the owner's embeddings go too
    for model in derived_models():
        where = (model.user_id == user_id, scope_matches(model.scope, scope))  # type: ignore[attr-defined]
        if hasattr(model, "blob_key"):
            # A dismissed idea keeps its row (never suggested again) but not its media.
            blobs = select(model.blob_key).where(*where, model.blob_key.is_not(None))  # type: ignore[attr-defined]
            for key in session.scalars(blobs):
                store.delete(key)
        n = session.execute(delete(model).where(*where)).rowcount
        if n:
            deleted[model.__category__ or model.__tablename__] = n  # type: ignore[attr-defined]
    return deleted


def apply_consent_change(session: Session, user: User, changed: dict[str, bool]) -> None:
    """What a consent change sets in motion, right after it is recorded in the ledger."""
    if not all(changed.values()):
        # Export zips hold every scope's data: any revocation deletes them at once.
        delete_exports(session, user.id)
    for scope, granted in changed.items():
        if scope == "cloud_processing":
            if granted and user.deletion_due_at is not None:
                user.deletion_due_at = user.deletion_reason = None  # undo before the deadline
            elif not granted and user.deletion_due_at is None:
                schedule_deletion(user, "opt_out")
        elif not granted:
            delete_scope_data(session, user.id, scope)


def schedule_deletion(user: User, reason: str) -> datetime:
    session = object_session(user)
    if session is not None:  # account deletion: exports go at once, not at the deadline
        delete_exports(session, user.id)
    days = get_settings().retention_days
    user.deletion_due_at = utcnow() + timedelta(days=days)
    user.deletion_reason = reason
    return user.deletion_due_at


def _counts(session: Session, user_id: str) -> dict[str, int]:
    def count(model: type, *where: object) -> int:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    counts = {
        "originals": count(Asset, Asset.user_id == user_id),
        "consent_records": count(ConsentEvent, ConsentEvent.user_id == user_id),
        "tokens_and_sessions": count(ApiToken, ApiToken.user_id == user_id),
        "unfinished_uploads": count(Upload, Upload.user_id == user_id),
        "job_records": count(JobRun, JobRun.user_id == user_id),
        "access_log": count(AuditEvent, AuditEvent.user_id == user_id),
    }
    for model in derived_models():
        key = model.__category__ or model.__tablename__  # type: ignore[attr-defined]
        counts[key] = counts.get(key, 0) + count(model, model.user_id == user_id)  # type: ignore[attr-defined]
    return counts


def purge_user(session: Session, user: User, now: datetime) -> DeletionReceipt:
    """Shred the key first (so every copy anywhere is unreadable), then blobs, then rows."""
    user_id, due, reason = user.id, user.deletion_due_at or now, user.deletion_reason
    ledger_head = user.ledger_head
    counts = _counts(session, user_id)
    key_destroyed = destroy_user_key(session, user_id)
    INDEXES.invalidate(user_id)
    session.commit()  # the shredding must stick even if a later step fails and is retried

    blobs = get_store().delete_prefix(f"u/{user_id}/")
    blobs += get_store().delete_prefix(staging_prefix(user_id))  # unfinished uploads

    # Children before parents; every table that holds a user_id, found from the schema.
    touched = [User.__tablename__]
    for table in reversed(Base.metadata.sorted_tables):
        if "user_id" in table.c:
            session.execute(delete(table).where(table.c.user_id == user_id))
            touched.append(table.name)
    session.execute(delete(User).where(User.id == user_id))

    body = {
        "type": "camroll.deletion-receipt/v1",
        "receipt_id": receipt_id(user_id, due),
        "subject_sha256": hashlib.sha256(user_id.encode()).hexdigest(),
        "reason": reason,
        "deadline": due.isoformat(),
        "deleted_at": now.isoformat(),
        "data_key_destroyed": key_destroyed,
        "blobs_deleted": blobs,
        "counts": counts,
        "last_consent_record_sha256": ledger_head,
        "signer_public_key": signing.public_key_hex(),
    }
    text = canonical(body)
    receipt = DeletionReceipt(
        id=body["receipt_id"], body=text, signature=signing.sign(text.encode())
    )
    session.merge(receipt)
    session.commit()
    # Deleted rows must leave no readable trace in the files: WAL checkpoint or VACUUM FULL.
    scrub(session.get_bind(), touched)  # type: ignore[arg-type]
    return receipt


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def purge_due(as_of: datetime | None = None) -> list[DeletionReceipt]:
    """Purge every user whose deadline has passed (as if the clock read `as_of`)."""
    now = as_of or utcnow()
    expire_exports(now)  # exports past CAMROLL_EXPORT_DAYS go in the same sweep
    with session_scope() as s:
        due = [u.id for u in s.scalars(select(User).where(User.deletion_due_at <= now))]
    receipts = []
    for user_id in due:
        with session_scope() as s:
            user = s.get(User, user_id)
            if user is not None and user.deletion_due_at is not None:
                receipts.append(purge_user(s, user, now))
    # Photos left in the trash past CAMROLL_TRASH_DAYS go in the same sweep.
    from camroll.trash import purge_expired_trash

    purge_expired_trash(now)
    # The access log and finished jobs past their windows (CAMROLL_AUDIT_DAYS, CAMROLL_JOB_DAYS).
    from camroll.privacy.operational import prune_operational

    prune_operational(now)
    return receipts


def find_receipt(session: Session, rid: str) -> DeletionReceipt | None:
    """A receipt by id, for anyone who has the id: after a purge the owner has no account. The
    id is unguessable and the receipt names the owner only by a hash."""
    return session.get(DeletionReceipt, rid)


def receipt_document(receipt: DeletionReceipt) -> dict:
    """What the owner downloads: the signed body, its signature, and how to check it."""
    return {
        "receipt": json.loads(receipt.body),
        "signed_body": receipt.body,
        "signature_ed25519": receipt.signature,
    }


def verify_receipt_document(doc: dict, public_hex: str | None = None) -> tuple[bool, str]:
    body = doc.get("signed_body")
    sig = doc.get("signature_ed25519")
    if not isinstance(body, str) or not isinstance(sig, str):
        return False, "not a camroll deletion receipt"
    try:
        signed = json.loads(body)
    except ValueError:
        return False, "the signed body is not JSON"
    if not isinstance(signed, dict):
        return False, "not a camroll deletion receipt"
    claimed = signed.get("signer_public_key", "")
    key = public_hex or claimed
    if public_hex and claimed != public_hex:
        return False, "signed by a different instance key"
    if not signing.verify(body.encode(), sig, key):
        return False, "signature does not match the receipt"
    if signed != doc.get("receipt", signed):
        return False, "the readable copy differs from the signed body"
    return True, "valid"
