"""Job bookkeeping beside the queue: pending, running, done and failed per user and subject.

Huey drops a task once a worker takes it, so a worker killed mid-task would lose it. JobRun rows
remember what is unfinished; `requeue_unfinished` sends it again. Tasks are idempotent, so a
task that runs twice changes nothing.

It sits below every room (ingest records a pending job in the upload's own transaction), not in
`jobs/`, which runs the stages and so imports them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camroll.db.engine import session_scope
from camroll.db.models import JobRun, User, utcnow

log = logging.getLogger(__name__)
MAX_ERROR = 500  # characters of a failure's reason kept and shown


def mark(
    task: str,
    subject_id: str,
    user_id: str,
    state: str,
    error: str | None = None,
    session: Session | None = None,
) -> None:
    """Set a job's state in its own transaction, or in `session`'s (committed with the
    caller's other writes: one transaction per step of a job instead of one per mark)."""
    if session is not None:
        _set_state(session, task, subject_id, user_id, state, error)
        session.flush()
        return
    with session_scope() as s:
        try:
            _set_state(s, task, subject_id, user_id, state, error)
            s.flush()
        except IntegrityError:
            s.rollback()
            if s.get(User, user_id) is not None:
                raise
            # The owner was purged while the job waited (their job rows went with them):
            # nothing to record. Trying again would fail the same way, forever.
            log.info("%s %s: owner %s is gone, not marked %s", task, subject_id, user_id, state)


def _set_state(
    s: Session, task: str, subject_id: str, user_id: str, state: str, error: str | None
) -> None:
    find = select(JobRun).where(JobRun.task == task, JobRun.subject_id == subject_id)
    run = s.scalars(find).first()
    if run is None:
        # Another writer may insert the same row meanwhile (a consent grant queuing this
        # asset's analysis): then theirs is updated. A failed insert would roll back the
        # caller's whole transaction, and a savepoint on pysqlite can commit it early.
        insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        s.execute(
            insert(JobRun)
            .values(task=task, subject_id=subject_id, user_id=user_id, attempts=0, state=state)
            .on_conflict_do_nothing(index_elements=["task", "subject_id"])
        )
        run = s.scalars(find).one()
    run.state = state
    run.error = error
    run.updated_at = utcnow()
    if state == "running":
        run.attempts = (run.attempts or 0) + 1


@contextmanager
def running(
    task: str, subject_id: str, user_id: str, huey_task: object, *, marked: bool = False
) -> Iterator[None]:
    """Mark a job running (unless the caller already `marked` it, in its own transaction); if
    it raises, mark it pending (Huey retries it) or, on its last try, failed with the error.
    Marking it done is the caller's, after any follow-up is queued."""
    if not marked:
        mark(task, subject_id, user_id, "running")
    try:
        yield
    except Exception as e:
        last_try = huey_task is None or getattr(huey_task, "retries", 0) == 0
        log.exception("%s %s failed", task, subject_id)
        state = "failed" if last_try else "pending"
        mark(task, subject_id, user_id, state, repr(e)[:MAX_ERROR])
        raise


def attempts(task: str, subject_id: str, session: Session | None = None) -> int:
    """How many times this job has started (crashed workers included)."""
    q = select(JobRun.attempts).where(JobRun.task == task, JobRun.subject_id == subject_id)
    if session is not None:
        return int(session.scalar(q) or 0)
    with session_scope() as s:
        return int(s.scalar(q) or 0)


def _part_subject(user_id: str, part: str) -> str:
    return hashlib.sha256(f"{user_id}:{part}".encode()).hexdigest()[:40]


def record_failure(task: str, user_id: str, part: str, error: str) -> None:
    """A failed part of a job that went on (one idea of a refresh): counted as failed in
    /api/jobs with its reason, though the job itself ends done."""
    mark(task, _part_subject(user_id, part), user_id, "failed", error[:MAX_ERROR])


def clear_failure(task: str, user_id: str, part: str) -> None:
    """The part worked this time: its old failure no longer stands."""
    with session_scope() as s:
        s.execute(
            delete(JobRun).where(
                JobRun.task == task,
                JobRun.subject_id == _part_subject(user_id, part),
                JobRun.state == "failed",
            )
        )


def failures(session: Session, user_id: str, limit: int = 20) -> list[JobRun]:
    """The caller's failed jobs, newest first, with their reasons."""
    q = (
        select(JobRun)
        .where(JobRun.user_id == user_id, JobRun.state == "failed")
        .order_by(JobRun.updated_at.desc(), JobRun.id.desc())
        .limit(limit)
    )
    return list(session.scalars(q))


def add_pending(session: Session, task: str, subject_id: str, user_id: str) -> None:
    """Record a job inside the caller's transaction, so the work it stands for and the record
    of it commit together: a crash right after the commit still leaves it to be requeued."""
    session.add(JobRun(task=task, subject_id=subject_id, user_id=user_id, state="pending"))


def counts(session: Session, user_id: str) -> dict[str, int]:
    rows = session.execute(
        select(JobRun.state, func.count()).where(JobRun.user_id == user_id).group_by(JobRun.state)
    ).all()
    got = {state: n for state, n in rows}
    return {k: got.get(k, 0) for k in ("pending", "running", "done", "failed")}


def busy(user_id: str, task: str, besides: str | None = None) -> bool:
    """Whether the user has jobs of this kind pending or running (other than `besides`)."""
    with session_scope() as s:
        q = select(func.count()).where(
            JobRun.user_id == user_id,
            JobRun.task == task,
            JobRun.state.in_(("pending", "running")),
        )
        if besides is not None:
            q = q.where(JobRun.subject_id != besides)
        return bool(s.scalar(q))


def unfinished(session: Session, older_than: datetime | None = None) -> list[JobRun]:
    q = select(JobRun).where(JobRun.state.in_(("pending", "running")))
    if older_than is not None:
        q = q.where(JobRun.updated_at < older_than)
    return list(session.scalars(q))


def requeue_unfinished(
    dispatch: dict[str, Callable[[str], object]], stale_after: timedelta | None
) -> int:
    """Send unfinished jobs again; with stale_after, only those untouched for that long."""
    with session_scope() as s:
        cutoff = utcnow() - stale_after if stale_after is not None else None
        runs = [(r.task, r.subject_id) for r in unfinished(s, cutoff)]
    n = 0
    for task, subject in runs:
        fn = dispatch.get(task)
        if fn is not None:
            fn(subject)
            n += 1
    return n
