"""Resumable uploads over tus 1.0 (core, creation, termination, expiration), plus the sync
client's batch question "which of these do you lack?".

Bytes are streamed into encrypted staging in the blob store, one sealed segment per PATCH (or
per SEGMENT bytes of a longer one); no file is ever held in memory. One writer per upload, on
any node, through a lease in the database (camroll.ingest.uploads.claim_writer).
"""

from __future__ import annotations

import base64
import hashlib
import time

import anyio
from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from camroll.api.deps import Caller, caller, db, not_found
from camroll.api.tus_headers import tus_int
from camroll.config import get_settings
from camroll.consent.gate import ConsentRequired, require
from camroll.db.models import Upload
from camroll.ingest import uploads as svc
from camroll.ingest.staging import SEGMENT
from camroll.jobs.tasks import process_asset_task

router = APIRouter(prefix="/api", tags=["uploads"])
TUS = {"Tus-Resumable": "1.0.0"}
MAX_METADATA_PAIRS = 32
WAIT_S = 30.0  # longer than a lease, so a dead writer's lease lapses within the wait
RENEW_S = svc.LEASE.total_seconds() / 3
# What a 423 asks the client to wait before trying again: the other writer is alive (its lease
# outlived our wait), so give it a few renewals' time to finish its request.
RETRY_AFTER_S = 5


# tus's headers in the OpenAPI document (the handlers read them themselves, to answer 400 with
# tus's words rather than FastAPI's 422), so clients and schemathesis know what to send.
# Upload-Metadata's base64 groups are written so that each decodes to 3 ASCII bytes (control
# characters included: the names are cleaned on the way in).
_B64_ASCII = "(?:[A-Za-f][A-HQ-Xg-nwxyz0-3][ABEFIJMNQRUVYZcdghklopstwx014589][A-Za-z0-9+/])"


def _header(name: str, pattern: str, description: str, required: bool = True) -> dict:
    schema = {"type": "string", "pattern": pattern}
    return {"name": name, "in": "header", "required": required, "schema": schema} | {
        "description": description
    }


_TUS_RESUMABLE = _header("Tus-Resumable", "^1\\.0\\.0$", "The tus version: 1.0.0.")
_NO_BODY = {"description": "Its tus headers say where the upload stands.", "content": {}}
_CREATE = {
    "parameters": [
        _TUS_RESUMABLE,
        _header("Upload-Length", "^[0-9]{1,19}$", "The file's size in bytes (ASCII digits)."),
        _header(
            "Upload-Metadata",
            f"^filename {_B64_ASCII}{{1,20}}(,filetype {_B64_ASCII}{{0,8}})?"
            f"(,checksum {_B64_ASCII}{{0,22}})?(,relativePath {_B64_ASCII}{{0,20}})?$",
            "Comma-separated `key base64(value)` pairs: filename (required), filetype, "
            "checksum (SHA-256 hex of the whole file), relativePath.",
        ),
    ],
    "responses": {"200": _NO_BODY},  # the same bytes were sent before
}
_PATCH = {
    "parameters": [
        _TUS_RESUMABLE,
        _header("Upload-Offset", "^[0-9]{1,19}$", "Where these bytes start (ASCII digits)."),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
        },
    },
}
_TUS_ONLY = {"parameters": [_TUS_RESUMABLE]}


def _tus_headers(**extra: str) -> dict[str, str]:
    return {**TUS, "Cache-Control": "no-store", **extra}


