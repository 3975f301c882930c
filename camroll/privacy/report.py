"""The transparency report: everything camroll holds about one owner, read from provenance.

Derived data is found through `derived_models()` and described by each class's own columns and
docstring, so a new derived table appears here with no change to this file. Every query is
scoped to the owner's `user_id`.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, distinct, func, or_, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute, Session

from camroll.config import get_settings
from camroll.consent.gate import current_scopes
from camroll.consent.scopes import POLICY_VERSION, SCOPES, TRAINING_STATEMENT
from camroll.db.models import (
    ApiToken,
    Asset,
    AuditEvent,
    ConsentEvent,
    Derived,
    JobRun,
    Upload,
    User,
    derived_models,
    utcnow,
)
from camroll.places.periods import where_you_lived
from camroll.privacy import at_rest, creations, exports

ORIGINALS = "originals"
# Originals are what the sync client uploads; storing them is what cloud_processing allows.
ORIGINALS_SCOPE = "cloud_processing"
DEFAULT_ASSET_LIMIT = 200
MAX_ASSET_LIMIT = 1000
# The provenance columns every derived row carries, read off the mixin rather than listed here:
# they are reported as "scope" and "made by", not as data about the photo.
PROVENANCE = frozenset(k for k in vars(Derived) if not k.startswith("_"))


class BadCursor(ValueError):
    pass


def category_key(model: type) -> str:
    return getattr(model, "__category__", "") or model.__tablename__  # type: ignore[attr-defined]


def _description(model: type) -> str:
    # Only the class's own docstring: an inherited one would describe the mixin instead.
    doc = model.__dict__.get("__doc__") or ""
    return inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ")


def _content_attrs(model: type) -> list[InstrumentedAttribute[Any]]:
    """The mapped columns that hold data: not provenance, not keys, not the owner."""
    mapper = sa_inspect(model)
    return [
        getattr(model, attr.key)
        for attr in mapper.column_attrs
        if attr.key not in PROVENANCE
        and attr.key != "user_id"
        and not any(c.primary_key for c in attr.columns)
    ]


def _field_counts(
    session: Session, attrs: list[InstrumentedAttribute[Any]], asset_id: Any, own: Any
) -> list[dict[str, Any]]:
    """How many of the owner's assets have a value in each field (one query)."""
    if not attrs:
        return []
    counts = session.execute(
        select(*[func.count(distinct(case((a.isnot(None), asset_id)))) for a in attrs]).where(own)
    ).one()
    return [{"field": a.key, "assets": n} for a, n in zip(attrs, counts, strict=True)]


def _scope_entry(scope: str, count: int) -> dict[str, Any]:
    # A composite scope ("a+b") was made with both on and is deleted when either goes off.
    titles = [SCOPES[p].title if p in SCOPES else p for p in scope.split("+")]
    return {"scope": scope, "title": " and ".join(titles), "count": count}


def _originals(session: Session, user_id: str) -> dict[str, Any]:
    own = Asset.user_id == user_id
    count, size, first, last = session.execute(
        select(
            func.count(),
            func.sum(Asset.size),
            func.min(Asset.uploaded_at),
            func.max(Asset.uploaded_at),
        ).where(own)
    ).one()

    def by(col: Any) -> dict[str, int]:
        rows = session.execute(select(col, func.count()).where(own).group_by(col)).all()
        return {str(k): n for k, n in rows if k is not None}

    return {
        "table": Asset.__tablename__,
        "description": _description(Asset),
        "count": count,
        "assets": count,
        "bytes": int(size or 0),
        "by_status": by(Asset.status),
        "by_kind": by(Asset.kind),
        "quarantine_reasons": by(Asset.quarantine_reason),
        "scopes": [_scope_entry(ORIGINALS_SCOPE, count)] if count else [],
        "made_by": [],  # uploaded by the owner's sync client, not made by a model
        "first_at": first,
        "last_at": last,
        "fields": _field_counts(session, _content_attrs(Asset), Asset.id, own),
    }


def _derived(session: Session, model: Any, user_id: str) -> dict[str, Any]:
    own = model.user_id == user_id
    count, assets, first, last = session.execute(
        select(
            func.count(),
            func.count(distinct(model.asset_id)),
            func.min(model.created_at),
            func.max(model.created_at),
        ).where(own)
    ).one()
    scopes = session.execute(
        select(model.scope, func.count()).where(own).group_by(model.scope).order_by(model.scope)
    ).all()
    made_by = session.execute(
        select(
            model.model,
            model.model_version,
            func.count(),
            func.min(model.created_at),
            func.max(model.created_at),
        )
        .where(own)
        .group_by(model.model, model.model_version)
        .order_by(model.model, model.model_version)
    ).all()
    return {
        "table": model.__tablename__,
        "description": _description(model),
        "count": count,
        "assets": assets,
        "scopes": [_scope_entry(s, n) for s, n in scopes],
        "made_by": [
            {"model": m, "version": v, "count": n, "first_at": a, "last_at": b}
            for m, v, n, a, b in made_by
        ],
        "first_at": first,
        "last_at": last,
        "fields": _field_counts(session, _content_attrs(model), model.asset_id, own),
    }


def categories(session: Session, user_id: str) -> dict[str, dict[str, Any]]:
    out = {ORIGINALS: _originals(session, user_id)}
    for model in sorted(derived_models(), key=lambda m: m.__tablename__):  # type: ignore[attr-defined]
        key = category_key(model)
        if key in out:  # two tables claiming one category stay apart
            key = f"{key}:{model.__tablename__}"  # type: ignore[attr-defined]
        out[key] = _derived(session, model, user_id)
    return out


