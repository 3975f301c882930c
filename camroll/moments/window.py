"""A batch's trips from a window of the timeline, not the whole library.

Events split at time gaps above the library's gap threshold and at jumps in place; trips are
runs of away events, cut by an event at home or by a silence. Given the threshold the last full
pass fitted (`library_state.moments_gap_s`) and the stored home periods, both are local: the
events and trips of a stretch of the timeline depend only on its photos, once its edges are cuts
the whole library makes too. So the window grows from the batch's local days until each edge
- is a gap wider than the threshold between every photo outside and every photo inside, for any
  time zone a photo without a UTC offset may be placed in (an event split in the full pass), and
- ends any trip: an event at home just inside it, a silence longer than SPLIT_SILENCE, or the
  end of the library;
and it holds MIN_HOME_EVIDENCE_DAYS days at home (then the full pass's silence rule is
SPLIT_SILENCE too). The edges are found on `assets.sort_at` (indexed, nothing decrypted); only
the window's photos are loaded. Cost: the window, not the library.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetMetadata, HomePeriodRow
from camroll.moments.events import Event, MomentItem, find_events
from camroll.moments.trips import (
    MIN_HOME_EVIDENCE_DAYS,
    SPLIT_SILENCE,
    Trip,
    event_status,
    find_trips,
    home_resolver,
)
from camroll.places.home import HomePeriod

# A photo without a UTC offset is stored at its wall time read as UTC (`assets.sort_at`); its
# instant is that minus its zone's offset, -12 h to +14 h: up to 14 h earlier or 12 h later.
EARLY = timedelta(hours=14)
LATE = timedelta(hours=12)
# Every photo of a batch photo's local day lies within this of it (a day, and the 26 h that
# time zones and the placing of photos without an offset may add either way, and a margin):
# the window holds those days whole, so it finds every trip on them.
DAY_PAD = timedelta(hours=64)
FIRST_SPAN = timedelta(days=7)  # read this far either side of the batch first, then double
# Offsets of photos that know both clocks are taken from this far beyond the window (a margin
# past the 26 h that time zones can move a wall time against its instant).
ANCHOR_SPAN = timedelta(days=2)

Load = Callable[[list[str]], list[MomentItem]]


@dataclass
class Window:
    """A stretch of the timeline around a batch: its photos, events and trips, each as the
    whole library's pass finds them."""

    items: list[MomentItem]
    events: list[Event]
    trips: list[Trip]


@dataclass(frozen=True)
class _Row:
    asset_id: str
    at: float  # sort_at, seconds
    exact: bool  # sort_at is the capture instant (the photo knows its UTC time)

    @property
    def lower(self) -> float:
        return self.at if self.exact else self.at - EARLY.total_seconds()

    @property
    def upper(self) -> float:
        return self.at if self.exact else self.at + LATE.total_seconds()


def stored_periods(session: Session, user_id: str) -> list[HomePeriod]:
    """The home periods the last full library refresh stored (where the owner lived when)."""
    from datetime import date

    return [
        HomePeriod(
            latitude=p.latitude,
            longitude=p.longitude,
            start=date.fromisoformat(p.start_date),
            end=date.fromisoformat(p.end_date),
            days=p.days,
            share=p.share,
        )
        for p in session.scalars(
            select(HomePeriodRow)
            .where(HomePeriodRow.user_id == user_id)
            .order_by(HomePeriodRow.start_date, HomePeriodRow.id)
        )
    ]


