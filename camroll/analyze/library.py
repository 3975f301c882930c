"""The library-wide part of analysis: what needs all of an owner's photos at once (home areas,
near-duplicate groups, people's covers), run after each batch of per-asset analysis.

After a batch the work is incremental: only the batch's photos are looked up against the
library (near-duplicates through the owner's pHash index and a capture-time window), only their
place rows get a distance from home, and only the people whose faces they hold are refreshed.
A full pass (home areas re-inferred, every group and distance rewritten) runs at most daily, or
when the library has grown by a tenth since the last one: amortised O(1) per photo.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from camroll.consent.gate import owners_granting
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    Face,
    HomeLocation,
    HomePeriodRow,
    JobRun,
    LibraryState,
    new_id,
    utcnow,
)
from camroll.people.assign import recluster_user, refresh_people
from camroll.pipeline.step import BaseStep, run_steps

if TYPE_CHECKING:
    from camroll.analyze.similar import HashIndex, SimilarItem
    from camroll.places.home import Home, HomePeriod

log = logging.getLogger(__name__)
HOMES_MODEL = ("camroll-home-inference", "1")
HOME_PERIODS_MODEL = ("camroll-home-periods", "1")
# A full pass at most this often, or when the library grew by this share since the last one.
FULL_EVERY = timedelta(days=1)
FULL_GROWTH = 0.1
# Jobs finish on several workers: a batch is read from a little before the last refresh began,
# so work that ended while it ran is taken next time (doing it twice changes nothing).
WATERMARK_SLACK = timedelta(seconds=5)


def library_state(session: Session, user_id: str) -> LibraryState:
    state = session.get(LibraryState, user_id)
    if state is None:
        try:
            with session.begin_nested():  # another worker may insert it first: then use theirs
                session.add(LibraryState(user_id=user_id, full_size=0))
        except IntegrityError:
            pass
        state = session.get(LibraryState, user_id)
    assert state is not None
    return state


def analysed_since(session: Session, user_id: str, since: datetime | None) -> list[str] | None:
    """The assets whose analysis ended after `since` (None: no watermark yet)."""
    if since is None:
        return None
    return list(
        session.scalars(
            select(JobRun.subject_id).where(
                JobRun.user_id == user_id,
                JobRun.task == "analyze",
                JobRun.updated_at >= since - WATERMARK_SLACK,
                JobRun.state.in_(("done", "failed")),
            )
        )
    )


def library_size(session: Session, user_id: str) -> int:
    return (
        session.scalar(
            select(func.count()).where(Asset.user_id == user_id, Asset.status == "ready")
        )
        or 0
    )


def planner_statistics(session: Session) -> None:
    """Refresh SQLite's planner statistics (PostgreSQL's autovacuum keeps its own). Without
    them SQLite guesses ten rows for any `user_id = ?` and reads an owner's whole table instead
    of the batch's twenty rows by primary key. Sampled, so it costs about the same at any size."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(text("PRAGMA analysis_limit=1000"))
    for table in ("assets", "asset_quality", "asset_places", "asset_metadata", "faces"):
        session.execute(text(f"ANALYZE {table}"))


def needs_full(state: LibraryState, batch: list[str] | None, now: datetime) -> bool:
    """A full pass is due daily, or once the photos analysed since the last one (counted by the
    batches in `state.grown`, so nothing counts the library) reach a tenth of it. A photo
    re-analysed or taken twice within WATERMARK_SLACK counts again: a full pass comes a little
    early, never late."""
    if batch is None or state.full_at is None or now - state.full_at >= FULL_EVERY:
        return True
    return (state.grown or 0) + len(batch) >= FULL_GROWTH * max(state.full_size, 1)


@dataclass
class LibraryBatch:
    """What a library step looks at: an owner's batch of newly analysed assets, or (asset_ids
    None) the whole library in a full pass."""

    user_id: str
    asset_ids: list[str] | None


class HomesStep(BaseStep):
    name = "homes"
    scope = "places"
    reads = ("asset_metadata (GPS, local time)", "asset_places")
    writes = ("home_locations", "home_periods", "asset_places.distance_from_home_km")

    def run(self, session: Session, subject: LibraryBatch) -> None:
        if subject.asset_ids is None:
            refresh_homes(session, subject.user_id)
        else:
            place_distances(session, subject.user_id, subject.asset_ids)


