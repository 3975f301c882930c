"""People pages: everyone found in the owner's photos, "same person?" suggestions, and one
person's photos with every edit (rename, birthday, hide, merge, move a face out).

Every edit is a plain form POST that redirects back (works without JavaScript, keyboard first);
static/people.js only saves names in place. The edits are the API's own functions.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll.api.deps import Caller, db, optional_caller
from camroll.consent.gate import is_granted
from camroll.db.models import Person
from camroll.people.edits import (
    EditError,
    merge_people,
    move_face,
    owned_face,
    owned_people,
    owned_person,
    person_photos,
    update_person,
)
from camroll.people.review import confirm, reject, suggestions
from camroll.privacy.audit import record
from camroll.web.forms import refuse_cross_site
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)

MESSAGES = {
    "renamed": "Name saved.",
    "birthday": "Birthday saved.",
    "hidden": "Hidden: this person no longer shows in People, search or ideas.",
    "shown": "Shown again.",
    "merged": "Merged: they are one person now.",
    "moved": "Moved out: that photo is now a person of its own.",
    "same": "Merged: they are one person now.",
    "different": "Got it: they will not be suggested again.",
}


# Errors travel as codes, never as text from the URL (no one can make the page say anything).
ERRORS = {
    "gone": "That person is no longer there.",
    "face": "That face is no longer in this person's photos.",
    "choose": "Choose someone to merge with.",
    "name": "A name must have 1 to 200 characters.",
    "birthday": "A birthday must be a real date in the past.",
    "self": "A person cannot be merged with themselves.",
    "unknown": "Unknown action.",
}


def _back(url: str, done: str | None = None, error: str | None = None) -> RedirectResponse:
    query = f"?error={error}" if error else f"?done={done}" if done else ""
    return RedirectResponse(url + query, status_code=303)


def _gate(who: Caller | None, session: Session) -> Response | None:
    """Signed out: the login page. Faces switched off: People explains how to switch them on."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if not is_granted(session, who.user.id, "faces"):
        return RedirectResponse("/people", status_code=303)
    return None


@router.get("/people", response_class=HTMLResponse)
def people_page(
    request: Request,
    hidden: bool = False,
    done: str | None = None,
    error: str | None = None,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Everyone found in the owner's photos, named first; suggestions of who may be one person."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    granted = is_granted(session, who.user.id, "faces")
    people: list[Person] = []
    pairs = []
    if granted:
        people = owned_people(session, who.user.id)
        pairs = suggestions(session, who.user.id, limit=6)
        record(session, who, "people.list")
    shown = [p for p in people if p.hidden == hidden]
    return templates.TemplateResponse(
        request,
        "people.html",
        {
            "user": who.user,
            "people": shown,
            "hidden_count": sum(p.hidden for p in people),
            "showing_hidden": hidden,
            "granted": granted,
            "pairs": pairs,
            "notice": MESSAGES.get(done or ""),
            "error": ERRORS.get(error or ""),
        },
    )


@router.post("/people/suggestions/{answer}")
def answer_suggestion(
    answer: str,
    request: Request,
    person_a: str = Form(..., max_length=32),
    person_b: str = Form(..., max_length=32),
    from_person: bool = Form(False),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The owner's answer to "is this the same person?": same (merge) or different (remember).
    Asked on a person's page (`from_person`), the answer goes back to that person (or, after a
    merge, to the person they are now part of)."""
    refuse_cross_site(request)
    if (stop := _gate(who, session)) is not None:
        return stop
    assert who is not None
    if answer not in ("same", "different"):
        return _back("/people", error="unknown")
    try:
        if answer == "same":
            merged = confirm(session, who.user.id, person_a, person_b)
            result = merged
            here = f"/people/{merged.id}" if merged else "/people"
        else:
            result = reject(session, who.user.id, person_a, person_b)
            here = f"/people/{person_a}"
    except EditError:
        return _back("/people", error="self")
    if result is None:
        return _back("/people", error="gone")
    return _back(here if from_person else "/people", answer)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def person_page(
    person_id: str,
    request: Request,
    done: str | None = None,
    error: str | None = None,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if not is_granted(session, who.user.id, "faces"):
        return RedirectResponse("/people", status_code=303)
    person = owned_person(session, who.user.id, person_id)
    if person is None:
        return templates.TemplateResponse(
            request,
            "people.html",
            {"user": who.user, "people": [], "granted": True, "pairs": [], "missing": True},
            404,
        )
    rows = person_photos(session, who.user.id, person.id)
    others = [p for p in owned_people(session, who.user.id) if p.id != person.id]
    # "Is this also them?": the suggestions that involve this person, the other one first.
    maybe = [
        (s.b if s.a.id == person.id else s.a, s.confidence)
        for s in suggestions(session, who.user.id, limit=500)
        if person.id in (s.a.id, s.b.id)
    ][:4]
    record(session, who, "person.read", person.id)
    return templates.TemplateResponse(
        request,
        "person.html",
        {
            "user": who.user,
            "person": person,
            "photos": rows,
            "others": others,
            "maybe": maybe,
            "notice": MESSAGES.get(done or ""),
            "error": ERRORS.get(error or ""),
        },
    )


@router.post("/people/{person_id}/edit")
def edit_person(
    person_id: str,
    request: Request,
    action: str = Form(..., max_length=20),
    name: str = Form("", max_length=200),
    birthday: str = Form("", max_length=10),
    other_id: str = Form("", max_length=32),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """rename (empty clears), birthday (empty clears), hide, show, merge (other_id into this)."""
    refuse_cross_site(request)
    if (stop := _gate(who, session)) is not None:
        return stop
    assert who is not None
    person = owned_person(session, who.user.id, person_id)
    if person is None:
        return _back("/people", error="gone")
    here = f"/people/{person.id}"
    try:
        if action == "rename":
            if name.strip():
                update_person(person, name=name)
            else:
                update_person(person, clear=frozenset({"name"}))
            return _back(here, "renamed")
        if action == "birthday":
            if birthday:
                update_person(person, birthday=birthday)
            else:
                update_person(person, clear=frozenset({"birthday"}))
            return _back(here, "birthday")
        if action in ("hide", "show"):
            update_person(person, hidden=action == "hide")
            return _back(here, "hidden" if action == "hide" else "shown")
        if action == "merge":
            other = owned_person(session, who.user.id, other_id)
            if other is None:
                return _back(here, error="choose")
            merge_people(session, who.user.id, person, other)
            return _back(here, "merged")
    except EditError:
        return _back(here, error={"rename": "name", "birthday": "birthday"}.get(action, "self"))
    return _back(here, error="unknown")


@router.post("/people/{person_id}/faces/{face_id}/move-out")
def move_out(
    person_id: str,
    face_id: str,
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Not this person (split): the face starts a person of its own and never comes back."""
    refuse_cross_site(request)
    if (stop := _gate(who, session)) is not None:
        return stop
    assert who is not None
    face = owned_face(session, who.user.id, face_id)
    if face is None or face.person_id != person_id:
        return _back("/people", error="face")
    move_face(session, who.user.id, face, None)
    if owned_person(session, who.user.id, person_id) is None:
        return _back("/people", "moved")
    return _back(f"/people/{person_id}", "moved")
