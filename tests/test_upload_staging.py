"""Upload staging in the blob store and its single-writer lease in the database.

What is proved, through the upload service on both databases: a writer whose lease lapsed and
was taken over can never make its bytes count (its segment is dropped, the new writer's bytes
are what is read); a lease held by a process that died on this machine is taken at once, one
held by a live writer is not; segments are sealed and named for their place, so a swapped one
fails to decrypt; staged segments whose upload is gone are swept by the periodic cleanup.
"""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import update

from camroll.crypto.stream import DecryptionError
from camroll.db.engine import session_scope
from camroll.db.models import Upload, utcnow
from camroll.ingest import uploads as svc
from camroll.ingest.staging import staging_prefix
from camroll.storage import get_store
from tests.conftest import make_user


@pytest.fixture
def user_id(env: dict) -> str:
    from camroll.accounts import find_user

    make_user("stager@example.org")
    with session_scope() as s:
        return find_user(s, "stager@example.org").id


def _new_upload(user_id: str, length: int) -> str:
    with session_scope() as s:
        upload = svc.create_upload(
            s, user_id, length=length, filename="a.jpg", filetype="image/jpeg",
            checksum=None, device_path=None,
        )  # fmt: skip
        return upload.id


def _claim(upload_id: str) -> svc.Writer | None:
    with session_scope() as s:
        return svc.claim_writer(s, s.get(Upload, upload_id))


def _append(writer: svc.Writer, piece: bytes) -> None:
    with session_scope() as s:
        writer.append(s, piece)


def _staged(upload_id: str) -> bytes:
    with session_scope() as s:
        upload = s.get(Upload, upload_id)
        return b"".join(svc.staging_for(s, upload).chunks(svc.received(s, upload_id)))


def _lapse(upload_id: str) -> None:
    with session_scope() as s:
        s.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(writer_until=utcnow() - timedelta(seconds=1))
        )


def test_a_writer_whose_lease_was_taken_over_never_counts(user_id: str) -> None:
    upload_id = _new_upload(user_id, 12)
    first = _claim(upload_id)
    assert first is not None
    _append(first, b"abcd")
    assert _claim(upload_id) is None  # held: a second request waits

    _lapse(upload_id)  # the first writer stalled past its lease
    second = _claim(upload_id)
    assert second is not None and second.gen > first.gen and second.offset == 4
    with pytest.raises(svc.UploadError) as refused:
        _append(first, b"XXXX")  # it wakes up and writes where the second one will
    assert refused.value.status == 409
    _append(second, b"efgh")
    _append(second, b"ijkl")
    assert _staged(upload_id) == b"abcdefghijkl"
    # The stale writer's object is gone: only the three counted segments are stored.
    keys = list(get_store().keys(staging_prefix(user_id, upload_id)))
    assert len(keys) == 3, keys

    with session_scope() as s:
        svc.staging_for(s, s.get(Upload, upload_id)).remove()
    assert list(get_store().keys(staging_prefix(user_id))) == []

    # A lease held by a process that died on this machine (a crashed server) is taken at once,
    # long before it would lapse; one held by a live process is not.
    upload_id = _new_upload(user_id, 4)
    assert _claim(upload_id) is not None
    child = subprocess.Popen(["true"])  # a process that has exited
    child.wait()
    host = socket.gethostname()
    with session_scope() as s:
        s.execute(
            update(Upload).where(Upload.id == upload_id).values(writer_tag=f"{host}-{child.pid}")
        )
    assert _claim(upload_id) is not None

    with session_scope() as s:  # held by a live process (pid 1) on this machine: not taken
        s.execute(update(Upload).where(Upload.id == upload_id).values(writer_tag=f"{host}-1"))
    assert os.path.exists("/proc/1")
    assert _claim(upload_id) is None


@pytest.mark.backends("sqlite")  # the blob store's side: the database is not the subject
def test_segments_are_sealed_in_place_and_swept_once_their_upload_is_gone(user_id: str) -> None:
    upload_id = _new_upload(user_id, 8)
    writer = _claim(upload_id)
    assert writer is not None
    _append(writer, b"1234")
    _append(writer, b"5678")
    store = get_store()
    first, second = sorted(store.keys(staging_prefix(user_id, upload_id)))
    assert b"1234" not in b"".join(store.get(first))
    # Swap the two segments' contents: each is sealed under its own name, so reading fails.
    a, b = b"".join(store.get(first)), b"".join(store.get(second))
    store.put(first, [b])
    store.put(second, [a])
    with pytest.raises(DecryptionError):
        _staged(upload_id)

    # The periodic cleanup sweeps segments whose upload row is gone, and only those.
    kept_id = _new_upload(user_id, 8)
    kept = _claim(kept_id)
    assert kept is not None
    _append(kept, b"5678")
    with session_scope() as s:  # a worker died between storing the original and this cleanup
        s.delete(s.get(Upload, upload_id))
    with session_scope() as s:
        svc.expire_uploads(s)
    assert list(get_store().keys(staging_prefix(user_id, upload_id))) == []
    assert _staged(kept_id) == b"5678"
