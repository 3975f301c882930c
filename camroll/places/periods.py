"""Stored home periods as the transparency report shows them (kept out of `privacy/report.py`,
which finds derived tables only through `derived_models()` and names none)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import HomePeriodRow


def where_you_lived(session: Session, user_id: str) -> list[dict[str, Any]]:
    """Where the owner lived when, as camroll inferred it, oldest first: derived location data,
    held under `places` and deleted with it."""
    rows = session.scalars(
        select(HomePeriodRow)
        .where(HomePeriodRow.user_id == user_id)
        .order_by(HomePeriodRow.start_date, HomePeriodRow.id)
    )
    return [
        {
            "place": p.label,
            "latitude": p.latitude,
            "longitude": p.longitude,
            "start_date": p.start_date,
            "end_date": p.end_date,
            "days": p.days,
            "share": p.share,
            "scope": p.scope,
            "model": p.model,
            "version": p.model_version,
            "created_at": p.created_at,
        }
        for p in rows
    ]
