"""Events: runs of photos split where the library itself says "this is a new moment".

Items are ordered by their UTC instant (shots across time zones sort by when they happened) and
shown with their local wall time. A new event starts at a time gap that is unusually large for
this library, or at a jump in place that means the owner travelled between places. Day and week
summaries group by LOCAL date: the day the owner lived, not the UTC day.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np

from camroll.media.metadata import MediaMetadata
from camroll.places.geocode import reverse_geocode, valid_point
from camroll.places.home import haversine_km

# Bounds on the adaptive gap threshold. Below 2 h, lunch in the middle of a day out would split it;
# above 3 days, a week of unrelated weekends would merge into one "event" however sparse the
# library is (trips that last longer are built from events by `trips`, not by this threshold).
MIN_GAP = timedelta(hours=2)
MAX_GAP = timedelta(days=3)
# With this few gaps the distribution says nothing; use the geometric middle of the bounds (12 h).
MIN_GAPS_FOR_FIT = 8
# Gaps shorter than this all mean "same scene": flooring them stops burst shooting (hundreds of
# 1-second gaps) from dominating the distribution the threshold is fitted on.
GAP_FLOOR = timedelta(minutes=5)
# Consecutive located photos this far apart are different places (beyond a town: the same radius
# past which geocode says "near X"), so the owner travelled and a new event begins.
PLACE_JUMP_KM = 25.0


@dataclass
class MomentItem:
    """One photo or video on the timeline.

    taken_utc is the true instant when the file records its offset; None when it does not (then
    the instant is estimated, see `effective_instants`). taken_local is the wall time the owner saw.
    """

    asset_id: str
    taken_utc: datetime | None
    taken_local: datetime | None
    latitude: float | None = None
    longitude: float | None = None
    place: str | None = None

    @property
    def located(self) -> bool:
        return valid_point(self.latitude, self.longitude)

    def local_day(self) -> date | None:
        moment = self.taken_local or self.taken_utc
        return moment.date() if moment else None


@dataclass
class Event:
    items: list[MomentItem]
    start_utc: datetime
    end_utc: datetime
    places: list[str] = field(default_factory=list)

    @property
    def local_days(self) -> list[date]:
        return sorted({d for it in self.items if (d := it.local_day()) is not None})


@dataclass
class DaySummary:
    day: date
    count: int
    places: list[str]
    first_local: datetime | None
    last_local: datetime | None


@dataclass
class WeekSummary:
    iso_year: int
    iso_week: int
    first_day: date  # the Monday
    last_day: date  # the Sunday
    count: int
    places: list[str]
    days: list[DaySummary]  # only the days with photos, in order
    first_local: datetime | None
    last_local: datetime | None


# -- building items ------------------------------------------------------------------------------


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    utc = text.endswith("Z")
    try:
        moment = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if utc else moment.replace(tzinfo=None)


def items_from_metadata(
    metas: Sequence[MediaMetadata], asset_ids: Sequence[str] | None = None
) -> list[MomentItem]:
    """MomentItems from ExifTool metadata, with place labels from offline geocoding.

    Files with no capture time at all are left out: they cannot be put on a timeline.
    """
    ids = list(asset_ids) if asset_ids is not None else [m.path for m in metas]
    points = [
        (m.latitude, m.longitude) if valid_point(m.latitude, m.longitude) else (math.nan, math.nan)
        for m in metas
    ]
    places = reverse_geocode(points)  # type: ignore[arg-type]
    out: list[MomentItem] = []
    for asset_id, m, place in zip(ids, metas, places, strict=True):
        utc, local = _parse_iso(m.taken_at_utc), _parse_iso(m.taken_at_local)
        if utc is None and local is None:
            continue
        located = valid_point(m.latitude, m.longitude)
        out.append(
            MomentItem(
                asset_id=asset_id,
                taken_utc=utc,
                taken_local=local,
                latitude=m.latitude if located else None,
                longitude=m.longitude if located else None,
                place=place.label() if place else None,
            )
        )
    return out


# -- ordering ------------------------------------------------------------------------------------


def effective_instants(
    items: Sequence[MomentItem], anchors: Sequence[MomentItem] = ()
) -> list[datetime]:
    """Each item's UTC instant (aware). Without one, its local time minus the UTC offset of the
    item nearest to it in local time that knows both (the owner was most likely still in that
    zone); with no such item at all, the local time read as UTC. `anchors`: items beside these
    (a time window's neighbours) that lend their offsets only."""
    known = sorted(
        (it.taken_local, it.taken_utc.replace(tzinfo=None) - it.taken_local)
        for it in [*items, *anchors]
        if it.taken_utc is not None and it.taken_local is not None
    )
    keys = [k for k, _ in known]
    out: list[datetime] = []
    for it in items:
        if it.taken_utc is not None:
            out.append(it.taken_utc.astimezone(UTC))
            continue
        local = it.taken_local
        assert local is not None  # items_from_metadata keeps only items with some time
        offset = timedelta(0)
        if known:
            j = bisect_left(keys, local)
            near = [i for i in (j - 1, j) if 0 <= i < len(known)]
            best = min(near, key=lambda i: abs(keys[i] - local))
            offset = known[best][1]
        out.append((local + offset).replace(tzinfo=UTC))
    return out


def order_items(
    items: Iterable[MomentItem], anchors: Sequence[MomentItem] = ()
) -> list[MomentItem]:
    """Items in the order they happened (UTC instant), falling back to local time without one."""
    listed = list(items)
    instants = effective_instants(listed, anchors)
    order = sorted(range(len(listed)), key=lambda i: (instants[i], listed[i].asset_id))
    return [listed[i] for i in order]


# -- splitting -----------------------------------------------------------------------------------


def gap_threshold(instants: Sequence[datetime]) -> timedelta:
    """The gap above which this library starts a new event.

    Why adaptive: a fixed rule ("1.5 days apart") cuts a dense city library (dozens of photos a
    day) into week-long blobs and a sparse one into fragments. Gaps inside an event and gaps
    between events form two humps in log(gap): minutes-to-hours vs. hours-to-days, and where the
    humps sit depends on how the owner shoots. We find the valley between them with Otsu's method
    on log gaps (the split that maximises the between-class variance, i.e. 1-D two-means) and put
    the threshold at the geometric middle of the valley, clamped to [MIN_GAP, MAX_GAP].
    """
    ordered = sorted(instants)
    gaps = np.array([(b - a).total_seconds() for a, b in pairwise(ordered)])
    gaps = np.sort(np.log(np.maximum(gaps, GAP_FLOOR.total_seconds())))
    if len(gaps) < MIN_GAPS_FOR_FIT or gaps[-1] - gaps[0] < 1e-9:
        seconds = math.sqrt(MIN_GAP.total_seconds() * MAX_GAP.total_seconds())
        return timedelta(seconds=round(seconds))
    n = len(gaps)
    csum = np.cumsum(gaps)
    k = np.arange(1, n)  # the low class is gaps[:k]
    mean_lo = csum[:-1] / k
    mean_hi = (csum[-1] - csum[:-1]) / (n - k)
    between = k * (n - k) * (mean_hi - mean_lo) ** 2
    between[gaps[k] - gaps[k - 1] <= 0] = -1  # never split between equal gaps
    best = int(np.argmax(between)) + 1
    seconds = math.exp((gaps[best - 1] + gaps[best]) / 2)
    seconds = min(max(seconds, MIN_GAP.total_seconds()), MAX_GAP.total_seconds())
    return timedelta(seconds=round(seconds))


def _place_breaks(
    items: Sequence[MomentItem], instants: Sequence[datetime], limit: timedelta
) -> set[int]:
    """Indices i where a new event starts at items[i] because the owner moved to another place.

    A jump A -> B between consecutive located photos counts unless the next located photo C, within
    the gap threshold of A, is back near A while B is far from both: then B is a bad GPS fix, not
    a journey (C much later is a new visit: Sydney, then London, then Sydney two years on).
    Unlocated photos in between go with the side they are closer to in time: the cut is at the
    largest gap among them.
    """
    located = [i for i, it in enumerate(items) if it.located]
    breaks: set[int] = set()
    for n, (a, b) in enumerate(pairwise(located)):
        ia, ib = items[a], items[b]
        if _km(ia, ib) < PLACE_JUMP_KM:
            continue
        if n + 2 < len(located):
            c = located[n + 2]
            ic = items[c]
            if instants[c] - instants[a] <= limit and _km(ia, ic) < PLACE_JUMP_KM <= _km(ib, ic):
                continue
        cut = max(range(a + 1, b + 1), key=lambda i: instants[i] - instants[i - 1])
        breaks.add(cut)
    return breaks


def _km(a: MomentItem, b: MomentItem) -> float:
    return haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)  # type: ignore[arg-type]


