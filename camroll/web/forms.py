"""Guards for the web app's form posts."""

from __future__ import annotations

from fastapi import HTTPException, Request


def refuse_cross_site(request: Request) -> None:
    """A form post from another site is refused (403): the session cookie is SameSite=Lax,
    and browsers also say where a request came from (Sec-Fetch-Site), so both must agree."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "only camroll's own pages can do this")