class DuplicatesStep(BaseStep):
    name = "duplicates"
    scope = "content"
    reads = ("asset_quality (pHash, score)", "asset_metadata (capture time)")
    writes = ("asset_quality.duplicate_group", "asset_quality.is_best")

    def run(self, session: Session, subject: LibraryBatch) -> None:
        if subject.asset_ids is None:
            refresh_duplicates(session, subject.user_id)
        else:
            add_to_duplicates(session, subject.user_id, subject.asset_ids)


class PeopleStep(BaseStep):
    name = "people"
    scope = "faces"
    reads = ("faces",)
    writes = ("people (face counts, covers)",)

    def run(self, session: Session, subject: LibraryBatch) -> None:
        ids = subject.asset_ids
        people = None if ids is None else people_of(session, subject.user_id, ids)
        # After a batch only its photos' faces are new: covers are compared with theirs.
        refresh_people(session, subject.user_id, people, ids)


class ReclusterStep(BaseStep):
    name = "recluster"
    scope = "faces"
    reads = ("face_embeddings", "people")
    writes = ("faces.person_id", "people")

    def run(self, session: Session, subject: str) -> None:
        stats = recluster_user(session, subject)
        log.info("reclustered %s: %s", subject, stats)


LIBRARY_STEPS = (HomesStep(), DuplicatesStep(), PeopleStep())


def refresh_library(user_id: str, full: bool | None = None) -> str:
    """The library refresh after a batch: "batch" (incremental), "full", or "skipped" without
    consent. `full` forces one or the other; by default a full pass runs when due."""
    with session_scope() as session:
        (done,) = run_steps(session, user_id, [RefreshStep(full)], user_id)
        return str(done.value) if done.ran else "skipped"


class RefreshStep(BaseStep):
    """The refresh as a whole (its watermark) needs cloud_processing; each part then runs only
    while its own scope is granted (the runner asks for both)."""

    name = "refresh"
    scope = "cloud_processing"
    reads = ("job_runs", "library_state")
    writes = ("library_state",)

    def __init__(self, full: bool | None) -> None:
        self.full = full

    def run(self, session: Session, user_id: str) -> str:
        state = library_state(session, user_id)
        started = utcnow()
        batch = analysed_since(session, user_id, state.refreshed_until)
        full = needs_full(state, batch, started) if self.full is None else self.full
        whole = full or batch is None
        subject = LibraryBatch(user_id, None if whole else batch)
        run_steps(session, user_id, LIBRARY_STEPS, subject)
        if whole:  # only a full pass counts the library (it reads all of it anyway)
            state.full_at, state.full_size = started, library_size(session, user_id)
            state.grown = 0
            planner_statistics(session)
        else:
            state.grown = (state.grown or 0) + len(batch or ())
        state.refreshed_until = started
        return "full" if whole else "batch"


def _local_date(meta: AssetMetadata) -> date | None:
    if meta.taken_at_local:
        try:
            return datetime.fromisoformat(meta.taken_at_local).date()
        except ValueError:
            return None
    return None


def refresh_homes(session: Session, user_id: str) -> None:
    """Infer home areas from where photos are taken on the most days; set every place's
    distance from the nearest home."""
    from camroll.places.home import GeoPoint, distance_from_home, infer_home_periods, infer_homes

    metas = list(
        session.scalars(
            select(AssetMetadata)
            .join(Asset, Asset.id == AssetMetadata.asset_id)
            .where(
                AssetMetadata.user_id == user_id,
                Asset.status == "ready",
                AssetMetadata.latitude.is_not(None),
                AssetMetadata.longitude.is_not(None),
            )
        )
    )
    points = [GeoPoint(m.latitude, m.longitude, _local_date(m), _local_hour(m)) for m in metas]  # type: ignore[arg-type]
    homes = infer_homes(points) if points else []
    _store_periods(session, user_id, infer_home_periods(points))
    session.query(HomeLocation).filter(HomeLocation.user_id == user_id).delete()
    for h in homes:
        session.add(
            HomeLocation(
                id=new_id(),
                user_id=user_id,
                asset_id=None,
                scope="places",
                model=HOMES_MODEL[0],
                model_version=HOMES_MODEL[1],
                latitude=h.latitude,
                longitude=h.longitude,
                label=_home_label(h.latitude, h.longitude),
                days=h.days,
                photos=h.photos,
                share=h.share,
            )
        )
    by_asset = {m.asset_id: m for m in metas}
    for place in session.scalars(select(AssetPlace).where(AssetPlace.user_id == user_id)):
        m = by_asset.get(place.asset_id)
        d = distance_from_home(m.latitude, m.longitude, homes) if m and homes else None  # type: ignore[arg-type]
        place.distance_from_home_km = round(d, 2) if d is not None else None
    session.flush()


