"""Each idea and creation with the scopes it drew on, for the transparency report.

An idea's `scope` is composite ("creations+faces+places"): the scopes its inputs came from, so
revoking any one deletes it (camroll.ideas.media.creation_scope, privacy.retention.scope_matches).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.consent.scopes import SCOPES
from camroll.db.models import Idea


def listing(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Idea).where(Idea.user_id == user_id).order_by(Idea.created_at, Idea.id)
    )
    out = []
    for i in rows:
        scopes = sorted(set(i.scope.split("+")))  # ideas stored before 2026-12 repeat some
        out.append(
            {
                "id": i.id,
                "kind": i.kind,
                "title": i.title,
                "state": i.state,
                "scopes": scopes,
                "scope_titles": " and ".join(SCOPES[s].title if s in SCOPES else s for s in scopes),
                "created_at": i.created_at,
            }
        )
    return out
