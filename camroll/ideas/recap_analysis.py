"""A recap's analysis, computed once per moment and shared by every format made of it: each
clip's chosen segment (scene detection and interest scores, faces included where the owner
agreed to them) and the music's mood. Keyed by the members, the face consent and the analysis
version, so a change to any of them analyses again.

The row is `Derived` with the scopes its inputs came from (like the recap itself), so revoking
any of them deletes it. It is written after the render, so no write is pending while a recap
encodes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camroll.db.models import RecapAnalysis, new_id

__all__ = ["ANALYSIS_MODEL", "Analysis", "analysis_key", "cached_analysis", "store_analysis"]

# Bump the version when clip scoring (camroll.create.clips) or the mood choice changes.
ANALYSIS_MODEL = ("camroll-recap-analysis", "1")


@dataclass(frozen=True)
class Analysis:
    segments: dict[str, tuple[float, float]]  # video asset id -> (start, length) in seconds
    mood: str
    seed: int


def analysis_key(asset_ids: list[str], faces: bool) -> str:
    raw = json.dumps([*ANALYSIS_MODEL, sorted(asset_ids), faces])
    return hashlib.sha256(raw.encode()).hexdigest()


def cached_analysis(session: Session, user_id: str, key: str) -> Analysis | None:
    row = session.scalars(
        select(RecapAnalysis).where(RecapAnalysis.user_id == user_id, RecapAnalysis.key == key)
    ).first()
    if row is None:
        return None
    data = json.loads(row.payload)
    segments = {k: (float(a), float(b)) for k, (a, b) in data["segments"].items()}
    return Analysis(segments, str(data["mood"]), int(data["seed"]))


def store_analysis(
    session: Session, user_id: str, key: str, analysis: Analysis, first_asset: str, scope: str
) -> None:
    payload = json.dumps(
        {"segments": analysis.segments, "mood": analysis.mood, "seed": analysis.seed}
    )
    row = RecapAnalysis(
        id=new_id(),
        user_id=user_id,
        asset_id=first_asset,
        key=key,
        payload=payload,
        scope=scope,
        model=ANALYSIS_MODEL[0],
        model_version=ANALYSIS_MODEL[1],
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        pass  # another render of the same moment stored it first: the same analysis