def _local_hour(meta: AssetMetadata) -> int | None:
    if meta.taken_at_local:
        try:
            return datetime.fromisoformat(meta.taken_at_local).hour
        except ValueError:
            return None
    return None


def _store_periods(session: Session, user_id: str, periods: list[HomePeriod]) -> None:
    """Replace the owner's home periods (where they lived when), shown in the report."""
    session.query(HomePeriodRow).filter(HomePeriodRow.user_id == user_id).delete()
    for p in periods:
        session.add(
            HomePeriodRow(
                id=new_id(),
                user_id=user_id,
                asset_id=None,
                scope="places",
                model=HOME_PERIODS_MODEL[0],
                model_version=HOME_PERIODS_MODEL[1],
                latitude=p.latitude,
                longitude=p.longitude,
                label=_home_label(p.latitude, p.longitude),
                start_date=p.start.isoformat(),
                end_date=p.end.isoformat(),
                days=p.days,
                share=p.share,
            )
        )


def _home_label(lat: float, lon: float) -> str | None:
    from camroll.places.geocode import reverse_geocode

    place = reverse_geocode([(lat, lon)])[0]
    return place.label() if place else None


def _homes(session: Session, user_id: str) -> list[Home]:
    from camroll.places.home import Home

    return [
        Home(h.latitude, h.longitude, h.days, h.photos, h.share)
        for h in session.scalars(select(HomeLocation).where(HomeLocation.user_id == user_id))
    ]


def place_distances(session: Session, user_id: str, asset_ids: list[str]) -> None:
    """Distance from the current homes for these photos' places only."""
    from camroll.places.home import distance_from_home

    homes = _homes(session, user_id)
    if not asset_ids:
        return
    rows = session.execute(
        select(AssetPlace, AssetMetadata)
        .join(AssetMetadata, AssetMetadata.asset_id == AssetPlace.asset_id)
        .where(AssetPlace.user_id == user_id, AssetPlace.asset_id.in_(asset_ids))
    ).all()
    for place, m in rows:
        d = (
            distance_from_home(m.latitude, m.longitude, homes)
            if homes and m.latitude is not None and m.longitude is not None
            else None
        )
        place.distance_from_home_km = round(d, 2) if d is not None else None
    session.flush()


def people_of(session: Session, user_id: str, asset_ids: list[str]) -> set[str]:
    """The people whose faces are in these photos."""
    if not asset_ids:
        return set()
    return set(
        session.scalars(
            select(Face.person_id)
            .where(
                Face.user_id == user_id,
                Face.asset_id.in_(asset_ids),
                Face.person_id.is_not(None),
            )
            .distinct()
        )
    )


