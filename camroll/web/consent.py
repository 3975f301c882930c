"""The consent switches: the first-run page (/welcome) and the piece the privacy centre reuses.

`consent_view` builds the context of `_consent_switches.html`; POST /consent/{scope} flips one
switch through the same service as PUT /api/consent (camroll.consent_change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, optional_caller
from camroll.config import get_settings
from camroll.consent import ledger
from camroll.consent.gate import current_scopes
from camroll.consent.scopes import POLICY_VERSION, SCOPES, TRAINING_STATEMENT
from camroll.consent_change import change_scopes
from camroll.db.models import User
from camroll.privacy.audit import record
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Guide:
    """Plain words for one scope: what it allows, what it derives, what "off" does."""

    does: str
    derived: str
    off: str


def _guides(days: int) -> dict[str, Guide]:
    later = "at the next purge" if days == 0 else f"{days} day{'' if days == 1 else 's'} later"
    return {
        "cloud_processing": Guide(
            "Receive the photos and videos you upload, keep them encrypted under a key that is "
            "yours alone, and show them to you. Nothing can be uploaded while this is off.",
            "The date, place, camera and lens written in each file, thumbnails and previews.",
            "Uploads and processing stop at once. Everything you stored, and everything made "
            f"from it, is deleted {later}. Switch it on again before then and nothing is lost.",
        ),
        "faces": Guide(
            "Find the faces in your photos and group the same person together, so you can name "
            "people and find their photos.",
            "Face boxes, face fingerprints (numbers that describe a face), expressions and "
            "smiles, and people with the names and birthdays you give them.",
            "All of it is deleted at once, names included. Switching it on again finds the "
            "faces anew; names you gave have to be given again.",
        ),
        "places": Guide(
            "Turn the GPS positions in your photos into place names, offline, and find your "
            "home area and your trips.",
            "Place names (town, region, country), your home area and how far each photo is "
            "from it.",
            "All of it is deleted at once; the GPS positions in your own files stay. Switching "
            "it on again works the places out again.",
        ),
        "content": Guide(
            "Recognise what is in your photos (dogs, beaches, food…), score how sharp they are, "
            "spot near-duplicates, and let you search by what is in them.",
            "Tags with their scores, quality scores, near-duplicate groups and the search index.",
            "All of it is deleted at once. Switching it on again analyses your library again.",
        ),
        "creations": Guide(
            "Group photos into moments and suggest collages, recap videos, restyled photos and "
            "memories.",
            "Moments, suggestions, and the collages, videos and pictures made for you.",
            "Every suggestion and creation is deleted at once, the ones you kept included.",
        ),
    }


def consent_view(session: Session, user: User) -> dict[str, Any]:
    """Context for `_consent_switches.html`: under one key, `consent`, so it merges into any
    page's context without clashing."""
    user_id = user.id
    state = current_scopes(session, user_id)
    days = get_settings().retention_days
    guides = _guides(days)
    events = ledger.history(session, user_id)
    history: dict[str, list[dict[str, Any]]] = {name: [] for name in SCOPES}
    for e in events:
        if e.scope in history:
            history[e.scope].append(
                {"granted": e.granted, "at": e.at, "client": e.client, "hash": e.hash}
            )
    uploads_on = bool(state["cloud_processing"] and state["cloud_processing"].granted)
    scopes = []
    for name, scope in SCOPES.items():
        row = state[name]
        guide = guides[name]
        scopes.append(
            {
                "name": name,
                "title": scope.title,
                "text": scope.text,
                "granted": bool(row and row.granted),
                "changed_at": row.changed_at if row else None,
                # Analysis scopes count only while uploads are on (see consent.gate.is_granted).
                "waits_for_uploads": name != "cloud_processing" and not uploads_on,
                "does": guide.does,
                "derived": guide.derived,
                "off": guide.off,
                "history": list(reversed(history[name])),  # newest first
            }
        )
    return {
        "consent": {
            "scopes": scopes,
            "uploads_on": uploads_on,
            "retention_days": days,
            "deletion_due_at": user.deletion_due_at,
            "policy_version": POLICY_VERSION,
            "training": TRAINING_STATEMENT,
            "live": True,  # switches swap in place with htmx; False: a plain form post
        }
    }


def _safe_next(value: str | None) -> str:
    # Only paths on this site: never an open redirect.
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/welcome"


@router.get("/welcome", response_class=HTMLResponse)
def welcome(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """First run: what each scope means, with its switch."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    record(session, who, "consent.read")
    context = consent_view(session, who.user)
    # A full page load, so "Upload photos" appears as soon as uploads are switched on.
    context["consent"]["live"] = False
    return templates.TemplateResponse(request, "welcome.html", {"user": who.user, **context})


@router.post("/consent/{scope}", response_class=HTMLResponse)
def switch(
    scope: str,
    request: Request,
    granted: str = Form(...),
    next: str | None = Form(None),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Flip one switch. htmx gets the re-rendered switches; a plain form post is redirected."""
    if who is None:
        raise HTTPException(401, "sign in first")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "consent can only be changed from camroll's own pages")
    if scope not in SCOPES:
        raise HTTPException(404, f"no consent scope {scope!r}")
    if granted not in ("true", "false"):
        raise HTTPException(422, "granted must be 'true' or 'false'")
    change_scopes(session, who.user, {scope: granted == "true"}, who.client)
    if request.headers.get("hx-request") != "true":
        return RedirectResponse(_safe_next(next), status_code=303)
    session.flush()
    record(session, who, "consent.read")
    context = consent_view(session, who.user)
    context["consent"]["next"] = _safe_next(next)
    return templates.TemplateResponse(request, "_consent_switches.html", context)
