"""Installable web app: the manifest, the service worker at the root scope, and the Web Share
Target (/share) through which a phone's gallery sends photos straight into camroll.

Shared files go through the same ingest path as tus: consent gate, size limit, dedupe by
SHA-256, encrypted staging record by record, then the same completion and processing job.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from camroll.api.deps import Caller, db, optional_caller
from camroll.api.uploads import _finished as finish_upload  # the tus completion, shared
from camroll.config import get_settings
from camroll.consent.gate import ConsentRequired, is_granted
from camroll.ingest import uploads as svc
from camroll.ingest.staging import RECORD
from camroll.web.routes import STATIC, templates

router = APIRouter(include_in_schema=False)

THEME = "#2f6f5e"  # --accent of camroll.css (light theme)
BACKGROUND = "#f6f5f2"  # --bg
MAX_SHARED_FILES = 200


def manifest() -> dict[str, Any]:
    icons = [
        {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": "/static/icons/icon-maskable-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    return {
        "id": "/",
        "name": "camroll",
        "short_name": "camroll",
        "description": "Your camera roll, stored encrypted and processed only as you allow.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME,
        "background_color": BACKGROUND,
        "icons": icons,
        "shortcuts": [{"name": "Upload", "url": "/upload", "icons": icons[:1]}],
        "share_target": {
            "action": "/share",
            "method": "POST",
            "enctype": "multipart/form-data",
            "params": {
                "title": "title",
                "text": "text",
                "files": [{"name": "media", "accept": ["image/*", "video/*", ".heic", ".mov"]}],
            },
        },
    }


@router.get("/manifest.webmanifest")
def manifest_file() -> JSONResponse:
    return JSONResponse(
        manifest(),
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/sw.js")
def service_worker() -> FileResponse:
    # Served from the root so its scope covers every page; never cached by HTTP, so a new
    # version is picked up on the next visit.
    return FileResponse(
        STATIC / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@dataclass
class Shared:
    name: str
    outcome: str  # stored | had | refused
    message: str
    asset_id: str | None = None


def _ingest(session: Session, user_id: str, item: UploadFile) -> Shared:
    """One shared file through the tus path: create, stage encrypted, complete."""
    name = item.filename or "shared"
    f = item.file
    f.seek(0, 2)
    length = f.tell()
    f.seek(0)
    hasher = hashlib.sha256()
    while piece := f.read(RECORD):
        hasher.update(piece)
    sha = hasher.hexdigest()
    try:
        upload = svc.create_upload(
            session,
            user_id,
            length=length,
            filename=name,
            filetype=item.content_type or "",
            checksum=sha,
            device_path=name,
        )
    except svc.AlreadyHave as e:
        return Shared(name, "had", "Already had", e.asset_id)
    except svc.UploadError as e:
        return Shared(name, "refused", str(e))
    session.commit()  # the upload row exists before its bytes, as with tus
    staging = svc.staging_for(session, upload)
    f.seek(0)
    while piece := f.read(RECORD):
        staging.write_record(piece)
    try:
        headers = finish_upload(session, upload, sha)
    except HTTPException as e:
        return Shared(name, "refused", str(e.detail))
    status = headers["Camroll-Status"]
    new = status == "created"
    message = "Received, processing…" if new else "Already had"
    return Shared(name, "stored" if new else "had", message, headers["Camroll-Asset-Id"])


@router.get("/share")
def share_landing() -> Response:
    # Opened directly (or by a browser that shares by GET): the upload page does the same job.
    return RedirectResponse("/upload", status_code=303)


@router.post("/share", response_class=HTMLResponse)
async def share(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The Web Share Target: photos and videos shared from the phone's gallery."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "files can only be shared to camroll by the device itself")
    if not is_granted(session, who.user.id, "cloud_processing"):
        # Nothing is stored before consent: the files are dropped, and the page says why.
        return templates.TemplateResponse(
            request, "share.html", {"user": who.user, "allowed": False, "results": []}, 403
        )
    # This door is exempt from the site's small body limit (camroll.api.security); its own
    # limit is one upload's, for everything shared at once.
    limit = get_settings().max_upload_bytes
    try:
        declared = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise HTTPException(411, "a share must declare its Content-Length") from None
    if declared > limit:
        raise HTTPException(413, f"shared files over {limit:,} bytes in total; upload them instead")
    form = await request.form(max_files=MAX_SHARED_FILES)
    items = [v for v in form.getlist("media") if isinstance(v, UploadFile)]
    results: list[Shared] = []
    for item in items:
        try:
            results.append(await to_thread.run_sync(_ingest, session, who.user.id, item))
        except ConsentRequired as e:
            results.append(Shared(item.filename or "shared", "refused", str(e)))
    await form.close()
    status = 200 if items else 400
    return templates.TemplateResponse(
        request,
        "share.html",
        {"user": who.user, "allowed": True, "results": results},
        status_code=status,
    )
