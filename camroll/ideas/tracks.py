"""The owner's own music for recaps: uploaded, checked with PyAV (camroll.create.soundtrack
.probe_track), stored encrypted under the owner's key like a photo, listed, chosen for a
recap, deleted.

A track is the owner's media under `creations`: its row is `Derived` with that scope, so the
report lists it, the export and the purge find it, and switching creations off deletes it with
its blob, as it deletes the recaps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.create.soundtrack import BadTrack, estimate_beat, load_track, probe_track
from camroll.db.models import RecapTrack, new_id
from camroll.media.names import clean_name
from camroll.storage.blobs import put_encrypted, read_decrypted
from camroll.storage.workfiles import private_dir

__all__ = [
    "MAX_TRACK_BYTES",
    "BadTrack",
    "TrackTooBig",
    "add_track",
    "delete_track",
    "get_track",
    "list_tracks",
    "track_music",
]

TRACKS_MODEL = ("camroll-tracks", "1")
MAX_TRACK_BYTES = 40 * 1024 * 1024  # a 20-minute track at 256 kbit/s, with room


class TrackTooBig(BadTrack):
    """More bytes than any track a recap could use."""


def track_blob_key(user_id: str, track_id: str) -> str:
    return f"u/{user_id}/tracks/{track_id}"


def add_track(session: Session, user_id: str, name: str, source: BinaryIO) -> RecapTrack:
    """Check the upload (sound that decodes, 5 s to 20 min) and keep it encrypted. Anything
    else raises BadTrack with the reason, and nothing is kept."""
    with private_dir("camroll-track-") as work:
        path = work / "upload"
        with path.open("wb") as out:
            copied = 0
            while chunk := source.read(1 << 20):
                copied += len(chunk)
                if copied > MAX_TRACK_BYTES:
                    raise TrackTooBig(
                        f"this file is too big for a track: at most {MAX_TRACK_BYTES >> 20} MB"
                    )
                out.write(chunk)
        if copied == 0:
            raise BadTrack("this file is empty")
        info = probe_track(path)
        track_id = new_id()
        key = track_blob_key(user_id, track_id)
        with path.open("rb") as f:
            put_encrypted(session, user_id, key, f)
    row = RecapTrack(
        id=track_id,
        user_id=user_id,
        asset_id=None,
        name=clean_name(name, "track"),
        blob_key=key,
        codec=info.codec,
        duration_s=info.duration_s,
        size=copied,
        scope="creations",
        model=TRACKS_MODEL[0],
        model_version=TRACKS_MODEL[1],
    )
    session.add(row)
    session.flush()
    return row


def list_tracks(session: Session, user_id: str) -> list[RecapTrack]:
    q = select(RecapTrack).where(RecapTrack.user_id == user_id)
    return list(session.scalars(q.order_by(RecapTrack.created_at, RecapTrack.id)))


def get_track(session: Session, user_id: str, track_id: str) -> RecapTrack:
    """The owner's track; another owner's (or none) raises LookupError."""
    row = session.scalars(
        select(RecapTrack).where(RecapTrack.id == track_id, RecapTrack.user_id == user_id)
    ).first()
    if row is None:
        raise LookupError("track")
    return row


def delete_track(session: Session, user_id: str, track_id: str) -> None:
    """The track and its blob go; recaps already made with it keep their sound."""
    from camroll.storage import get_store

    row = get_track(session, user_id, track_id)
    get_store().delete(row.blob_key)
    session.delete(row)


@contextmanager
def _plaintext(session: Session, track: RecapTrack) -> Iterator[Path]:
    with private_dir("camroll-track-") as work:
        path = work / "track"
        with path.open("wb") as out:
            for chunk in read_decrypted(session, track.user_id, track.blob_key):
                out.write(chunk)
        yield path


def track_music(session: Session, track: RecapTrack, seconds: float) -> tuple[np.ndarray, float]:
    """The track's first `seconds` of sound (float32 stereo at 48 kHz) and its beat in
    seconds, for `render_recap(track=..., beat=...)`."""
    with _plaintext(session, track) as path:
        pcm = load_track(path, seconds)
    return pcm, estimate_beat(pcm)
