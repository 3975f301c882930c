"""Installable web app: the manifest, the service worker at the root scope, and the Web Share
Target (/share) through which a phone's gallery sends photos straight into camroll.

Shared files go through the same ingest path as tus (camroll.web.share_stream): consent gate,
size limit, encrypted staging record by record, then the same completion (SHA-256, dedupe) and
processing job.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from camroll.api.deps import Caller, db, optional_caller
from camroll.consent.gate import is_granted
from camroll.web.routes import STATIC, templates
from camroll.web.share_stream import boundary_of, ingest_stream

router = APIRouter(include_in_schema=False)

THEME = "#2f6f5e"  # --accent of camroll.css (light theme)
BACKGROUND = "#f6f5f2"  # --bg


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
    # This door is exempt from the site's 1 MiB body limit (camroll.api.security): each file
    # streams into encrypted staging and is held to the upload size limit on its own.
    boundary = boundary_of(request.headers.get("content-type", ""))
    try:
        results = await ingest_stream(session, who.user.id, boundary, request.stream())
    except ClientDisconnect:
        return Response(status_code=400)
    status = 200 if results else 400
    return templates.TemplateResponse(
        request,
        "share.html",
        {"user": who.user, "allowed": True, "results": results},
        status_code=status,
    )
