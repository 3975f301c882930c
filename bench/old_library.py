"""The library refresh and ideas pass as they were before they became incremental (commit
f8b3e67), kept callable here so bench/scale.py times the old path beside the new in one run.
Not part of the runtime package. Only the orchestration is copied: the generators, home
inference and people refresh are the package's own (unchanged in substance).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from camroll.analyze.library import refresh_homes
from camroll.analyze.similar import (
    BURST_DISTANCE,
    BURST_SECONDS,
    DUPLICATE_DISTANCE,
    DuplicateGroup,
    SimilarItem,
)
from camroll.consent.gate import is_granted
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    Idea,
    Person,
    new_id,
    utcnow,
)
from camroll.ideas import media
from camroll.ideas.generate import (
    IDEAS_MODEL,
    Library,
    Suggestion,
    _members_hash,
    _render_kind,
    _score,
    birthday_ideas,
    holiday_ideas,
    on_this_day_ideas,
    over_the_years_ideas,
    restyle_ideas,
    smile_ideas,
    theme_ideas,
    trip_ideas,
)

try:
    from camroll import job_runs as tracking
except ImportError:  # before job bookkeeping moved out of camroll.jobs
    from camroll.jobs import tracking  # type: ignore[no-redef]
from camroll.people.assign import refresh_people
from camroll.pipeline.step import run_steps

log = logging.getLogger(__name__)


def old_refresh_library(user_id: str) -> None:
    with session_scope() as session:
        if not is_granted(session, user_id, "cloud_processing"):
            return
        if is_granted(session, user_id, "places"):
            refresh_homes(session, user_id)
        if is_granted(session, user_id, "content"):
            old_refresh_duplicates(session, user_id)
        if is_granted(session, user_id, "faces"):
            refresh_people(session, user_id, None)


def old_refresh_duplicates(session: Session, user_id: str) -> None:
    """Group near-duplicates and bursts; the best shot of each group is marked."""
    rows = session.execute(
        select(AssetQuality, Asset.sort_at)
        .join(Asset, Asset.id == AssetQuality.asset_id)
        .where(AssetQuality.user_id == user_id)
    ).all()
    items = [SimilarItem(q.asset_id, q.phash, at, q.score) for q, at in rows]
    session.execute(
        update(AssetQuality)
        .where(AssetQuality.user_id == user_id)
        .values(duplicate_group=None, is_best=True)
    )
    by_asset = {q.asset_id: q for q, _ in rows}
    for group in group_near_duplicates(items):
        gid = new_id()
        for member in group.members:
            q = by_asset[member]
            q.duplicate_group, q.is_best = gid, member == group.best
    session.flush()


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.burst = [False] * n

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int, burst: bool) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
        self.burst[ra] = self.burst[ra] or self.burst[rb] or burst


def _seconds_apart(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    if (a.tzinfo is None) != (b.tzinfo is None):
        a, b = a.replace(tzinfo=None), b.replace(tzinfo=None)
    return abs((a - b).total_seconds())


def group_near_duplicates(items: list[SimilarItem]) -> list[DuplicateGroup]:
    """Groups of two or more near-identical photos, each naming its highest-quality member.

    An edge joins two photos when their hashes are within DUPLICATE_DISTANCE bits, or within
    BURST_DISTANCE bits when both were taken 1..BURST_SECONDS apart. A group with any burst edge
    is a "burst"; copies with the same (or unknown) capture time are "duplicate"s.
    """
    n = len(items)
    if n < 2:
        return []
    hashes = np.array([int(it.phash, 16) for it in items], dtype=np.uint64)
    uf = _UnionFind(n)
    for i in range(n - 1):
        # Vectorised popcount against all later items: 10k photos take about a second.
        dist = np.bitwise_count(hashes[i + 1 :] ^ hashes[i])
        for off in np.nonzero(dist <= BURST_DISTANCE)[0]:
            j = i + 1 + int(off)
            d = int(dist[off])
            apart = _seconds_apart(items[i].taken_at, items[j].taken_at)
            if apart is not None and 0 < apart <= BURST_SECONDS:
                uf.union(i, j, burst=True)
            elif d <= DUPLICATE_DISTANCE:
                uf.union(i, j, burst=False)

    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(uf.find(i), []).append(i)
    out: list[DuplicateGroup] = []
    for root, idx in groups.items():
        if len(idx) < 2:
            continue
        best = max(idx, key=lambda k: items[k].quality)  # first of equals wins: stable
        kind = "burst" if uf.burst[root] else "duplicate"
        out.append(DuplicateGroup(items[best].asset_id, [items[k].asset_id for k in idx], kind))
    return out


def old_load_library(session: Session, user_id: str) -> Library:
    assets = {
        a.id: a
        for a in session.scalars(
            select(Asset).where(Asset.user_id == user_id, Asset.status == "ready")
        )
    }
    metas = {
        m.asset_id: m
        for m in session.scalars(select(AssetMetadata).where(AssetMetadata.user_id == user_id))
    }
    places = {
        p.asset_id: p
        for p in session.scalars(select(AssetPlace).where(AssetPlace.user_id == user_id))
    }
    tags: dict[str, dict[str, float]] = defaultdict(dict)
    for t in session.scalars(select(AssetTag).where(AssetTag.user_id == user_id)):
        tags[t.asset_id][t.label] = max(t.score, tags[t.asset_id].get(t.label, 0.0))
    quality = {
        q.asset_id: q.score
        for q in session.scalars(select(AssetQuality).where(AssetQuality.user_id == user_id))
    }
    return Library(assets, metas, places, tags, quality)


def old_suggestions(session: Session, user_id: str, today: date | None = None) -> list[Suggestion]:
    lib = old_load_library(session, user_id)
    if not lib.assets:
        return []
    today = today or datetime.now(UTC).date()
    return [
        *trip_ideas(session, lib, user_id),
        *theme_ideas(session, lib),
        *birthday_ideas(session, lib, user_id),
        *holiday_ideas(session, lib),
        *on_this_day_ideas(session, lib, today),
        *smile_ideas(session, lib, user_id),
        *over_the_years_ideas(session, lib, user_id),
        *restyle_ideas(session, lib, user_id, faces=True),  # the old code read faces unasked
    ]


def old_refresh_ideas(user_id: str, today: date | None = None) -> int:
    """Create or update this owner's ideas; returns how many were (re)rendered. Under the step
    contract like the new path (its renders read faces only as `may_use` answers)."""
    with session_scope() as session:
        done = run_steps(session, user_id, [_OldIdeasStep(today)], user_id)[0]
        return done.value if done.ran else 0


class _OldIdeasStep:
    """A Step (camroll.pipeline.step), not a BaseStep: bench steps stay out of the product's
    list of steps (tests/test_steps_consent.py)."""

    name = "old ideas"
    scope = "creations"
    uses = ("faces",)
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def __init__(self, today: date | None) -> None:
        self.today = today

    def able_to_run(self, session: Session, subject: str) -> bool:
        return True

    def run(self, session: Session, subject: str) -> int:
        return _old_generate(session, subject, self.today)

    def cleanup(self, session: Session, subject: str) -> None:
        return None


def _old_generate(session: Session, user_id: str, today: date | None) -> int:
    existing = {
        i.fingerprint: i for i in session.scalars(select(Idea).where(Idea.user_id == user_id))
    }
    lib = old_load_library(session, user_id)
    named = {
        a
        for (a,) in session.execute(
            select(Face.asset_id)
            .join(Person, Person.id == Face.person_id)
            .where(Face.user_id == user_id, Person.name.is_not(None))
        )
    }
    dismissed = Counter(i.kind for i in existing.values() if i.state == "dismissed")
    rendered = 0
    todo = []
    for s in old_suggestions(session, user_id, today):
        idea = existing.get(s.fingerprint)
        members = _members_hash(s.assets)
        if idea is not None and (idea.state != "suggested" or idea.members_hash == members):
            # Dismissed stays gone, accepted stays as saved, unchanged stays; but what it
            # drew on is recorded (ideas made before scopes were recorded said "creations").
            drew = media.creation_scope(session, _render_kind(s), s.assets, s.drew_on)
            idea.scope = "+".join(sorted({*idea.scope.split("+"), *drew.split("+")}))
            continue
        todo.append((s, idea, members))
    session.commit()  # at most scopes written: ends the read transaction
    for s, idea, members in todo:
        # Render first, with no write pending: on SQLite a write transaction held through a
        # 30 s video encode would lock every other writer out.
        try:
            data, mime = s.render(session, s.assets) if s.render else (None, None)
        except Exception as e:  # one idea that cannot render must not hold back the rest
            session.rollback()
            log.exception("idea %s for %s failed to render", s.kind, user_id)
            tracking.record_failure("idea_render", user_id, s.fingerprint, f"{s.kind}: {e!r}")
            continue
        session.rollback()
        values = {
            "kind": s.kind,
            "title": s.title,
            "reason": s.reason,
            "confidence": s.confidence,
            "score": _score(s, lib, named, dismissed),
            "member_ids": json.dumps([a.id for a in s.assets]),
            "members_hash": members,
            "asset_id": s.assets[0].id if s.assets else None,
            "params": json.dumps(s.params),
            "updated_at": utcnow(),
            "scope": media.creation_scope(session, _render_kind(s), s.assets, s.drew_on),
        }
        if idea is None:
            idea = Idea(
                user_id=user_id,
                model=IDEAS_MODEL[0],
                model_version=IDEAS_MODEL[1],
                fingerprint=s.fingerprint,
                state="suggested",
                **values,
            )
            session.add(idea)
        else:
            for k, v in values.items():
                setattr(idea, k, v)
        session.flush()
        if data is not None:
            idea.blob_key = media.store_media(session, user_id, idea.id, data)
            idea.media_mime = mime
            rendered += 1
        session.commit()  # each rendered idea is kept even if a later one fails
        tracking.clear_failure("idea_render", user_id, s.fingerprint)
    log.info("ideas for %s: %d rendered", user_id, rendered)
    return rendered
