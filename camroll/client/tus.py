"""A small tus 1.0 client on httpx: create, resume from the server's offset, upload in chunks."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

CHUNK = 8 * 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Outcome:
    status: str  # created | duplicate
    asset_id: str | None


# A 423 means another request of ours (a cut one the server has not noticed yet) still holds
# the upload's lease: wait as the server asks, a bounded number of times, then resume.
LOCKED_TRIES = 6
LOCKED_WAIT_MAX_S = 30.0


class RefusedError(Exception):
    """The server said no for a reason retrying will not fix (consent, size, checksum...)."""


def _meta(**fields: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text or r.reason_phrase


def raise_for(r: httpx.Response) -> None:
    if r.status_code >= 500 or r.status_code == 423:
        r.raise_for_status()  # transient (423: still locked after our waits): the caller retries
    if r.status_code >= 400:
        raise RefusedError(f"{r.status_code}: {_detail(r)}")


def retry_after(r: httpx.Response, default: float) -> float:
    """The server's Retry-After in seconds (only the delta-seconds form), capped."""
    value = r.headers.get("Retry-After", "")
    wait = float(value) if value.isdigit() else default
    return min(wait, LOCKED_WAIT_MAX_S)


def upload_file(
    client: httpx.Client,
    path: Path,
    *,
    checksum: str,
    relative_path: str,
    filetype: str,
    resume_url: str | None,
    on_url: Callable[[str], None],
    on_progress: Callable[[int], None],
) -> Outcome:
    """Upload one file, resuming at `resume_url` when given; reports the new URL via `on_url`."""
    size = path.stat().st_size
    url = resume_url
    offset = 0
    if url is not None:
        r = client.head(url, headers=TUS)
        if r.status_code == 404:
            url = None  # expired or finished meanwhile: start over (dedupe catches the latter)
        else:
            raise_for(r)
            offset = int(r.headers["Upload-Offset"])
    if url is None:
        r = client.post(
            "/api/uploads",
            headers={
                **TUS,
                "Upload-Length": str(size),
                "Upload-Metadata": _meta(
                    filename=path.name,
                    filetype=filetype,
                    checksum=checksum,
                    relativePath=relative_path,
                ),
            },
        )
        raise_for(r)
        if r.headers.get("Camroll-Status") == "duplicate":
            return Outcome("duplicate", r.headers.get("Camroll-Asset-Id"))
        if "Camroll-Asset-Id" in r.headers:  # a zero-byte file is complete on creation
            return Outcome(r.headers["Camroll-Status"], r.headers["Camroll-Asset-Id"])
        url = r.headers["Location"]
        on_url(url)
    on_progress(offset)
    locked = 0
    with path.open("rb") as f:
        f.seek(offset)
        while True:
            chunk = f.read(CHUNK)
            r = client.patch(
                url,
                content=chunk,
                headers={
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            waited = r.status_code == 423 and locked < LOCKED_TRIES
            if waited:
                locked += 1
                time.sleep(retry_after(r, default=2.0 * locked))
            if r.status_code == 409 or waited:
                # The server holds a different offset (a cut request finished writing after
                # we re-read it, or the lease holder moved it on): ask again, go on from there.
                head = client.head(url, headers=TUS)
                raise_for(head)
                offset = int(head.headers["Upload-Offset"])
                f.seek(offset)
                continue
            raise_for(r)
            offset = int(r.headers["Upload-Offset"])
            on_progress(offset)
            if "Camroll-Asset-Id" in r.headers:
                return Outcome(r.headers["Camroll-Status"], r.headers["Camroll-Asset-Id"])
            if not chunk:
                raise RefusedError("server did not finish the upload after all bytes were sent")
