"""The access log and the job bookkeeping are kept for their windows (CAMROLL_AUDIT_DAYS,
CAMROLL_JOB_DAYS) and pruned by the hourly purge; what is kept is in the report and export."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from camroll.db.engine import session_scope
from camroll.db.models import ApiToken, AuditEvent, JobRun, utcnow
from tests.conftest import make_user


def test_the_hourly_purge_keeps_the_access_log_and_finished_jobs_for_their_windows(
    app_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.config import get_settings
    from camroll.jobs.tasks import purge_task
    from camroll.privacy.export import full_report

    monkeypatch.setenv("CAMROLL_AUDIT_DAYS", "90")
    monkeypatch.setenv("CAMROLL_JOB_DAYS", "14")
    get_settings.cache_clear()
    auth = {"Authorization": f"Bearer {make_user('owner@example.org')}"}
    make_user("neighbour@example.org")
    now = utcnow()
    with session_scope() as s:
        owner, neighbour = (
            t.user_id for t in s.scalars(select(ApiToken).order_by(ApiToken.created_at))
        )
        for user_id, days, target in [
            (owner, 100, "a" * 32),  # past the window
            (owner, 30, "b" * 32),
            (neighbour, 100, "c" * 32),
        ]:
            at = now - timedelta(days=days)
            s.add(
                AuditEvent(user_id=user_id, actor="web", action="asset.read", target=target, at=at)
            )
        for subject, state, days in [
            ("old-done", "done", 20),
            ("old-failed", "failed", 20),
            ("old-pending", "pending", 20),  # unfinished: the requeue needs it, however old
            ("old-running", "running", 20),
            ("new-failed", "failed", 1),
        ]:
            at = now - timedelta(days=days)
            run = JobRun(user_id=owner, task="analyze", subject_id=subject, state=state)
            run.error = "decoder gave up" if state == "failed" else None
            s.add(run)
            s.flush()
            run.updated_at = at  # set after the insert, as the insert stamps it now

    purge_task.call_local()

    with session_scope() as s:
        kept = {e.target for e in s.scalars(select(AuditEvent))}
        assert kept == {"b" * 32}  # the neighbour's old event went too
    report = app_client.get("/api/me/report", headers=auth).json()["access_log"]
    assert report["kept_days"] == 90 and report["url"] == "/api/me/audit"
    assert report["first_at"].startswith((now - timedelta(days=30)).date().isoformat())
    page = app_client.get("/privacy", headers=auth)
    assert page.status_code == 200 and "Each entry is kept 90 days" in page.text
    with session_scope() as s:
        exported = full_report(s, owner)["access_log"]["items"]
    assert exported[0]["target"] == "b" * 32 and exported[0]["action"] == "asset.read"
    assert {e["action"] for e in exported[1:]} <= {"report.read"}
    jobs = app_client.get("/api/jobs", headers=auth).json()
    assert (jobs["pending"], jobs["running"], jobs["done"], jobs["failed"]) == (1, 1, 0, 1)
    assert [f["subject_id"] for f in jobs["failures"]] == ["new-failed"]
