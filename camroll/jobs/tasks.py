"""Queue tasks. Each is a thin, tracked wrapper around a service function that is idempotent."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab
from sqlalchemy.orm import Session

from camroll import job_runs
from camroll.db.engine import session_scope
from camroll.db.models import Asset, User, utcnow
from camroll.ingest.process import give_up, process_asset
from camroll.ingest.uploads import expire_uploads
from camroll.jobs.queue import huey
from camroll.media.validate import Quarantined
from camroll.pipeline.step import consented

log = logging.getLogger(__name__)


MAX_PROCESS_ATTEMPTS = 5


@huey.task(retries=2, retry_delay=3, context=True)
def process_asset_task(asset_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    # The owner, the attempts so far and "running": one transaction (it was three).
    with session_scope() as s:
        asset = s.get(Asset, asset_id)
        if asset is None:
            return "missing"
        user_id = asset.user_id
        spent = job_runs.attempts("process_asset", asset_id, s) >= MAX_PROCESS_ATTEMPTS
        if not spent:
            job_runs.mark("process_asset", asset_id, user_id, "running", session=s)
    if spent:
        # A file that kills its worker every time (requeued after each crash) ends here.
        give_up(asset_id, "processing stopped the worker on every try; the original is kept")
        job_runs.mark("process_asset", asset_id, user_id, "failed", "gave up after crashes")
        return "quarantined"
    try:
        with job_runs.running("process_asset", asset_id, user_id, task, marked=True):
            status = process_asset(asset_id)
    except Exception as e:
        if task is None or task.retries == 0:
            # The last try: quarantined with a reason (the error's kind, no paths), not pending.
            give_up(asset_id, f"processing failed on every try ({type(e).__name__})")
        raise
    # The follow-up is pending in the transaction that marks this job done, so `sync --wait`
    # never sees a gap; Huey gets the task once that commits (a crash in between leaves it
    # pending, and requeue_unfinished sends it).
    with session_scope() as s:
        analyse = status == "ready" and _wants_analysis(s, user_id)
        if analyse:
            job_runs.mark("analyze", asset_id, user_id, "pending", session=s)
        job_runs.mark("process_asset", asset_id, user_id, "done", session=s)
    if analyse:
        analyze_asset_task(asset_id, None)
    return status


@huey.task(retries=2, retry_delay=3, context=True)
def analyze_asset_task(asset_id: str, scopes: list[str] | None = None, task=None) -> str:  # type: ignore[no-untyped-def]
    """Faces, tags, quality and place of one asset, each only if its scope is granted now."""
    from camroll.analyze.run import analyze_asset

    with session_scope() as s:
        asset = s.get(Asset, asset_id)
        user_id = asset.user_id if asset else ""
    if not user_id:
        return "missing"
    job_runs.mark("analyze", asset_id, user_id, "running")
    try:
        status = analyze_asset(asset_id, set(scopes) if scopes else None)
    except Quarantined as q:  # a video's frames past the decode deadline: the same next time
        log.warning("analysing asset %s stopped: %s", asset_id, q.detail)
        _finish_analysis(asset_id, user_id, "failed", q.detail)
        return "failed"
    except Exception as e:
        last_try = task is None or task.retries == 0
        log.exception("analysing asset %s failed", asset_id)
        if last_try:  # one broken photo must not hold back the library's refresh and ideas
            _finish_analysis(asset_id, user_id, "failed", repr(e))
        else:
            job_runs.mark("analyze", asset_id, user_id, "pending", repr(e))
        raise
    _finish_analysis(asset_id, user_id, "done")
    return status


def _finish_analysis(asset_id: str, user_id: str, state: str, error: str | None = None) -> None:
    """The library refresh runs once the user's last analysis ends; it is pending before that
    last one reads as ended, so `sync --wait` never sees a gap."""
    others = job_runs.busy(user_id, "analyze", besides=asset_id)
    if not others:
        enqueue_refresh(user_id)
    job_runs.mark("analyze", asset_id, user_id, state, error)
    if others and not job_runs.busy(user_id, "analyze"):
        enqueue_refresh(user_id)  # the others finished meanwhile


def _wants_analysis(session: Session, user_id: str) -> bool:
    """Whether any analysis step would run for this owner now."""
    from camroll.analyze.steps import STEPS

    return bool(consented(session, user_id, STEPS))


def enqueue_analyze(asset_id: str, user_id: str, scopes: list[str] | None = None) -> None:
    job_runs.mark("analyze", asset_id, user_id, "pending")
    analyze_asset_task(asset_id, scopes)


@huey.task(retries=1, retry_delay=5, context=True)
def refresh_user_task(user_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    """The library-wide part of analysis, once a batch is analysed: home areas and distances,
    near-duplicate groups, people's covers and counts."""
    from camroll.analyze.library import refresh_library

    with job_runs.running("refresh", user_id, user_id, task):
        refresh_library(user_id)
    if _wants_ideas(user_id):
        enqueue_ideas(user_id)  # pending before refresh reads done: no gap for `sync --wait`
    job_runs.mark("refresh", user_id, user_id, "done")
    return "done"


