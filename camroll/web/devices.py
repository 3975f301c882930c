"""The Devices page: app passwords for phone backup apps that speak WebDAV (PhotoSync,
FolderSync, the Nextcloud app). A new password is shown once, in the answer to the form that
made it; only its hash is stored. Revoking one locks that device out at its next request."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, optional_caller
from camroll.consent.gate import is_granted
from camroll.dav.app import MOUNT
from camroll.devices import MAX_NAME, DeviceError, create_device, list_devices, revoke_device
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)


def _page(
    request: Request,
    who: Caller,
    session: Session,
    *,
    created: tuple[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(
        request,
        "devices.html",
        {
            "user": who.user,
            "devices": list_devices(session, who.user.id),
            "allowed": is_granted(session, who.user.id, "cloud_processing"),
            "dav_url": str(request.base_url).rstrip("/") + MOUNT + "/",
            "created": created,
            "error": error,
            "max_name": MAX_NAME,
        },
        status_code=status_code,
        headers={"Cache-Control": "no-store"},  # the page may carry a fresh password
    )


@router.get("/devices", response_class=HTMLResponse)
def devices_page(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    return _page(request, who, session)


@router.post("/devices", response_class=HTMLResponse)
def add_device(
    request: Request,
    name: str = Form(""),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    try:
        device, password = create_device(session, who.user, name)
    except DeviceError as e:
        return _page(request, who, session, error=str(e), status_code=422)
    return _page(request, who, session, created=(device.name, password), status_code=201)


@router.post("/devices/{device_id}/revoke")
def revoke(
    device_id: str,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if not revoke_device(session, who.user.id, device_id):
        return Response("device not found", status_code=404, media_type="text/plain")
    return RedirectResponse("/devices", status_code=303)
