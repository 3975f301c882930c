"""The owner's export: ask for a zip of everything, poll, download."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db, decrypted_body, not_found
from camroll.db.models import JobRun, new_id
from camroll.jobs import tracking
from camroll.jobs.tasks import export_task
from camroll.privacy.audit import record
from camroll.privacy.export import export_key

router = APIRouter(prefix="/api/me/export", tags=["privacy"])
TASK = "export"


def _url(export_id: str) -> str:
    return f"/api/me/export/{export_id}"


@router.post("", status_code=202)
def request_export(
    who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> dict[str, str]:
    """Start building a zip of the originals, XMP sidecars and all metadata (camroll.json).
    Allowed whatever the consent state: the owner may always take their data out."""
    export_id = new_id()
    tracking.add_pending(session, TASK, export_id, who.user.id)
    record(session, who, "export.request", export_id)
    session.commit()  # the job's record lands before the task can run
    export_task(export_id)
    return {"id": export_id, "status": "pending", "url": _url(export_id)}


@router.get("/{export_id}", response_model=None)
def get_export(
    export_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> JSONResponse | StreamingResponse:
    """202 with the job's state until the zip is ready, then the zip itself."""
    run = session.scalars(
        select(JobRun).where(
            JobRun.task == TASK, JobRun.subject_id == export_id, JobRun.user_id == who.user.id
        )
    ).first()
    if run is None:
        raise not_found("export")
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