@huey.task(retries=1, retry_delay=5, context=True)
def ideas_task(user_id: str, full: bool | None = None, task=None) -> str:  # type: ignore[no-untyped-def]
    """Ideas from moments, themes and dates; renders collages and recaps (creations scope).
    After a batch only the ideas it touched; `full` (daily, or on a grant) all of them."""
    from camroll.ideas.generate import refresh_ideas

    with job_runs.running("ideas", user_id, user_id, task):
        refresh_ideas(user_id, full=full)
    job_runs.mark("ideas", user_id, user_id, "done")
    return "done"


def enqueue_ideas(user_id: str, full: bool | None = None) -> None:
    job_runs.mark("ideas", user_id, user_id, "pending")
    ideas_task(user_id, full)


def _wants_ideas(user_id: str) -> bool:
    """Whether the ideas step would run for this owner now."""
    from camroll.ideas.generate import IdeasStep

    with session_scope() as s:
        return bool(consented(s, user_id, [IdeasStep]))


@huey.periodic_task(crontab(hour="5", minute="13"))
def daily_ideas_task() -> None:
    """Daily: "On this day" changes with the date; everyone with creations on gets a pass."""
    from camroll.consent.gate import owners_granting
    from camroll.ideas.generate import IdeasStep

    with session_scope() as s:
        users = owners_granting(s, IdeasStep.scope)
    for user_id in users:
        enqueue_ideas(user_id, full=True)


def enqueue_refresh(user_id: str) -> None:
    job_runs.mark("refresh", user_id, user_id, "pending")
    refresh_user_task(user_id)


def reanalyze_for(user_id: str, scopes: list[str]) -> int:
    """After a scope is granted (again): analyse every ready asset for it."""
    from sqlalchemy import select

    with session_scope() as s:
        ids = list(
            s.scalars(select(Asset.id).where(Asset.user_id == user_id, Asset.status == "ready"))
        )
    for asset_id in ids:
        enqueue_analyze(asset_id, user_id, scopes)
    if not ids:
        enqueue_refresh(user_id)
    return len(ids)


def reanalyze_if_granted(session: Session, user_id: str, changed: dict[str, bool]) -> None:
    """Granting faces, places or content analyses the library for it. Commits first, so the
    jobs see the grant. (Opting back in to cloud_processing is an undo: nothing was deleted,
    so nothing is recomputed.)"""
    from camroll.analyze.steps import STEPS
    from camroll.ideas.generate import IdeasStep

    turned_on = [step for step in STEPS if changed.get(step.scope)]
    if changed.get(IdeasStep.scope):
        session.commit()
        if consented(session, user_id, [IdeasStep]):
            enqueue_ideas(user_id, full=True)  # ideas went with the revocation: all again
    if not turned_on:
        return
    session.commit()
    scopes = sorted({step.scope for step in consented(session, user_id, turned_on)})
    if scopes:
        reanalyze_for(user_id, scopes)


