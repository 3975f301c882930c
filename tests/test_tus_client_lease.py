"""The sync client's tus uploader against the real app when another request holds the upload's
lease: the server answers 423 with Retry-After, and the client waits as asked, reads the offset
again and finishes (or, while the lease stays held, gives up as a transient failure that the
sync retries later, never as a permanent refusal)."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from camroll.client import tus
from camroll.db.engine import session_scope
from camroll.db.models import Asset, Upload
from camroll.ingest import uploads as svc
from tests.conftest import ROLL, make_user

PHOTO = ROLL / "pigallery2/demo/IMG_8824.jpg"


def _hold_lease(url: str) -> svc.Writer:
    """Another writer (a cut PATCH the server has not noticed yet) takes the lease."""
    with session_scope() as s:
        writer = svc.claim_writer(s, s.get(Upload, url.rstrip("/").rsplit("/", 1)[-1]))
    assert writer is not None
    return writer


def _release(writer: svc.Writer) -> None:
    with session_scope() as s:
        writer.release(s)


def _upload(client: httpx.Client, url: str | None, on_url) -> tus.Outcome:  # type: ignore[no-untyped-def]
    return tus.upload_file(
        client,
        PHOTO,
        checksum=hashlib.sha256(PHOTO.read_bytes()).hexdigest(),
        relative_path=PHOTO.name,
        filetype="image/jpeg",
        resume_url=url,
        on_url=on_url,
        on_progress=lambda _n: None,
    )


def test_the_client_waits_out_a_held_lease_and_finishes(
    app_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.api import uploads as api

    assert PHOTO.is_file(), f"shared roll lacks {PHOTO}"
    monkeypatch.setattr(api, "WAIT_S", 0.3)  # the server's own wait for the lease, shortened
    monkeypatch.setattr(api, "RETRY_AFTER_S", 1)
    monkeypatch.setattr(tus, "LOCKED_TRIES", 2)
    client = app_client
    client.headers["Authorization"] = f"Bearer {make_user('lease@example.org')}"
    urls: list[str] = []
    held: list[svc.Writer] = []
    locked: list[str | None] = []
    release_on_423 = False

    def on_response(r: httpx.Response) -> None:
        if r.status_code == 423:
            locked.append(r.headers.get("Retry-After"))
            if release_on_423:
                _release(held[0])  # the other writer finishes while the client waits

    def on_url(url: str) -> None:
        urls.append(url)
        held.append(_hold_lease(url))  # before the client's first PATCH

    client.event_hooks = {"request": [], "response": [on_response]}

    # Held throughout: two waits as asked, then a transient failure (the sync retries those
    # later), not a RefusedError that would report the file as refused for good.
    # Starlette's TestClient speaks httpx2; `camroll sync` speaks httpx: the same class there.
    from starlette.testclient import httpx as test_httpx

    with pytest.raises(test_httpx.HTTPStatusError) as e:
        _upload(client, None, on_url)
    assert e.value.response.status_code == 423
    assert locked == ["1", "1", "1"]
    with session_scope() as s:
        assert svc.received(s, held[0].upload_id) == 0

    # Resumed while still held; the holder lets go during the client's wait: it finishes.
    locked.clear()
    release_on_423 = True
    outcome = _upload(client, urls[0], on_url)
    assert locked == ["1"]
    assert outcome.status == "created"
    with session_scope() as s:
        asset = s.get(Asset, outcome.asset_id)
        assert asset is not None
        assert asset.checksum == hashlib.sha256(PHOTO.read_bytes()).hexdigest()
        assert asset.size == PHOTO.stat().st_size