def _timed(user_id: str):  # type: ignore[no-untyped-def]
    """Ready photos that have a capture time (the full pass's items), with their sort time."""
    return (
        select(Asset.id, Asset.sort_at, AssetMetadata.taken_at_utc.is_not(None))
        .join(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(
            Asset.user_id == user_id,
            Asset.status == "ready",
            or_(AssetMetadata.taken_at_utc.is_not(None), AssetMetadata.taken_at_local.is_not(None)),
        )
    )


def _seconds(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _separations(rows: list[_Row], before: float | None, after: float | None) -> list[float]:
    """For each split i (rows[:i] | rows[i:]): how much later the earliest possible instant after
    it is than the latest possible instant before it. `before`/`after`: the latest / earliest
    possible instant of the photos not read on either side (None: there are none)."""
    n = len(rows)
    hi = [-math.inf if before is None else before] * (n + 1)
    for i, r in enumerate(rows):
        hi[i + 1] = max(hi[i], r.upper)
    lo = [math.inf if after is None else after] * (n + 1)
    for i in range(n - 1, -1, -1):
        lo[i] = min(lo[i + 1], rows[i].lower)
    return [lo[i] - hi[i] for i in range(n + 1)]


def window_trips(
    session: Session,
    user_id: str,
    batch_ids: Sequence[str],
    threshold: timedelta,
    periods: list[HomePeriod],
    load: Load,
) -> Window | None:
    """The window around the batch: its trips (and events) each exactly as
    `find_trips(find_events(all items, threshold), periods=periods)` over the whole library
    finds them. None when the window cannot be trusted (no home periods, or `sort_at` disagrees with
    a photo's capture time): the caller then reads the whole library."""
    if not periods:
        return None
    ats = sorted(
        _seconds(a)
        for a in session.scalars(
            select(Asset.sort_at).where(
                Asset.user_id == user_id, Asset.status == "ready", Asset.id.in_(list(batch_ids))
            )
        )
    )
    if not ats:
        return Window([], [], [])
    # Apart: SQLite finds one min or max at an end of (user_id, sort_at), both at once by a scan.
    ready = (Asset.user_id == user_id, Asset.status == "ready")
    first, last = (
        _seconds(session.scalars(select(edge(Asset.sort_at)).where(*ready)).one())
        for edge in (func.min, func.max)
    )
    home_of = home_resolver([], (), periods)
    limit, silence = threshold.total_seconds(), SPLIT_SILENCE.total_seconds()
    pad = DAY_PAD.total_seconds()
    want_lo, want_hi = ats[0] - pad, ats[-1] + pad
    span = FIRST_SPAN.total_seconds()
    loaded: dict[str, MomentItem] = {}
    while True:
        start, end = want_lo - span, want_hi + span
        rows = _rows(session, user_id, start, end)
        sep = _separations(
            rows,
            None if start <= first else start + LATE.total_seconds(),
            None if end >= last else end - EARLY.total_seconds(),
        )
        times = [r.at for r in rows]
        left = next((i for i in range(bisect_left(times, want_lo), -1, -1) if sep[i] > limit), None)
        right = next(
            (j for j in range(bisect_right(times, want_hi), len(rows) + 1) if sep[j] > limit), None
        )
        if left is None or right is None:
            span *= 2
            continue
        window = rows[left:right]
        missing = [r.asset_id for r in window if r.asset_id not in loaded]
        loaded.update((it.asset_id, it) for it in load(missing))
        items = [loaded[r.asset_id] for r in window if r.asset_id in loaded]
        if not _sorted_as_stored(items, {r.asset_id: r.at for r in window}):
            return None
        inexact = [it for it in items if it.taken_utc is None]
        anchors = _anchors(session, user_id, window[0].at, window[-1].at, load) if inexact else []
        events = find_events(items, threshold, anchors)
        status = [event_status(ev, home_of) for ev in events]
        home_days = {
            d for ev, st in zip(events, status, strict=True) if st == "home" for d in ev.local_days
        }
        whole = math.isinf(sep[left]) and math.isinf(sep[right])
        left_ok = math.isinf(sep[left]) or sep[left] > silence or status[:1] == ["home"]
        right_ok = math.isinf(sep[right]) or sep[right] > silence or status[-1:] == ["home"]
        evidence = whole or len(home_days) >= MIN_HOME_EVIDENCE_DAYS
        if left_ok and right_ok and evidence:
            return Window(items, events, find_trips(events, periods=periods))
        # Move an edge past the cut it stopped at, and read further when that is the last.
        if not left_ok or not evidence:
            want_lo = rows[left - 1].at if left > 0 else start - 1e-3
        if not right_ok or not evidence:
            want_hi = rows[right].at if right < len(rows) else end + 1e-3


def _rows(session: Session, user_id: str, start: float, end: float) -> list[_Row]:
    lo = datetime.fromtimestamp(start, UTC)
    hi = datetime.fromtimestamp(end, UTC)
    query = _timed(user_id).where(Asset.sort_at >= lo, Asset.sort_at <= hi)
    return [
        _Row(a, _seconds(at), bool(exact))
        for a, at, exact in session.execute(query.order_by(Asset.sort_at, Asset.id))
    ]


def _sorted_as_stored(items: list[MomentItem], stored: dict[str, float]) -> bool:
    """Each item's stored sort time is what the edges assumed: its UTC instant when it has one,
    else its wall time read as UTC."""
    for it in items:
        if it.taken_utc is not None:
            at = _seconds(it.taken_utc)
        elif it.taken_local is not None:
            at = it.taken_local.replace(tzinfo=UTC).timestamp()
        else:
            return False
        if abs(at - stored[it.asset_id]) > 1e-3:
            return False
    return True


def _anchors(
    session: Session, user_id: str, first: float, last: float, load: Load
) -> list[MomentItem]:
    """The photos outside the window that may be nearest in wall time to one inside it among
    those that know both clocks (a photo without an offset takes its neighbour's): every such
    photo within ANCHOR_SPAN of the nearest one past ANCHOR_SPAN on either side. Any farther is
    farther in wall time too (zones move a wall time by at most 26 h)."""
    knows = _timed(user_id).where(
        AssetMetadata.taken_at_utc.is_not(None), AssetMetadata.taken_at_local.is_not(None)
    )
    sub = knows.subquery()
    pad = ANCHOR_SPAN.total_seconds()
    at_lo = datetime.fromtimestamp(first, UTC)
    at_hi = datetime.fromtimestamp(last, UTC)
    before = session.scalar(
        select(func.max(sub.c.sort_at)).where(sub.c.sort_at < at_lo - ANCHOR_SPAN)
    )
    after = session.scalar(
        select(func.min(sub.c.sort_at)).where(sub.c.sort_at > at_hi + ANCHOR_SPAN)
    )
    start = datetime.fromtimestamp((_seconds(before) if before else first) - pad, UTC)
    end = datetime.fromtimestamp((_seconds(after) if after else last) + pad, UTC)
    ids = [
        a
        for a, _, _ in session.execute(
            knows.where(
                or_(
                    and_(Asset.sort_at >= start, Asset.sort_at < at_lo),
                    and_(Asset.sort_at > at_hi, Asset.sort_at <= end),
                )
            )
        )
    ]
    return load(ids)
