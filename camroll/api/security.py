"""Edge protections installed on the whole app: security headers on every response, a request
body size limit outside the streaming doors (tus uploads, WebDAV), and validation errors that
never echo what was sent.

`/api/docs` (Swagger UI) loads its script and styles from a CDN and starts them with an inline
script, which the site-wide CSP forbids; it gets its own relaxed CSP so it still renders where
the CDN is reachable. Every other response gets exactly `CSP`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from camroll.config import get_settings

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
    "worker-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
# Doors that stream large bodies on purpose and enforce their own limits (/share: the Web
# Share Target, camroll/web/pwa.py).
# Track uploads (api/ideas.py) check their own, larger limit as the body arrives.
UNLIMITED_PREFIXES = ("/api/uploads", "/dav", "/share", "/api/ideas/tracks")
MAX_ERRORS = 20  # validation errors listed in one answer
MAX_LOC_TEXT = 60  # a location part (e.g. a dict key the client sent) is cut to this


class SecurityHeaders:
    """Adds the headers to every HTTP response; a route's own CSP is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith("/api/docs")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if b"content-security-policy" not in present:
                    policy = DOCS_CSP if docs else CSP
                    headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """413 for bodies over `max_body_bytes`: at once from Content-Length, or as soon as a
    chunked body passes the limit, before the route has parsed any of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _too_large(limit)(scope, receive, send)
                    return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, _too_large_text(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large_text(limit: int) -> str:
    return f"request body over {limit:,} bytes; upload files through /api/uploads (tus)"


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse({"detail": _too_large_text(limit)}, status_code=413)


def _short(part: Any) -> Any:
    if isinstance(part, str) and len(part) > MAX_LOC_TEXT:
        return part[:MAX_LOC_TEXT] + "…"
    return part


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 shape (`detail`: loc, msg, type) without the input that was sent: a
    2-million-key body must not come back as an 18 MB answer."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail = [
        {
            "loc": [_short(p) for p in e.get("loc", ())][:8],
            "msg": str(e.get("msg", ""))[:300],
            "type": str(e.get("type", "")),
        }
        for e in errors[:MAX_ERRORS]
    ]
    body: dict[str, Any] = {"detail": detail}
    if len(errors) > MAX_ERRORS:
        body["more_errors"] = len(errors) - MAX_ERRORS
    return JSONResponse(body, status_code=422)


async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold that got past the pydantic bounds is still the
    client's error, not ours."""
    log.warning("out-of-range value on %s %s: %r", request.method, request.url.path, exc)
    return JSONResponse({"detail": "a value in the request is out of range"}, status_code=422)


def _document_error_shapes(app: FastAPI) -> None:
    """A 422 is either FastAPI's list of field errors or one sentence from a route that
    checked the request itself (`HTTPException(422, "...")`): the schema says both."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            errors = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if errors is not None:
                listed = errors["properties"]["detail"]
                errors["properties"]["detail"] = {
                    "title": "Detail",
                    "anyOf": [
                        {k: v for k, v in listed.items() if k != "title"},
                        {"type": "string"},
                    ],
                }
                errors["properties"]["more_errors"] = {"type": "integer"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_error_shapes(app)
    app.add_middleware(BodyLimit)
    # Outside Starlette's ServerErrorMiddleware too, so even a 500 answer carries the headers.
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build())  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(OverflowError, out_of_range)
    app.add_exception_handler(DataError, out_of_range)
