"""Search by description through the owner's CLIP image embeddings, held in the per-owner
vector index (`camroll.vectors.index`); a scan of the rows is the fallback when the index
cannot take them (vectors of another size under one model name)."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from camroll.db.models import AssetEmbedding
from camroll.vectors.index import INDEXES, Source

log = logging.getLogger(__name__)


def _of_model(user_id: str, name: str, version: str) -> tuple:
    return (
        AssetEmbedding.user_id == user_id,
        AssetEmbedding.model == name,
        AssetEmbedding.model_version == version,
    )


@cache
def clip_vectors(name: str, version: str) -> Source:
    """The image embeddings one CLIP model made (another model's live in another space)."""

    def state(session: Session, user_id: str) -> tuple[int, datetime | None]:
        count, newest = session.execute(
            select(func.count(), func.max(AssetEmbedding.created_at)).where(
                *_of_model(user_id, name, version)
            )
        ).one()
        return int(count or 0), newest

    def rows(
        session: Session, user_id: str, since: datetime | None
    ) -> list[tuple[str, bytes, datetime]]:
        q = select(AssetEmbedding.asset_id, AssetEmbedding.vector, AssetEmbedding.created_at).where(
            *_of_model(user_id, name, version)
        )
        if since is not None:
            q = q.where(AssetEmbedding.created_at >= since)
        return [(a, v, c) for a, v, c in session.execute(q)]

    return Source(f"clip:{name}:{version}", "ip", state, rows)


def clip_similarities(
    session: Session, user_id: str, name: str, version: str, text: np.ndarray, floor: float
) -> dict[str, float]:
    """asset_id -> cosine with the text embedding `text`, for the photos above `floor`."""
    source = clip_vectors(name, version)
    try:
        index = INDEXES.get(session, user_id, source)
    except ValueError as e:
        log.warning("CLIP vectors of %s not indexable (%s): scanning them", user_id, e)
        return _scan(session, user_id, source, text, floor)
    return dict(index.within(text, floor)[0])


def _scan(
    session: Session, user_id: str, source: Source, text: np.ndarray, floor: float
) -> dict[str, float]:
    out: dict[str, float] = {}
    for asset_id, blob, _ in source.rows(session, user_id, None):
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape == text.shape and (s := float(vec @ text)) > floor:
            out[asset_id] = s
    return out