@huey.periodic_task(crontab(hour="3", minute="41"))
def recluster_task() -> None:
    """Nightly: a full recluster keeps people tidy as they grow. One job per owner, so the
    workers share them and one owner's failure holds up no one else's."""
    from camroll.analyze.library import owners_analysed

    for user_id in owners_analysed():
        enqueue_recluster(user_id)


def enqueue_recluster(user_id: str) -> None:
    job_runs.mark("recluster", user_id, user_id, "pending")
    recluster_user_task(user_id)


@huey.task(retries=1, retry_delay=60, context=True)
def recluster_user_task(user_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    """One owner's full recluster (when faces is on), then their library refresh."""
    from camroll.analyze.library import recluster

    with job_runs.running("recluster", user_id, user_id, task):
        recluster(user_id)
    enqueue_refresh(user_id)  # pending before recluster reads done: no gap for `sync --wait`
    job_runs.mark("recluster", user_id, user_id, "done")
    return "done"


def enqueue_process(asset_id: str, user_id: str) -> None:
    job_runs.mark("process_asset", asset_id, user_id, "pending")
    process_asset_task(asset_id)


def _requeue(asset_id: str) -> None:
    process_asset_task(asset_id)


DISPATCH = {
    "process_asset": _requeue,
    "analyze": lambda asset_id: analyze_asset_task(asset_id),
    "refresh": lambda user_id: refresh_user_task(user_id),
    "ideas": lambda user_id: ideas_task(user_id),
    "export": lambda export_id: export_task(export_id),
    "recluster": lambda user_id: recluster_user_task(user_id),
}


def requeue_unfinished(stale_after: timedelta | None) -> int:
    return job_runs.requeue_unfinished(DISPATCH, stale_after)


@huey.periodic_task(crontab(minute="*/10"))
def housekeeping() -> None:
    """Expire abandoned uploads; resend jobs a crashed worker took with it; sweep the work
    files of crashed processes and abandoned half-written blobs."""
    from camroll.login_throttle import forget_old
    from camroll.storage.workfiles import sweep

    with session_scope() as s:
        n = expire_uploads(s)
        forget_old(s)  # old wrong-password records (hashed keys) go too
    if n:
        log.info("expired %d abandoned uploads", n)
    swept = sweep()
    if any(swept.values()):
        log.info("swept leftovers of crashed processes: %s", swept)
    requeue_unfinished(timedelta(minutes=30))


@huey.periodic_task(crontab(minute="17"))
def purge_task() -> None:
    """Hourly: purge every account whose deletion deadline has passed."""
    purge_now_task.call_local()


@huey.task()
def purge_now_task() -> None:
    from camroll.privacy.retention import purge_due

    for receipt in purge_due():
        log.info("purged an account; receipt %s", receipt.id)


def purge_soon_if_due(session: Session, user: User) -> None:
    """With CAMROLL_RETENTION_DAYS=0 a deadline is already due: purge now, not within the hour.
    Commits first, so the worker sees the deadline."""
    if user.deletion_due_at is not None and user.deletion_due_at <= utcnow():
        session.commit()
        purge_now_task()


@huey.task(retries=1, retry_delay=3, context=True)
def export_task(export_id: str, task=None) -> str:  # type: ignore[no-untyped-def]
    """Build the owner's export zip (camroll.privacy.export); its JobRun says who and how far."""
    from sqlalchemy import select

    from camroll.db.models import JobRun
    from camroll.privacy.export import build_export

    with session_scope() as s:
        run = s.scalars(
            select(JobRun).where(JobRun.task == "export", JobRun.subject_id == export_id)
        ).first()
        user_id, state = (run.user_id, run.state) if run else ("", "")
    if not user_id:
        return "missing"
    if state == "done":
        return "done"
    with job_runs.running("export", export_id, user_id, task):
        key = build_export(export_id, user_id)
    if key is None:  # deleted while it was built: a revoked scope's data leaves no zip behind
        from camroll.privacy.exports import DELETED

        job_runs.mark("export", export_id, user_id, "failed", DELETED)
        return "deleted"
    job_runs.mark("export", export_id, user_id, "done")
    return "done"
