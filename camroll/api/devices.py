"""Device app passwords for WebDAV backup apps: list, create (the password is shown once),
revoke. Another user's device id answers 404."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, caller, db, not_found
from camroll.dav.app import MOUNT
from camroll.db.models import ApiToken
from camroll.devices import MAX_NAME, DeviceError, create_device, list_devices, revoke_device

router = APIRouter(prefix="/api", tags=["devices"])


class DeviceOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class DeviceIn(BaseModel):
    name: str = Field(max_length=MAX_NAME)


class DeviceCreated(DeviceOut):
    password: str = Field(description="shown this once; only its hash is kept")
    webdav_path: str = Field(description="the WebDAV folder on this server, e.g. /dav/")


def device_out(d: ApiToken) -> DeviceOut:
    return DeviceOut(id=d.id, name=d.name, created_at=d.created_at, last_used_at=d.last_used_at)


@router.get("/devices", response_model=list[DeviceOut])
def devices(who: Caller = Depends(caller), session: Session = Depends(db, scope="function")):
    """The caller's backup devices, newest first (never their passwords)."""
    return [device_out(d) for d in list_devices(session, who.user.id)]


@router.post("/devices", response_model=DeviceCreated, status_code=201)
def add_device(
    body: DeviceIn, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
):
    """A new app password for one device's WebDAV backup app (user name: your email)."""
    try:
        device, password = create_device(session, who.user, body.name)
    except DeviceError as e:
        raise HTTPException(422, str(e)) from None
    return DeviceCreated(
        **device_out(device).model_dump(), password=password, webdav_path=f"{MOUNT}/"
    )


@router.delete("/devices/{device_id}", status_code=204)
def delete_device(
    device_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> Response:
    """Revoke: the device's next request gets 401."""
    if not revoke_device(session, who.user.id, device_id):
        raise not_found("device")
    return Response(status_code=204)
