"""The upload page: pick or drop photos and videos; static/upload.js hashes them, asks
POST /api/assets/check, sends the missing ones over tus (/api/uploads) and follows each to
its outcome. Without cloud_processing it says so and offers that one switch instead."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, optional_caller
from camroll.config import get_settings
from camroll.consent.gate import is_granted
from camroll.web.consent import consent_view
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)

# What the chooser offers. `image/*` alone lets some phones convert HEIC to JPEG and hides RAW
# files in desktop choosers, so the formats people shoot in are named too.
ACCEPT = ",".join(
    [
        "image/*",
        "video/*",
        "image/heic",
        "image/heif",
        ".heic",
        ".heif",
        ".mov",
        ".dng",
        ".cr2",
        ".cr3",
        ".nef",
        ".arw",
        ".raf",
        ".orf",
        ".rw2",
    ]
)
CHUNK_BYTES = 8 * 1024 * 1024  # one tus PATCH: small enough to resume cheaply on a phone


@router.get("/upload", response_class=HTMLResponse)
def upload_page(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    allowed = is_granted(session, who.user.id, "cloud_processing")
    context = consent_view(session, who.user)
    # Only the switch that uploads need, as a plain form post that comes back here.
    context["consent"]["scopes"] = context["consent"]["scopes"][:1]
    context["consent"]["live"] = False
    return templates.TemplateResponse(
        request,
        "upload.html",
        {
            "user": who.user,
            "allowed": allowed,
            "accept": ACCEPT,
            "chunk_bytes": CHUNK_BYTES,
            "max_bytes": get_settings().max_upload_bytes,
            **context,
        },
    )
