"""The one step contract: the runner asks the consent gate before a step runs, so a step whose
scope is not granted (or was revoked after the job was queued) writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select


@pytest.mark.backends("sqlite")  # the gate reads the same rows on both; the postgres run adds ~5 s
def test_the_runner_refuses_a_step_whose_scope_is_not_granted(env: dict) -> None:
    from camroll.accounts import create_user
    from camroll.analyze.library import LIBRARY_STEPS, ReclusterStep, refresh_library
    from camroll.analyze.run import JoinPeopleStep, analyze_asset
    from camroll.analyze.steps import STEPS, PlacesStep, Subject
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, AssetMetadata, AssetPlace
    from camroll.ideas.generate import IdeasStep, refresh_ideas
    from camroll.ingest.process import INGEST, process_asset
    from camroll.pipeline.step import Step, run_steps

    # Every stage moved onto the contract states it in full.
    stages = [
        INGEST,
        *STEPS,
        JoinPeopleStep(),
        *LIBRARY_STEPS,
        ReclusterStep(),
        IdeasStep(None, None),
    ]
    for step in stages:
        assert isinstance(step, Step) and step.scope and step.writes, step

    with session_scope() as s:
        user = create_user(s, "steps@example.org")
        set_scopes(s, user.id, {"cloud_processing": True}, client="test")
        asset = Asset(
            user_id=user.id, checksum="c" * 64, size=1, filename="berkeley.jpg",
            mime="image/jpeg", kind="image", status="ready", sort_at=datetime.now(UTC),
        )  # fmt: skip
        s.add(asset)
        s.flush()
        meta = AssetMetadata(
            user_id=user.id, asset_id=asset.id, scope="cloud_processing", model="test",
            model_version="1", latitude=37.8716, longitude=-122.2727,
        )  # fmt: skip
        s.add(meta)
        s.flush()
        subject = Subject(asset=asset, meta=meta, image=None)
        places = [PlacesStep()]

        def place_rows() -> list[AssetPlace]:
            return list(s.scalars(select(AssetPlace).where(AssetPlace.asset_id == asset.id)))

        # Places never granted: refused for consent, nothing written.
        (got,) = run_steps(s, user.id, places, subject)
        assert (got.ran, got.refused) == (False, "consent") and place_rows() == []

        set_scopes(s, user.id, {"places": True}, client="test")
        (got,) = run_steps(s, user.id, places, subject)
        assert got.ran, got
        (row,) = place_rows()
        assert row.city == "Berkeley" and row.scope == "places"

        # Revoked after the job was queued (same subject, same step objects): refused again,
        # also when only cloud_processing goes off.
        set_scopes(s, user.id, {"cloud_processing": False}, client="test")
        s.query(AssetPlace).delete()
        (got,) = run_steps(s, user.id, places, subject)
        assert (got.ran, got.refused) == (False, "consent") and place_rows() == []
        pending = Asset(
            user_id=user.id, checksum="d" * 64, size=1, filename="queued.jpg",
            sort_at=datetime.now(UTC),
        )  # fmt: skip
        s.add(pending)
        s.flush()
        user_id, queued, ready = user.id, pending.id, asset.id

    # The stages' own jobs, queued before the opt-out, run now and do nothing.
    assert process_asset(queued) == "skipped"
    assert analyze_asset(ready) == "skipped"
    assert refresh_library(user_id) == "skipped"
    assert refresh_ideas(user_id) == 0
    with session_scope() as s:
        assert s.get(Asset, queued).status == "pending"
