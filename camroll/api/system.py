"""Health and job counts."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll import __version__, job_runs
from camroll.api.deps import Caller, caller, db
from camroll.db.engine import ping

router = APIRouter(prefix="/api", tags=["system"])


class Health(BaseModel):
    status: str
    version: str
    database: str


class JobFailure(BaseModel):
    task: str
    subject_id: str
    error: str | None
    at: datetime


class JobCounts(BaseModel):
    pending: int
    running: int
    done: int
    failed: int
    failures: list[JobFailure] = Field(
        default_factory=list, description="the newest failed jobs (at most 20), with reasons"
    )


@router.get("/health", response_model=Health)
def health(session: Session = Depends(db, scope="function")) -> Health:
    return Health(status="ok", version=__version__, database=ping(session))


@router.get("/jobs", response_model=JobCounts)
def jobs(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> JobCounts:
    """The caller's own jobs: pending and running reach zero once everything sent is processed."""
    failures = [
        JobFailure(task=r.task, subject_id=r.subject_id, error=r.error, at=r.updated_at)
        for r in job_runs.failures(session, who.user.id)
    ]
    return JobCounts(**job_runs.counts(session, who.user.id), failures=failures)
