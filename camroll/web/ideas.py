"""The Ideas page: each collage, recap video or restyle itself, why it was made, and keep,
dismiss, regenerate (another layout, style, or a recap's format and music) and download; and
the owner's own music for recaps (upload, delete).

Actions are plain form POSTs that call the services (camroll.ideas.creations, .tracks) and
redirect back, so they work without JavaScript and by keyboard; a recap plays in a <video>
with the browser's controls. Uploading a track is the one step that needs script: the file goes
to POST /api/ideas/tracks as it is (static/tracks.js).
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, optional_caller
from camroll.consent.gate import ConsentRequired, is_granted
from camroll.create.style_names import style_name
from camroll.db.models import Idea
from camroll.ideas import creations, tracks
from camroll.privacy.audit import record
from camroll.web.forms import refuse_cross_site
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "kept": "Kept: it stays as it is and goes into your export.",
    "dismissed": "Dismissed: it will not be suggested again.",
    "regenerated": "Made again.",
    "track-deleted": "Track deleted. Recaps already made with it keep their sound.",
}
ERRORS = {
    "gone": "That idea is no longer there.",
    "render": "It could not be made again (some of its photos are gone).",
    "track-gone": "That track is no longer there.",
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
        ideas = creations.list_ideas(session, who.user.id, "accepted" if kept else None)
        record(session, who, "ideas.list")
    styles: list[str] = []  # human names: the page never shows or sends a style's id
    if any(json.loads(i.params or "{}").get("style") for i in ideas):
        from camroll.create.restyle import FROM_IMAGE, STYLES

        styles = [style_name(s) for s in STYLES if s != FROM_IMAGE]
    own_tracks = tracks.list_tracks(session, who.user.id) if granted else []
    return templates.TemplateResponse(
        request,
        "ideas.html",
        {
            "user": who.user,
            "ideas": ideas,
            "granted": granted,
            "showing_kept": kept,
            "styles": styles,
            "tracks": own_tracks,
            "formats": creations.RECAP_FORMATS,
            "params": {i.id: json.loads(i.params or "{}") for i in ideas},
            "ext": _EXT,
            "notice": MESSAGES.get(done or ""),
            "error": ERRORS.get(error or ""),
        },
    )


def _return_to(back: str) -> tuple[str, str]:
    """Where a form goes back to (only the ideas list, kept or not: no open redirect), and the
    separator for the query parameter added to it."""
    where = back if back in ("/ideas", "/ideas?kept=1") else "/ideas"
    return where, "&" if "?" in where else "?"


@router.post("/ideas/tracks/{track_id}/delete")
def delete_track(
    track_id: str,
    request: Request,
    back: str = Form("/ideas", max_length=20),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    where, sep = _return_to(back)
    if not is_granted(session, who.user.id, "creations"):
        return RedirectResponse(where, status_code=303)
    try:
        tracks.delete_track(session, who.user.id, track_id)
    except LookupError:
        return RedirectResponse(f"{where}{sep}error=track-gone", status_code=303)
    return RedirectResponse(f"{where}{sep}done=track-deleted#music", status_code=303)


@router.post("/ideas/{idea_id}/{action}")
def idea_action(
    idea_id: str,
    action: str,
    request: Request,
    style: str = Form("", max_length=80),
    format: str = Form("", max_length=8),
    track: str = Form("", max_length=64),
    back: str = Form("/ideas", max_length=20),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """keep, dismiss or regenerate (the next layout, the chosen style for a restyle, or a
    recap's chosen format and music: `track` an id, or "score" for music made for it)."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    refuse_cross_site(request)
    where, sep = _return_to(back)
    if not is_granted(session, who.user.id, "creations"):
        return RedirectResponse(where, status_code=303)
    try:
        if action == "keep":
            creations.accept_idea(session, who.user.id, idea_id)
            done = "kept"
        elif action == "dismiss":
            creations.dismiss_idea(session, who.user.id, idea_id)
            done = "dismissed"
        elif action == "regenerate":
            music: object = creations.UNSET
            if track:
                music = None if track == "score" else track
            change = creations.Rerender(style=style or None, format=format or None, track_id=music)
            creations.regenerate_idea(session, who.user.id, idea_id, change)
            done = "regenerated"
        else:
            return RedirectResponse(f"{where}{sep}error=unknown", status_code=303)
    except LookupError:
        return RedirectResponse(f"{where}{sep}error=gone", status_code=303)
    except ValueError:
        return RedirectResponse(f"{where}{sep}error=render", status_code=303)
    except ConsentRequired:  # switched off while the request ran: as if it were off before
        return RedirectResponse(where, status_code=303)
    anchor = "" if action == "dismiss" else f"#idea-{idea_id}"
    return RedirectResponse(f"{where}{sep}done={done}{anchor}", status_code=303)
