"""The owner's export: ask for a zip of everything, poll, download."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.orm import Session

from camroll import job_runs
from camroll.api.deps import Caller, caller, db, decrypted_body, not_found
from camroll.jobs.tasks import export_task
from camroll.privacy import exports
from camroll.privacy.audit import record
from camroll.privacy.exports import export_key

router = APIRouter(prefix="/api/me/export", tags=["privacy"])
TASK = "export"


def _url(export_id: str) -> str:
    return f"/api/me/export/{export_id}"


@router.post("", status_code=202)
def request_export(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> dict[str, str]:
    """Start building a zip of the originals, XMP sidecars and all metadata (camroll.json).
    Allowed whatever the consent state: the owner may always take their data out.

    One export per owner is built at a time: while one is in flight, this answers that one
    (same id and url) instead of starting another. The zip is deleted `CAMROLL_EXPORT_DAYS`
    after it is ready, and at once when any scope is revoked or the account is deleted."""
    running = exports.in_flight(session, who.user.id)
    if running is not None:
        return {"id": running.subject_id, "status": running.state, "url": _url(running.subject_id)}
    export_id = exports.new_export(session, who.user.id).id
    job_runs.add_pending(session, TASK, export_id, who.user.id)
    record(session, who, "export.request", export_id)
    session.commit()  # the job's record lands before the task can run
    export_task(export_id)
    return {"id": export_id, "status": "pending", "url": _url(export_id)}


@router.get("/{export_id}", response_model=None)
def get_export(
    export_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> JSONResponse | StreamingResponse:
    """202 with the job's state until the zip is ready, then the zip itself; 404 once it has
    expired or was deleted."""
    run = exports.job(session, who.user.id, export_id)
    if run is None or exports.get_live(session, who.user.id, export_id) is None:
        raise not_found("export")  # never made, expired, or deleted with a revoked scope
    if run.state != "done":
        body = {"id": export_id, "status": run.state, "url": _url(export_id)}
        return JSONResponse(body, status_code=202)
    body = decrypted_body(session, who.user.id, export_key(who.user.id, export_id))
    record(session, who, "export.download", export_id)
    name = f"camroll-export-{export_id}.zip"
    return StreamingResponse(
        body,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