def _metadata(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, value = pair.partition(" ")
        if len(out) >= MAX_METADATA_PAIRS:
            raise HTTPException(400, f"Upload-Metadata has over {MAX_METADATA_PAIRS} pairs")
        try:
            out[key] = base64.b64decode(value, validate=True).decode("utf-8") if value else ""
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII (found by fuzz/)
            raise HTTPException(
                400, f"Upload-Metadata value for {key[:40]!r} is not base64 UTF-8"
            ) from None
    return out


def _consent_error(e: ConsentRequired) -> HTTPException:
    return HTTPException(403, str(e), headers=TUS)


def _upload(session: Session, who: Caller, upload_id: str) -> Upload:
    upload = svc.owned_upload(session, who.user.id, upload_id)
    if upload is None or upload.asset_id is not None:
        raise not_found("upload")
    return upload


def _finished(session: Session, upload: Upload, sha: str | None) -> dict[str, str]:
    try:
        asset, is_new = svc.complete(session, upload, sha)
        session.commit()
    except IntegrityError:
        # The same bytes finished in a parallel upload a moment ago.
        session.rollback()
        asset = svc.find_by_checksum(session, upload.user_id, sha or "")
        if asset is None:
            raise
        is_new = False
    except svc.UploadError as e:
        session.commit()
        raise HTTPException(e.status, str(e), headers=TUS) from None
    if is_new:
        process_asset_task(asset.id)  # its JobRun committed with the asset
    return {"Camroll-Asset-Id": asset.id, "Camroll-Status": "created" if is_new else "duplicate"}


@router.options("/uploads", include_in_schema=False)
def tus_options() -> Response:
    return Response(
        status_code=204,
        headers={
            **TUS,
            "Tus-Version": "1.0.0",
            "Tus-Extension": "creation,termination,expiration",
            "Tus-Max-Size": str(get_settings().max_upload_bytes),
        },
    )


@router.post("/uploads", status_code=201, openapi_extra=_CREATE, response_class=Response)
def create(
    request: Request,
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """tus creation. Metadata: filename, filetype, checksum (SHA-256 hex), relativePath."""
    length = tus_int(request.headers.get("upload-length"))
    if length is None:
        raise HTTPException(
            400, "Upload-Length header is required: a non-negative integer in ASCII digits only"
        )
    meta = _metadata(request.headers.get("upload-metadata", ""))
    if "filename" not in meta:
        raise HTTPException(400, "Upload-Metadata must carry a filename")
    try:
        upload = svc.create_upload(
            session,
            who.user.id,
            length=length,
            filename=meta["filename"],
            filetype=meta.get("filetype", ""),
            checksum=meta.get("checksum") or None,
            device_path=meta.get("relativePath"),
        )
    except ConsentRequired as e:
        raise _consent_error(e) from None
    except svc.AlreadyHave as e:
        return Response(
            status_code=200,
            headers=_tus_headers(**{"Camroll-Asset-Id": e.asset_id, "Camroll-Status": "duplicate"}),
        )
    except svc.UploadError as e:
        raise HTTPException(e.status, str(e), headers=TUS) from None
    headers = _tus_headers(
        Location=f"/api/uploads/{upload.id}",
        **{
            "Upload-Offset": "0",
            "Upload-Expires": upload.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )
    if length == 0:
        session.commit()
        headers |= _finished(session, upload, hashlib.sha256(b"").hexdigest())
    return Response(status_code=201, headers=headers)


@router.head("/uploads/{upload_id}", openapi_extra=_TUS_ONLY, response_class=Response)
def head(
    upload_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> Response:
    upload = _upload(session, who, upload_id)
    offset = svc.received(session, upload.id)
    return Response(
        status_code=200,
        headers=_tus_headers(**{"Upload-Offset": str(offset), "Upload-Length": str(upload.length)}),
    )


@router.patch(
    "/uploads/{upload_id}", status_code=204, openapi_extra=_PATCH, response_class=Response
)
async def patch(
    upload_id: str,
    request: Request,
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise HTTPException(415, "Content-Type must be application/offset+octet-stream")
    offset = tus_int(request.headers.get("upload-offset"))
    if offset is None:
        raise HTTPException(
            400, "Upload-Offset header is required: a non-negative integer in ASCII digits only"
        )

    upload = await to_thread.run_sync(_upload, session, who, upload_id)
    # One writer per upload: a PATCH whose connection was cut may still be flushing its last
    # bytes when the client resumes; the resumed PATCH waits for it, then reads the offset.
    writer = await _claim(session, upload)
    headers = None
    try:
        try:
            await to_thread.run_sync(svc.check_offset, session, upload, writer, offset)
        except ConsentRequired as e:
            raise _consent_error(e) from None
        except svc.UploadError as e:
            raise HTTPException(e.status, str(e), headers=TUS) from None
        headers = await _receive(request, session, upload, writer, offset)
    finally:
        if headers is None or "Camroll-Asset-Id" not in headers:  # complete: nobody can claim
            await to_thread.run_sync(writer.release, session)
    if headers is None:
        return Response(status_code=400)
    return Response(status_code=204, headers=headers)


async def _claim(session: Session, upload: Upload) -> svc.Writer:
    """The upload's lease, waiting up to WAIT_S for another writer to finish (or its lease
    to lapse, when it died)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            writer = await to_thread.run_sync(svc.claim_writer, session, upload)
        except svc.UploadError as e:
            raise HTTPException(e.status, str(e), headers=TUS) from None
        if writer is not None:
            return writer
        if time.monotonic() > deadline:
            raise HTTPException(
                423,
                "another request is still writing this upload",
                headers={**TUS, "Retry-After": str(RETRY_AFTER_S)},
            )
        await anyio.sleep(0.1)


async def _receive(
    request: Request, session: Session, upload: Upload, writer: svc.Writer, offset: int
) -> dict[str, str] | None:
    """Stream the body into staging; returns response headers, or None if the client left."""
    remaining = upload.length - offset
    hasher = hashlib.sha256() if offset == 0 else None
    buf = bytearray()
    received = 0
    alive_at = time.monotonic()

    async def flush() -> None:
        nonlocal alive_at
        if buf:
            piece = bytes(buf)
            buf.clear()
            if hasher is not None:
                hasher.update(piece)
            await to_thread.run_sync(_append, session, writer, piece)
            alive_at = time.monotonic()

    try:
        async for piece in request.stream():
            received += len(piece)
            if received > remaining:
                raise HTTPException(413, "more bytes than the declared Upload-Length", headers=TUS)
            buf += piece
            if len(buf) >= SEGMENT:
                await flush()
            elif time.monotonic() - alive_at > RENEW_S:  # a slow body: keep the lease
                if not await to_thread.run_sync(writer.renew, session):
                    raise HTTPException(409, "another request took this upload over", headers=TUS)
                alive_at = time.monotonic()
    except ClientDisconnect:
        await flush()  # keep what arrived: the client resumes from here
        return None
    await flush()
    new_offset = offset + received
    headers = _tus_headers(**{"Upload-Offset": str(new_offset)})
    if new_offset == upload.length:
        sha = hasher.hexdigest() if hasher is not None else None
        headers |= await to_thread.run_sync(_finished, session, upload, sha)
    return headers


def _append(session: Session, writer: svc.Writer, piece: bytes) -> None:
    try:
        writer.append(session, piece)
    except svc.UploadError as e:
        raise HTTPException(e.status, str(e), headers=TUS) from None


@router.delete(
    "/uploads/{upload_id}", status_code=204, openapi_extra=_TUS_ONLY, response_class=Response
)
def terminate(
    upload_id: str, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> Response:
    upload = _upload(session, who, upload_id)
    svc.staging_for(session, upload).remove()
    session.delete(upload)
    return Response(status_code=204, headers=TUS)


class CheckIn(BaseModel):
    checksums: list[str] = Field(max_length=10_000)


class CheckOut(BaseModel):
    missing: list[str]


@router.post("/assets/check", response_model=CheckOut)
def check(
    body: CheckIn, who: Caller = Depends(caller), session: Session = Depends(db, scope="function")
) -> CheckOut:
    """Which of these SHA-256s the server lacks: the sync client uploads only those."""
    try:
        require(session, who.user.id, "cloud_processing")
    except ConsentRequired as e:
        raise _consent_error(e) from None
    return CheckOut(missing=svc.lacking(session, who.user.id, body.checksums))
