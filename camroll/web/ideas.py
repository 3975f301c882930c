"""The Ideas page: each collage, recap video or restyle itself, why it was made, and keep,
dismiss, regenerate (another layout or style) and download.

Actions are plain form POSTs that call the API's own handlers and redirect back, so they work
without JavaScript and by keyboard; a recap plays in a <video> with the browser's controls.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.api import ideas as api
from camroll.api.deps import Caller, db, optional_caller
from camroll.consent.gate import is_granted
from camroll.db.models import Idea
from camroll.privacy.audit import record
from camroll.web.forms import refuse_cross_site
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "kept": "Kept: it stays as it is and goes into your export.",
    "dismissed": "Dismissed: it will not be suggested again.",
    "regenerated": "Made again.",
}
ERRORS = {
    "gone": "That idea is no longer there.",
    "render": "It could not be made again (some of its photos are gone).",
    "unknown": "Unknown action.",
}
_EXT = {"video/mp4": "mp4", "image/jpeg": "jpg"}


@router.get("/ideas", response_class=HTMLResponse)
def ideas_page(
    request: Request,
    kept: bool = False,
    done: str | None = None,
    error: str | None = None,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Suggestions (or, with ?kept=1, the ones kept) as cards, best first."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    granted = is_granted(session, who.user.id, "creations")
    ideas: list[Idea] = []
    if granted:
        q = select(Idea).where(Idea.user_id == who.user.id, Idea.state != "dismissed")
        if kept:
            q = q.where(Idea.state == "accepted")
        ideas = list(session.scalars(q.order_by(Idea.score.desc(), Idea.id)))
        record(session, who, "ideas.list")
    styles: list[tuple[str, str]] = []  # (id, human name)
    if any(json.loads(i.params or "{}").get("style") for i in ideas):
        from camroll.create.restyle import FROM_IMAGE, STYLES
        from camroll.create.style_names import style_name

        styles = [(s, style_name(s)) for s in STYLES if s != FROM_IMAGE]
    return templates.TemplateResponse(
        request,
        "ideas.html",
        {
            "user": who.user,
            "ideas": ideas,
            "granted": granted,
            "showing_kept": kept,
            "styles": styles,
            "params": {i.id: json.loads(i.params or "{}") for i in ideas},
            "ext": _EXT,
            "notice": MESSAGES.get(done or ""),
            "error": ERRORS.get(error or ""),
        },
    )


@router.post("/ideas/{idea_id}/{action}")
def idea_action(
    idea_id: str,
    action: str,
    request: Request,
    style: str = Form("", max_length=80),
    back: str = Form("/ideas", max_length=20),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """keep, dismiss or regenerate (the next layout, or the chosen style for a restyle)."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    where = back if back in ("/ideas", "/ideas?kept=1") else "/ideas"
    sep = "&" if "?" in where else "?"
    if not is_granted(session, who.user.id, "creations"):
        return RedirectResponse(where, status_code=303)
    try:
        if action == "keep":
            api.accept(idea_id, who, session)
            done = "kept"
        elif action == "dismiss":
            api.dismiss(idea_id, who, session)
            done = "dismissed"
        elif action == "regenerate":
            body = api.RegenerateIn(style=style or None)
            api.regenerate(idea_id, body, who, session)
            done = "regenerated"
        else:
            return RedirectResponse(f"{where}{sep}error=unknown", status_code=303)
    except HTTPException as e:
        code = "gone" if e.status_code == 404 else "render"
        return RedirectResponse(f"{where}{sep}error={code}", status_code=303)
    anchor = "" if action == "dismiss" else f"#idea-{idea_id}"
    return RedirectResponse(f"{where}{sep}done={done}{anchor}", status_code=303)
