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
from camroll.pipeline.step import BaseStep, run_steps
from camroll.search.index import index_asset

log = logging.getLogger(__name__)

# The scopes that analysis serves; granting one of them (re)analyses the library for it.
ANALYSIS_SCOPES = frozenset(s.scope for s in STEPS)


def steps_for(scopes: set[str] | None) -> list[Step]:
    return [s for s in STEPS if scopes is None or s.scope in scopes or s.reruns_for & scopes]


def analyze_asset(asset_id: str, scopes: set[str] | None = None) -> str:
    """Run every step that may run now; returns "done", "skipped" or "missing".

    The runner (run_steps) is the only consent gate: it asks each step's scope right before
    the step runs, so a scope revoked after the job was queued, or while an earlier step ran,
    stops the steps that need it. Without cloud_processing every step is refused, the index
    step included."""
    with session_scope() as session, ExitStack() as stack:
        asset = session.get(Asset, asset_id)
        if asset is None:
            return "missing"
        meta = session.scalars(
            select(AssetMetadata).where(AssetMetadata.asset_id == asset.id)
        ).first()
        subject = Subject(asset=asset, meta=meta, image=None)
        video: list[Path] = []

        def video_path() -> Path:
            # Lazily: only the faces step of a video needs the original's frames.
            if not video:
                from camroll.ingest.process import plaintext_copy

                video.append(stack.enter_context(plaintext_copy(session, asset)))
            return video[0]

        # Decoded only when a step that runs asks for it.
        subject.load_image = lambda: preview_image(session, asset)
        subject.video_path = video_path if asset.kind == "video" else None
        user_id = asset.user_id
        done = run_steps(session, user_id, [*steps_for(scopes), INDEX], subject)
    if subject.new_faces:
        with session_scope() as session:  # the runner asks again: faces not revoked meanwhile
            run_steps(session, user_id, [JoinPeopleStep()], (user_id, subject.new_faces))
    return "done" if any(o.ran for o in done if o.step != INDEX.name) else "skipped"


class IndexStep(BaseStep):
    """The search index follows what the steps wrote; with no analysis scope on, a ready photo
    is still findable by its date (while cloud_processing is on)."""

    name = "index"
    scope = "cloud_processing"
    reads = ("assets", "asset_metadata", "asset_tags", "asset_places", "faces", "people")
    writes = ("search_terms",)

    def able_to_run(self, session: Session, subject: Subject) -> bool:
        return subject.asset.status == "ready"

    def run(self, session: Session, subject: Subject) -> None:
        index_asset(session, subject.asset)


INDEX = IndexStep()


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