def _consent(session: Session, user_id: str) -> dict[str, Any]:
    state = current_scopes(session, user_id)
    records = session.scalar(
        select(func.count()).select_from(ConsentEvent).where(ConsentEvent.user_id == user_id)
    )
    return {
        "policy_version": POLICY_VERSION,
        "scopes": {
            name: {
                "title": SCOPES[name].title,
                "granted": bool(row and row.granted),
                "changed_at": row.changed_at if row else None,
                "policy_version": row.policy_version if row else None,
            }
            for name, row in state.items()
        },
        "history_records": records or 0,
        "history_url": "/api/consent/history",
    }


def _account(session: Session, user: User) -> dict[str, Any]:
    def count(model: Any, *where: ColumnElement[bool]) -> int:
        q = select(func.count()).select_from(model).where(model.user_id == user.id, *where)
        return session.scalar(q) or 0

    jobs = session.execute(
        select(JobRun.state, func.count()).where(JobRun.user_id == user.id).group_by(JobRun.state)
    ).all()
    return {
        "email": user.email,
        "created_at": user.created_at,
        "deletion_due_at": user.deletion_due_at,
        "deletion_reason": user.deletion_reason,
        "api_tokens": count(ApiToken, ApiToken.kind == "api"),
        "web_sessions": count(ApiToken, ApiToken.kind == "session"),
        "uploads_in_progress": count(Upload),
        "jobs": dict(jobs),
    }


def _access_log(session: Session, user_id: str) -> dict[str, Any]:
    """How much of the access log is kept and for how long; the entries are at `url` (and all
    of them in the export)."""
    entries, first, last = session.execute(
        select(func.count(), func.min(AuditEvent.at), func.max(AuditEvent.at)).where(
            AuditEvent.user_id == user_id
        )
    ).one()
    return {
        "entries": entries,
        "first_at": first,
        "last_at": last,
        "kept_days": get_settings().audit_days,
        "url": "/api/me/audit",
    }


def encode_cursor(asset: Asset) -> str:
    raw = json.dumps([asset.sort_at.isoformat(), asset.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, asset_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(at), str(asset_id)
    except (binascii.Error, ValueError, TypeError) as e:
        raise BadCursor("invalid asset_cursor") from e


def _value(v: Any) -> Any:
    # Embeddings and other binary values are described, not dumped.
    return f"<{len(v)} bytes>" if isinstance(v, bytes | bytearray | memoryview) else v


def _assets(session: Session, user_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of "what we know about this photo", in timeline order (newest first)."""
    own = Asset.user_id == user_id
    q = select(Asset).where(own)
    if cursor:
        at, last_id = _decode_cursor(cursor)
        q = q.where(or_(Asset.sort_at < at, and_(Asset.sort_at == at, Asset.id < last_id)))
    page = list(session.scalars(q.order_by(Asset.sort_at.desc(), Asset.id.desc()).limit(limit + 1)))
    more = len(page) > limit
    page = page[:limit]
    ids = [a.id for a in page]
    held: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in ids}
    for model in derived_models():
        m: Any = model
        attrs = _content_attrs(model)
        pk = sa_inspect(model).primary_key
        rows = session.scalars(
            select(model)
            .where(m.user_id == user_id, m.asset_id.in_(ids))
            .order_by(m.created_at, *pk)
        )
        for row in rows:
            values = {a.key: _value(getattr(row, a.key)) for a in attrs}
            held[row.asset_id].setdefault(category_key(model), []).append(
                {
                    "scope": row.scope,
                    "model": row.model,
                    "version": row.model_version,
                    "created_at": row.created_at,
                    "fields": {k: v for k, v in values.items() if v is not None},
                }
            )
    total = session.scalar(select(func.count()).select_from(Asset).where(own)) or 0
    return {
        "total": total,
        "limit": limit,
        "next_cursor": encode_cursor(page[-1]) if more and page else None,
        "items": [
            {
                "id": a.id,
                "filename": a.filename,
                **_original_name(a),
                "device_path": a.device_path,
                "kind": a.kind,
                "mime": a.mime,
                "status": a.status,
                "quarantine_reason": a.quarantine_reason,
                "size": a.size,
                "uploaded_at": a.uploaded_at,
                "derived": held[a.id],
            }
            for a in page
        ],
    }


def _original_name(asset: Asset) -> dict[str, str]:
    """The name exactly as sent, when cleaning changed it: base64 of its bytes, so control
    and bidi characters reach the owner intact but never a page as text."""
    sent = asset.original_name
    if sent is None or sent == asset.filename.encode():
        return {}
    return {"original_name_base64": base64.b64encode(sent).decode("ascii")}


def build_report(
    session: Session,
    user_id: str,
    asset_limit: int = DEFAULT_ASSET_LIMIT,
    asset_cursor: str | None = None,
) -> dict[str, Any]:
    """The whole report for one owner. Raises BadCursor for a cursor this never handed out."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    limit = max(1, min(asset_limit, MAX_ASSET_LIMIT))
    return {
        "generated_at": utcnow(),
        "user_id": user.id,
        "account": _account(session, user),
        "training": TRAINING_STATEMENT,
        "consent": _consent(session, user_id),
        "categories": categories(session, user_id),
        # What is encrypted with the owner's key, and what stays in the clear and why.
        "storage": at_rest.statement(),
        "creations": creations.listing(session, user_id),
        # Where the owner lived when (places): trips are measured from it.
        "where_you_lived": where_you_lived(session, user_id),
        "exports": exports.listing(session, user_id),
        # Who read what, kept for CAMROLL_AUDIT_DAYS.
        "access_log": _access_log(session, user_id),
        "assets": _assets(session, user_id, limit, asset_cursor),
    }
