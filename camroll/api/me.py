"""The owner's transparency report: every category of data held, and what is known per photo."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db
from camroll.api.limits import INT64_MAX
from camroll.privacy.audit import MAX_PAGE, events, record
from camroll.privacy.report import DEFAULT_ASSET_LIMIT, MAX_ASSET_LIMIT, BadCursor, build_report

router = APIRouter(prefix="/api/me", tags=["privacy"])


class ScopeCount(BaseModel):
    scope: str
    title: str
    count: int


class MadeBy(BaseModel):
    model: str
    version: str
    count: int
    first_at: datetime | None
    last_at: datetime | None


class FieldCount(BaseModel):
    field: str
    assets: int


class Category(BaseModel):
    table: str
    description: str
    count: int
    assets: int
    scopes: list[ScopeCount]
    made_by: list[MadeBy]
    first_at: datetime | None
    last_at: datetime | None
    fields: list[FieldCount]
    # Originals only.
    bytes: int | None = None
    by_status: dict[str, int] | None = None
    by_kind: dict[str, int] | None = None
    quarantine_reasons: dict[str, int] | None = None


class ScopeState(BaseModel):
    title: str
    granted: bool
    changed_at: datetime | None
    policy_version: str | None


class Consent(BaseModel):
    policy_version: str
    scopes: dict[str, ScopeState]
    history_records: int
    history_url: str


class Account(BaseModel):
    email: str
    created_at: datetime
    deletion_due_at: datetime | None
    deletion_reason: str | None
    api_tokens: int
    web_sessions: int
    uploads_in_progress: int
    jobs: dict[str, int]


class HeldRow(BaseModel):
    scope: str
    model: str
    version: str
    created_at: datetime
    fields: dict[str, Any]


class AssetReport(BaseModel):
    id: str
    filename: str
    original_name_base64: str | None = Field(
        default=None, description="the file name exactly as sent (base64), when it was cleaned"
    )
    device_path: str | None
    kind: str | None
    mime: str | None
    status: str
    quarantine_reason: str | None
    size: int
    uploaded_at: datetime
    derived: dict[str, list[HeldRow]]


class AssetSection(BaseModel):
    total: int
    limit: int
    next_cursor: str | None
    items: list[AssetReport]


class CreationReport(BaseModel):
    id: str
    kind: str
    title: str
    state: str
    scopes: list[str]  # every scope it drew on; revoking any one deletes it
    scope_titles: str
    created_at: datetime


class ExportReport(BaseModel):
    id: str
    status: str
    created_at: datetime
    expires_at: datetime
    bytes: int | None
    url: str


class ClearItem(BaseModel):
    what: str
    why: str


class StorageReport(BaseModel):
    encrypted_with_your_key: list[str]  # table.column, read from the models
    how: str
    stored_in_the_clear: list[ClearItem]


class HomePeriodReport(BaseModel):
    """Where the owner lived when, as inferred (`places` scope); trips are measured from it."""

    place: str | None
    latitude: float
    longitude: float
    start_date: str
    end_date: str
    days: int
    share: float
    scope: str
    model: str
    version: str
    created_at: datetime


class AccessLogReport(BaseModel):
    """The access log kept (for `kept_days`, then pruned); its entries are at `url`."""

    entries: int
    first_at: datetime | None
    last_at: datetime | None
    kept_days: int
    url: str


class Report(BaseModel):
    generated_at: datetime
    user_id: str
    account: Account
    training: str
    consent: Consent
    categories: dict[str, Category]
    storage: StorageReport
    creations: list[CreationReport]
    where_you_lived: list[HomePeriodReport] = []
    exports: list[ExportReport]
    access_log: AccessLogReport
    assets: AssetSection


@router.get("/report", response_model=Report, response_model_exclude_unset=True)
def report(
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
    asset_limit: int = Query(DEFAULT_ASSET_LIMIT, ge=1, le=MAX_ASSET_LIMIT),
    asset_cursor: str | None = Query(None, description="`assets.next_cursor` of the last page"),
) -> dict[str, Any]:
    """Everything camroll holds about you, built from the provenance of every derived row:
    per category the count, the consent scope that allowed it, the model and version that made
    it, and when; then, a page at a time, what is known about each photo."""
    record(session, who, "report.read")
    try:
        return build_report(session, who.user.id, asset_limit, asset_cursor)
    except BadCursor as e:
        raise HTTPException(400, str(e)) from None


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    next_before: int | None


@router.get("/audit", response_model=AuditPage)
def audit(
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
    limit: int = Query(100, ge=1, le=MAX_PAGE),
    before: int | None = Query(
        None, ge=1, le=INT64_MAX, description="`next_before` of the last page"
    ),
) -> AuditPage:
    """Every access to your originals and derived data, newest first: by which API token
    ("token:<name>"), web session ("web") or administrator ("admin-cli"), what, and when."""
    rows, next_before = events(session, who.user.id, limit, before)
    return AuditPage(items=[AuditEventOut.model_validate(r) for r in rows], next_before=next_before)