def find_events(
    items: Sequence[MomentItem],
    threshold: timedelta | None = None,
    anchors: Sequence[MomentItem] = (),
) -> list[Event]:
    """Split the library into events: at gaps above `gap_threshold` (fitted on these items unless
    given) and at jumps of PLACE_JUMP_KM or more between consecutive located photos. `anchors`:
    see `effective_instants` (a window of the library splits as the whole does)."""
    ordered = order_items(items, anchors)
    if not ordered:
        return []
    instants = effective_instants(ordered, anchors)
    limit = threshold if threshold is not None else gap_threshold(instants)
    breaks = _place_breaks(ordered, instants, limit)
    breaks.update(i for i in range(1, len(ordered)) if instants[i] - instants[i - 1] > limit)
    events: list[Event] = []
    start = 0
    for end in [*sorted(breaks), len(ordered)]:
        if end > start:
            events.append(_event(ordered[start:end], instants[start:end]))
        start = end
    return events


def _event(items: list[MomentItem], instants: list[datetime]) -> Event:
    return Event(items=items, start_utc=instants[0], end_utc=instants[-1], places=_places(items))


def _places(items: Iterable[MomentItem]) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        if it.place:
            seen.setdefault(it.place, None)
    return list(seen)


# -- summaries -----------------------------------------------------------------------------------


