"""The minimal web app: password login, then a timeline of thumbnails grouped by day."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from camroll import assets
from camroll import login_throttle as throttle
from camroll.accounts import check_password, create_token, revoke_token
from camroll.api.deps import SESSION_COOKIE, Caller, db, optional_caller
from camroll.consent.gate import is_granted
from camroll.privacy.audit import record
from camroll.privacy.report import BadCursor, build_report

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)
SESSION_TTL = timedelta(days=14)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
def login(
    request: Request,
    email: str = Form(..., max_length=320),
    password: str = Form(..., max_length=1024),
    session: Session = Depends(db, scope="function"),
) -> Response:
    address = request.client.host if request.client else None
    wait = throttle.retry_after(session, email, address)
    if wait is not None:
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": throttle.message(wait), "email": email},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    user = check_password(session, email, password)
    if user is None:
        throttle.record_failure(session, email, address)
        return templates.TemplateResponse(
            request,
            "login.html",
            {"error": "Wrong email or password.", "email": email},
            status_code=401,
        )
    throttle.record_success(session, email)
    secret = create_token(session, user, "web", kind="session", ttl=SESSION_TTL)
    # First run (or opted out): the consent switches before anything else.
    first = "/" if is_granted(session, user.id, "cloud_processing") else "/welcome"
    response = RedirectResponse(first, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: Session = Depends(db, scope="function")) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        revoke_token(session, secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/report", response_class=HTMLResponse)
def report_page(
    request: Request,
    cursor: str | None = None,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The "Your data" page: the report of GET /api/me/report, for people to read."""
    if who is None:
        return RedirectResponse("/login", status_code=303)
    try:
        report = build_report(session, who.user.id, asset_cursor=cursor)
    except BadCursor:
        return RedirectResponse("/report", status_code=303)
    record(session, who, "report.read")
    return templates.TemplateResponse(
        request, "report.html", {"user": who.user, "report": report, "first_page": not cursor}
    )


WEB_SEARCH_PAGE = 500  # the grid's tiles load lazily; more is what the API's offset is for


@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: str = "",
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """Search results as a grid; each tile says why it matched."""
    from camroll.search import service

    if who is None:
        return RedirectResponse("/login", status_code=303)
    q = q.strip()[:200]
    found = (
        service.search_page(session, who.user.id, q, WEB_SEARCH_PAGE)
        if q
        else service.Results(0, [])
    )
    hits = found.hits
    names = assets.filenames(session, who.user.id, [h.asset_id for h in hits])
    record(session, who, "search")
    return templates.TemplateResponse(
        request,
        "search.html",
        {
            "user": who.user,
            "q": q,
            "total": found.total,
            "hits": [(h, names.get(h.asset_id, "")) for h in hits],
        },
    )