def refresh_duplicates(session: Session, user_id: str) -> None:
    """Group near-duplicates and bursts over the whole library; the best shot of each group is
    marked (the full pass)."""
    from camroll.analyze.similar import SimilarItem, group_near_duplicates, hash_index

    rows = session.execute(
        select(AssetQuality, Asset.sort_at)
        .join(Asset, Asset.id == AssetQuality.asset_id)
        .where(AssetQuality.user_id == user_id)
        .order_by(AssetQuality.asset_id)
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
    hash_index(session, user_id)  # ready for the batches that follow in this process


def _candidates(
    session: Session, user_id: str, index: HashIndex, q: AssetQuality, at: datetime
) -> list[tuple[AssetQuality, datetime]]:
    """Rows that may join `q`: a hash within DUPLICATE_DISTANCE bits (from the owner's hash
    index), or a capture time within BURST_SECONDS (bursts, which `edge_kind` then checks
    against BURST_DISTANCE). Asking the index for BURST_DISTANCE instead read rows that cannot
    join: unrelated hashes that far apart are ~1 in 4,000, so ~14 per photo at 50k."""
    from camroll.analyze.similar import BURST_SECONDS, DUPLICATE_DISTANCE

    near = index.within(q.phash, DUPLICATE_DISTANCE)
    window = timedelta(seconds=BURST_SECONDS + 1)
    by_hash = select(AssetQuality, Asset.sort_at).join(Asset, Asset.id == AssetQuality.asset_id)
    # The index may hold a hash since replaced or deleted: the rows read here are the truth.
    rows = (
        session.execute(
            by_hash.where(AssetQuality.user_id == user_id, AssetQuality.asset_id.in_(near))
        ).all()
        if near
        else []
    )
    rows += session.execute(
        by_hash.where(
            Asset.user_id == user_id,
            Asset.sort_at >= at - window,
            Asset.sort_at <= at + window,
        )
    ).all()
    return [(c, c_at) for c, c_at in rows]


def add_to_duplicates(session: Session, user_id: str, asset_ids: list[str]) -> None:
    """Join these photos to the groups of the library: each is looked up in the owner's hash
    index and a capture-time window, and the groups it touches are merged with it. Gives the
    grouping a full pass would, except that a removed photo does not split its group until the
    next full pass."""
    from camroll.analyze.similar import SimilarItem, best_of, edge_kind, hash_index

    if not asset_ids:
        return
    index = hash_index(session, user_id)  # brought up to date once per batch
    new = session.execute(
        select(AssetQuality, Asset.sort_at)
        .join(Asset, Asset.id == AssetQuality.asset_id)
        .where(AssetQuality.user_id == user_id, AssetQuality.asset_id.in_(asset_ids))
    ).all()
    rows: dict[str, tuple[AssetQuality, datetime]] = {}
    parent: dict[str, str] = {}

    def find(a: str) -> str:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a: str, b: str) -> None:
        parent[find(b)] = find(a)

    def item(aid: str) -> SimilarItem:
        q, at = rows[aid]
        return SimilarItem(q.asset_id, q.phash, at, q.score)

    for q, at in new:
        rows[q.asset_id] = (q, at)
        parent.setdefault(q.asset_id, q.asset_id)
        for c, c_at in _candidates(session, user_id, index, q, at):
            if c.asset_id == q.asset_id:
                continue
            rows.setdefault(c.asset_id, (c, c_at))
            parent.setdefault(c.asset_id, c.asset_id)
            if edge_kind(item(q.asset_id), item(c.asset_id)) is not None:
                union(q.asset_id, c.asset_id)
    # Every group a joined photo belonged to comes along whole.
    sizes = Counter(find(a) for a in rows)
    touched = {
        q.duplicate_group for a, (q, _) in rows.items() if q.duplicate_group and sizes[find(a)] > 1
    }
    if touched:
        for q, at in session.execute(
            select(AssetQuality, Asset.sort_at)
            .join(Asset, Asset.id == AssetQuality.asset_id)
            .where(AssetQuality.user_id == user_id, AssetQuality.duplicate_group.in_(touched))
        ).all():
            rows.setdefault(q.asset_id, (q, at))
            parent.setdefault(q.asset_id, q.asset_id)
        first: dict[str, str] = {}
        for aid, (q, _) in rows.items():
            if q.duplicate_group in touched:
                g = q.duplicate_group
                if g in first:
                    union(first[g], aid)
                else:
                    first[g] = aid
    components: dict[str, list[str]] = {}
    for aid in rows:
        components.setdefault(find(aid), []).append(aid)
    for members in components.values():
        if len(members) < 2:
            continue
        groups = sorted({rows[m][0].duplicate_group for m in members if rows[m][0].duplicate_group})
        gid = groups[0] if groups else new_id()  # keep an existing id: fewer rows change
        best = best_of([item(m) for m in members]).asset_id
        for m in members:
            q = rows[m][0]
            if q.duplicate_group != gid or q.is_best != (m == best):
                q.duplicate_group, q.is_best = gid, m == best
    session.flush()


def owners_analysed() -> list[str]:
    """Owners with any analysis scope on: those the nightly pass reclusters and refreshes."""
    from camroll.analyze.run import ANALYSIS_SCOPES

    with session_scope() as session:
        return sorted({u for s in ANALYSIS_SCOPES for u in owners_granting(session, s)})


def recluster(user_id: str) -> bool:
    """The full recluster of one owner's faces; False (nothing done) without faces consent."""
    with session_scope() as session:
        (done,) = run_steps(session, user_id, [ReclusterStep()], user_id)
        return done.ran