def _summary_parts(
    items: Sequence[MomentItem],
) -> tuple[int, list[str], datetime | None, datetime | None]:
    ordered = order_items(items)
    if not ordered:
        return 0, [], None, None
    first, last = ordered[0], ordered[-1]
    return (
        len(ordered),
        _places(ordered),
        first.taken_local or first.taken_utc,
        last.taken_local or last.taken_utc,
    )


def summarize_day(items: Iterable[MomentItem], day: date) -> DaySummary:
    """What happened on one LOCAL day: a photo at 00:30 in Tokyo belongs to that Tokyo date."""
    chosen = [it for it in items if it.local_day() == day]
    count, places, first, last = _summary_parts(chosen)
    return DaySummary(day=day, count=count, places=places, first_local=first, last_local=last)


def summarize_week(items: Iterable[MomentItem], iso_year: int, iso_week: int) -> WeekSummary:
    """One ISO week (Monday to Sunday) by LOCAL date, with a summary of each day that has photos."""
    monday = date.fromisocalendar(iso_year, iso_week, 1)
    sunday = monday + timedelta(days=6)
    chosen = [it for it in items if (d := it.local_day()) is not None and monday <= d <= sunday]
    count, places, first, last = _summary_parts(chosen)
    days = sorted({d for it in chosen if (d := it.local_day()) is not None})
    return WeekSummary(
        iso_year=iso_year,
        iso_week=iso_week,
        first_day=monday,
        last_day=sunday,
        count=count,
        places=places,
        days=[summarize_day(chosen, d) for d in days],
        first_local=first,
        last_local=last,
    )
