"""Analysing one asset: faces, then tags and quality, then place, each within its scope.

Photos are analysed from their stored preview (upright, sRGB, at most `preview_px`), which is
what a person sees and saves decoding the original again. Videos are decrypted to a private temp
file only when a step needs frames.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.analyze.steps import STEPS, Step, Subject
from camroll.db.engine import session_scope
from camroll.db.models import Asset, AssetMetadata
from camroll.media.previews import preview_image
from camroll.pipeline.step import BaseStep, admit, execute, granted, run_steps
from camroll.search.index import index_asset

log = logging.getLogger(__name__)

# The scopes that analysis serves; granting one of them (re)analyses the library for it.
ANALYSIS_SCOPES = frozenset(s.scope for s in STEPS)


def steps_for(scopes: set[str] | None) -> list[Step]:
    return [s for s in STEPS if scopes is None or s.scope in scopes or s.reruns_for & scopes]


def analyze_asset(asset_id: str, scopes: set[str] | None = None) -> str:
    """Run every step that may run now; returns "done", "skipped" or "missing"."""
    with session_scope() as session, ExitStack() as stack:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return "missing"
        if not granted(session, asset.user_id, "cloud_processing"):
            return "skipped"
        meta = session.scalars(
            select(AssetMetadata).where(AssetMetadata.asset_id == asset.id)
        ).first()
        subject = Subject(asset=asset, meta=meta, image=None)
        # Consent is asked here, once per step, when the job runs (not when it was queued).
        steps = admit(session, asset.user_id, steps_for(scopes), subject)
        if not steps:
            if asset.status == "ready":  # still findable by its date
                index_asset(session, asset)
            return "skipped"
        video: list[Path] = []

        def video_path() -> Path:
            # Lazily: only the faces step of a video needs the original's frames.
            if not video:
                from camroll.ingest.process import plaintext_copy

                video.append(stack.enter_context(plaintext_copy(session, asset)))
            return video[0]

        subject.image = preview_image(session, asset)  # decoded only when a step will run
        subject.video_path = video_path if asset.kind == "video" else None
        if "faces" not in {s.scope for s in steps}:
            subject.faces_found = _known_faces(session, asset.id)
        for step in steps:
            execute(session, step, subject)
            session.flush()
        index_asset(session, asset)  # the search index follows what the steps wrote
        user_id = asset.user_id
    if subject.new_faces:
        with session_scope() as session:  # the runner asks again: faces not revoked meanwhile
            run_steps(session, user_id, [JoinPeopleStep()], (user_id, subject.new_faces))
    return "done"


class JoinPeopleStep(BaseStep):
    """New usable faces join people, in a short transaction of its own after the analysis
    commits (it locks the owner's people; holding that through tagging would serialise workers)."""

    name = "join_people"
    scope = "faces"
    reads = ("faces", "face_embeddings", "people")
    writes = ("faces.person_id", "people")

    def run(self, session: Session, subject: tuple[str, list[str]]) -> None:
        from camroll.people.assign import assign_new_faces

        assign_new_faces(session, *subject)


def _known_faces(session: Session, asset_id: str) -> int:
    from sqlalchemy import func

    from camroll.db.models import Face

    return session.scalar(select(func.count()).where(Face.asset_id == asset_id)) or 0
