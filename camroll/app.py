"""The FastAPI application: API under /api, the web pages, WebDAV, and the embedded worker.

The one place that assembles the doors, so `api/` and `web/` never import each other's package
(web pages use the API's callers and sessions; the API knows nothing of pages)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from camroll import __version__
from camroll.api import (
    account,
    assets,
    consent,
    devices,
    export,
    ideas,
    me,
    moments,
    people,
    search,
    security,
    suggestions,
    system,
    trash,
    uploads,
)
from camroll.dav.app import MOUNT, create_dav_app
from camroll.startup import prepare_database
from camroll.web import consent as web_consent
from camroll.web import devices as web_devices
from camroll.web import ideas as web_ideas
from camroll.web import people as web_people
from camroll.web import privacy as web_privacy
from camroll.web import pwa as web_pwa
from camroll.web import routes as web
from camroll.web import timeline as web_timeline
from camroll.web import upload as web_upload
from camroll.web import vendor

log = logging.getLogger(__name__)


def create_app(embedded_worker: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        prepare_database()
        consumer = None
        if embedded_worker:
            from camroll.jobs.consumer import start_embedded, stop_embedded

            consumer = start_embedded()
        try:
            yield
        finally:
            if consumer is not None:
                stop_embedded(consumer)

    app = FastAPI(
        title="camroll",
        version=__version__,
        description="Self-hosted cloud processing for phone camera rolls.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    security.install(app)  # headers, body size limit, validation errors without the input
    for r in (
        system.router,
        consent.router,
        uploads.router,
        devices.router,
        trash.router,
        assets.router,
        suggestions.router,  # before people: /api/people/suggestions is no person id
        people.router,
        search.router,
        ideas.router,
        moments.router,
        account.router,
        export.router,
        me.router,
        web_timeline.router,
        web_people.router,
        web_ideas.router,
        web_privacy.router,
        web.router,
        vendor.router,
        web_consent.router,
        web_upload.router,
        web_pwa.router,
        web_devices.router,
    ):
        app.include_router(r)
    app.mount("/static", StaticFiles(directory=web.STATIC), name="static")
    app.mount(MOUNT, create_dav_app(), name="dav")  # WebDAV backup with device passwords

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # One bad request must never take the server down or leak a traceback to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    return app
