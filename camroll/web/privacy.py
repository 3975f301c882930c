"""The privacy centre (/privacy): the consent switches, what camroll holds (the transparency
report in short, /report in full), "download everything", the access log, deletion receipts,
links to the trash and backup devices, and "delete my account" with its deadline and undo.

Every action is a form POST to the same service the API uses, then a redirect back; the export's
progress refreshes itself with htmx (GET /privacy/export, a fragment).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api import account, export
from camroll.api.deps import Caller, db, optional_caller
from camroll.config import get_settings
from camroll.consent_change import change_scopes
from camroll.privacy import exports
from camroll.privacy.audit import events, record
from camroll.privacy.report import build_report
from camroll.privacy.retention import receipt_id
from camroll.web.consent import consent_view
from camroll.web.forms import refuse_cross_site
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)
LOG_PAGE = 25
MESSAGES = {
    "export": "Your export is being made. It appears below when it is ready.",
    "deletion": "Your account is scheduled for deletion. You can undo it until the deadline.",
    "kept": "Deletion cancelled: your account and your photos stay.",
}


def _actor(actor: str) -> str:
    if actor == "web":
        return "you, on this website"
    if actor.startswith("token:"):
        return f"your app “{actor[6:]}”"
    if actor.startswith("device:"):
        return f"your backup device “{actor[7:]}”"
    if actor == "admin-cli":
        return "the server's administrator"
    return actor


# The access log in words; an action not listed shows as its code.
ACTIONS = {
    "asset.list": "listed your photos",
    "asset.read": "looked at a photo's details",
    "asset.original": "downloaded an original",
    "asset.preview": "showed a photo",
    "asset.thumbnail": "showed a thumbnail",
    "asset.trash": "moved a photo to the trash",
    "asset.restore": "restored a photo from the trash",
    "trash.list": "listed the trash",
    "trash.empty": "emptied the trash",
    "search": "searched your photos",
    "people.list": "listed the people in your photos",
    "people.suggestions": "looked for people who may be one",
    "person.read": "opened a person",
    "person.cover": "showed a person's face",
    "ideas.list": "listed your ideas",
    "idea.read": "opened an idea",
    "idea.media": "showed a collage, video or painting",
    "moments.list": "listed your trips and events",
    "moment.read": "opened a trip or event",
    "moments.day": "looked at what happened on a day",
    "moments.week": "looked at what happened in a week",
    "report.read": "read what camroll holds about you",
    "analysis.read": "read the summary of what analysis found",
    "consent.read": "read your permissions",
    "export.request": "asked for an export",
    "export.download": "downloaded an export",
}


def _runs(log: list[Any]) -> list[dict[str, Any]]:
    """Consecutive events of one kind by one actor become one line with a count: a page of
    thumbnails is one "showed a thumbnail x40", not forty lines."""
    out: list[dict[str, Any]] = []
    for e in log:
        last = out[-1] if out else None
        if last and last["action"] == e.action and last["actor"] == e.actor:
            last["count"] += 1
            last["first"] = e.at
            continue
        words = ACTIONS.get(e.action) or e.action
        out.append(
            {
                "action": e.action,
                "actor": e.actor,
                "who": _actor(e.actor),
                "words": words,
                "count": 1,
                "last": e.at,
                "first": e.at,
            }
        )
    return out


def _export_context(session: Session, user_id: str) -> dict[str, Any]:
    items = exports.listing(session, user_id)
    return {"exports": list(reversed(items)), "busy": any(e["status"] != "done" for e in items)}


@router.get("/privacy", response_class=HTMLResponse)
def privacy_page(
    request: Request,
    before: int | None = None,
    done: str | None = None,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if before is not None and not 1 <= before <= 2**63 - 1:
        raise HTTPException(400, "before must be an event id")
    user = who.user
    record(session, who, "report.read")
    report = build_report(session, user.id, asset_limit=1)
    log, next_before = events(session, user.id, LOG_PAGE, before)
    due = user.deletion_due_at
    return templates.TemplateResponse(
        request,
        "privacy.html",
        {
            "user": user,
            **consent_view(session, user),
            "report": report,
            "held": {k: c for k, c in report["categories"].items() if c.get("count")},
            "log": _runs(log),
            "next_before": next_before,
            "first_log_page": before is None,
            "due": due,
            "receipt_url": f"/api/receipts/{receipt_id(user.id, due)}" if due else None,
            "retention_days": get_settings().retention_days,
            "notice": MESSAGES.get(done or ""),
            **_export_context(session, user.id),
        },
    )


@router.get("/privacy/export", response_class=HTMLResponse)
def export_fragment(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The exports list alone: polled by htmx while one is being made."""
    if who is None:
        raise HTTPException(401, "sign in first")
    return templates.TemplateResponse(
        request, "_privacy_exports.html", _export_context(session, who.user.id)
    )


@router.post("/privacy/export")
def start_export(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    export.request_export(who, session)
    return RedirectResponse("/privacy?done=export#export", status_code=303)


@router.post("/privacy/delete-account")
def delete_account(
    request: Request,
    confirm: str = Form("", max_length=10),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Stop processing now and purge at the deadline; the same as DELETE /api/me."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    if confirm != "yes":
        return RedirectResponse("/privacy#delete", status_code=303)
    account.delete_me(who, session)
    return RedirectResponse("/privacy?done=deletion#delete", status_code=303)


@router.post("/privacy/keep-account")
def keep_account(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Undo: opting in to uploads again before the deadline cancels the deletion."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    change_scopes(session, who.user, {"cloud_processing": True}, who.client)
    return RedirectResponse("/privacy?done=kept", status_code=303)
