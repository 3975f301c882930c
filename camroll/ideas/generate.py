"""Making ideas from what analysis found: trips (a collage and a recap each), themes (pets,
beach, mountains, snow, food, parties), birthdays of named people, holidays of the home
country, "On this day" and "Best smiles". Each idea says why, in words a person reads.

Ideas are keyed by a fingerprint (kind + what they are about): a dismissed idea is never
suggested again, an accepted one is kept as it is, and a suggested one whose photos changed
(new uploads in that moment) is re-rendered — nothing else is touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Row, Select, and_, func, or_, select, true, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, load_only

from camroll import job_runs
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    FaceExpression,
    Idea,
    Person,
    utcnow,
)
from camroll.db.plans import by_row
from camroll.ideas import media
from camroll.pipeline.step import BaseStep, may_use, run_steps, still_consented

if TYPE_CHECKING:
    from camroll.moments.events import MomentItem
    from camroll.moments.trips import Trip

log = logging.getLogger(__name__)
IDEAS_MODEL = ("camroll-ideas", "1")
# Tag themes: the tag, the title, and the words of the reason.
THEMES = {
    "dog": ("Dogs", "dogs"),
    "cat": ("Cats", "cats"),
    "beach": ("Beach days", "the beach"),
    "mountain": ("In the mountains", "mountains"),
    "snow": ("Snow", "snow"),
    "food": ("Good food", "food"),
    "party": ("Parties", "a party"),
    "wedding": ("Weddings", "a wedding"),
    "graduation": ("Graduations", "a mortarboard or an academic gown"),
}
OVER_THE_YEARS_MIN = 3  # distinct years a named person must appear in
RESTYLE_STYLE = "style-07"
THEME_MIN_SCORE = 0.3
SMILE_MIN = 0.85
RESTYLE_MIN_SIDE = 256  # px; smaller photos paint into mush (and under 32 px cannot be painted)


@dataclass
class Suggestion:
    kind: str
    title: str
    reason: str
    confidence: float
    assets: list[Asset]
    fingerprint: str
    render: Callable[[Session, list[Asset]], tuple[bytes, str]] | None
    params: dict[str, object] = field(default_factory=dict)
    # The scopes its inputs came from, besides `creations` (faces, places, content): the idea
    # is deleted with any of them.
    drew_on: set[str] = field(default_factory=set)


@dataclass
class Library:
    assets: dict[str, Asset]
    metas: dict[str, AssetMetadata]
    places: dict[str, AssetPlace]
    tags: dict[str, dict[str, float]]
    quality: dict[str, float]

    def local_day(self, asset_id: str) -> date | None:
        m = self.metas.get(asset_id)
        if m and m.taken_at_local:
            try:
                return datetime.fromisoformat(m.taken_at_local).date()
            except ValueError:
                return None
        return None

    def update(self, other: Library) -> None:
        self.assets.update(other.assets)
        self.metas.update(other.metas)
        self.places.update(other.places)
        self.tags.update(other.tags)
        self.quality.update(other.quality)

    def ranked_by_quality(self, assets: list[Asset]) -> set[str]:
        """`content` when quality scores (a content-scope result) ranked these photos."""
        return {"content"} if any(a.id in self.quality for a in assets) else set()


def load_library(
    session: Session, user_id: str, asset_ids: Iterable[str] | None = None, light: bool = False
) -> Library:
    """The owner's ready photos with what analysis found; only `asset_ids` when given (the
    part of the library a batch touched). `light`: no places, and of the metadata only the
    plain columns the generators read (capture time, size): what themes, people, smiles,
    "on this day", holidays and the restyle need, without decrypting places and GPS."""
    if asset_ids is None:
        return _load(session, user_id, None, light)
    ids = sorted(set(asset_ids))
    lib = Library({}, {}, {}, defaultdict(dict), {})
    for i in range(0, len(ids), _CHUNK):
        lib.update(_load(session, user_id, ids[i : i + _CHUNK], light))
    return lib


_CHUNK = 2000  # ids per IN list
# The metadata a light load reads (the rest stays deferred: read on first use).
_LIGHT_META = (
    AssetMetadata.asset_id,
    AssetMetadata.taken_at_local,
    AssetMetadata.taken_at_utc,
    AssetMetadata.width,
    AssetMetadata.height,
)


def _load(session: Session, user_id: str, ids: list[str] | None, light: bool = False) -> Library:
    def only(col):  # type: ignore[no-untyped-def]
        return col.in_(ids) if ids is not None else True

    def owner(col, value: str = user_id):  # type: ignore[no-untyped-def]
        return col == value if ids is None else by_row(col) == value

    assets_q = select(Asset).where(
        owner(Asset.user_id), owner(Asset.status, "ready"), only(Asset.id)
    )
    metas_q = select(AssetMetadata).where(
        owner(AssetMetadata.user_id), only(AssetMetadata.asset_id)
    )
    if light:  # names and GPS are sealed: decrypting them costs more than the rest of the row
        assets_q = assets_q.options(
            defer(Asset.filename), defer(Asset.original_name), defer(Asset.device_path)
        )
        metas_q = metas_q.options(load_only(*_LIGHT_META))
    assets = {a.id: a for a in session.scalars(assets_q)}
    metas = {m.asset_id: m for m in session.scalars(metas_q)}
    places = (
        {}
        if light
        else {
            p.asset_id: p
            for p in session.scalars(
                select(AssetPlace).where(owner(AssetPlace.user_id), only(AssetPlace.asset_id))
            )
        }
    )
    tags: dict[str, dict[str, float]] = defaultdict(dict)
    for asset_id, label, score in session.execute(
        select(AssetTag.asset_id, AssetTag.label, AssetTag.score).where(
            AssetTag.user_id == user_id, only(AssetTag.asset_id)
        )
    ):
        tags[asset_id][label] = max(score, tags[asset_id].get(label, 0.0))
    quality = {
        asset_id: score
        for asset_id, score in session.execute(
            select(AssetQuality.asset_id, AssetQuality.score).where(
                owner(AssetQuality.user_id), only(AssetQuality.asset_id)
            )
        )
    }
    return Library(assets, metas, places, tags, quality)


def _collage(title: str) -> Callable[[Session, list[Asset]], tuple[bytes, str]]:
    def render(session: Session, assets: list[Asset]) -> tuple[bytes, str]:
        return media.render_collage_for(session, assets, title), "image/jpeg"

    return render


def _recap(title: str, subtitle: str) -> Callable[[Session, list[Asset]], tuple[bytes, str]]:
    def render(session: Session, assets: list[Asset]) -> tuple[bytes, str]:
        photos = [a for a in assets if a.kind != "video"]
        clips = [a for a in assets if a.kind == "video"]
        return media.render_recap_for(session, photos, clips, title, subtitle), "video/mp4"

    return render


def _count(n: int, noun: str) -> str:
    """'1 photo', '3 photos': how a reason counts."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _span(days: list[date]) -> str:
    first, last = min(days), max(days)
    if first == last:
        return f"{first:%-d %B %Y}"
    if first.year == last.year:
        return f"{first:%-d %B} to {last:%-d %B %Y}"
    return f"{first:%-d %B %Y} to {last:%-d %B %Y}"


def trip_items(lib: Library, ids: Iterable[str] | None = None) -> list[MomentItem]:
    """The timeline trips are found on: each ready photo or video with a capture time (of
    `ids` when given)."""
    from camroll.moments.events import MomentItem

    items = []
    for asset_id in lib.metas if ids is None else ids:
        m = lib.metas.get(asset_id)
        if m is None or asset_id not in lib.assets:
            continue
        local = _parse(m.taken_at_local)
        if local is None and m.taken_at_utc is None:
            continue
        items.append(MomentItem(asset_id, m.taken_at_utc, local, m.latitude, m.longitude, None))
    return items


def library_trips(session: Session, lib: Library, user_id: str) -> tuple[list[Trip], int | None]:
    """The trips of the whole library (the full pass), and the event gap threshold fitted on it
    (seconds; None without photos): batches find their trips in a window split by it."""
    from camroll.moments.events import effective_instants, find_events, gap_threshold
    from camroll.moments.trips import find_trips
    from camroll.moments.window import stored_periods

    items = trip_items(lib)
    if not items:
        return [], None
    threshold = gap_threshold(effective_instants(items))
    # Measured from where the owner lived at the time: the home periods the library refresh
    # stored (a batch's window reads the same), else inferred from these photos.
    periods = stored_periods(session, user_id) or None
    return find_trips(find_events(items, threshold), periods=periods), int(
        threshold.total_seconds()
    )


def trip_ideas(
    session: Session, lib: Library, user_id: str, trips: list[Trip] | None = None
) -> list[Suggestion]:
    """A collage and a recap per trip: of `trips` (found in a window of the library, whose
    photos `lib` holds), else of every trip in `lib` (the whole library; the gap threshold
    fitted on it is kept for the batches that follow)."""
    from camroll.moments.library import trip_moment_id

    if trips is None:
        from camroll.analyze.library import library_state

        trips, gap = library_trips(session, lib, user_id)
        state = library_state(session, user_id)
        if gap is not None and state.moments_gap_s != gap:
            state.moments_gap_s = gap
    out = []
    for trip in trips:
        members = [lib.assets[it.asset_id] for it in trip.items if it.asset_id in lib.assets]
        photos = [a for a in members if a.kind in ("image", "raw")]
        days = sorted({trip.start_local_day, trip.end_local_day})
        n_days = (trip.end_local_day - trip.start_local_day).days + 1
        reason = (
            f"{len(members)} photos and videos over {_count(n_days, 'day')}, "
            f"{trip.distance_km:.0f} km from home: {', '.join(trip.places[:4])}"
        )
        key = f"trip:{trip.start_local_day}:{trip.end_local_day}"
        # Home areas and place names are places; the best shots are ranked by quality.
        drew_on = {"places"} | lib.ranked_by_quality(photos)
        best = media.best_photos(session, photos, media.MAX_COLLAGE)
        if len(best) >= media.MIN_COLLAGE:
            out.append(
                Suggestion(
                    "collage",
                    trip.title,
                    reason,
                    0.9,
                    best,
                    f"collage:{key}",
                    _collage(trip.title),
                    drew_on=drew_on,
                    params={"moment_id": trip_moment_id(trip)},
                )
            )
        clips = [a for a in members if a.kind == "video"][: media.MAX_RECAP_CLIPS]
        recap = media.best_photos(session, photos, media.MAX_RECAP_PHOTOS) + clips
        if len(recap) >= 3:
            out.append(
                Suggestion(
                    "recap",
                    trip.title,
                    reason,
                    0.9,
                    recap,
                    f"recap:{key}",
                    _recap(trip.title, f"{_span(days)} · {', '.join(trip.places[:3])}"),
                    drew_on=drew_on,
                    params={"moment_id": trip_moment_id(trip)},
                )
            )
    return out


def _parse(local: str | None) -> datetime | None:
    if not local:
        return None
    try:
        return datetime.fromisoformat(local)
    except ValueError:
        return None


def theme_ideas(
    session: Session, lib: Library, counts: dict[str, int] | None = None
) -> list[Suggestion]:
    """A collage per theme. `counts`: `lib` holds only each theme's top candidates
    (`theme_candidates`) and these are the themes' sizes."""
    out = []
    for label, (title, words) in THEMES.items():
        if counts is not None and label not in counts:
            continue
        found = [
            lib.assets[a]
            for a, tags in lib.tags.items()
            if tags.get(label, 0.0) >= THEME_MIN_SCORE and a in lib.assets
        ]
        best = media.best_photos(session, found, media.MAX_COLLAGE)
        if len(best) >= media.MIN_COLLAGE:
            reason = f"{counts[label] if counts else len(found)} photos with {words}"
            out.append(
                Suggestion(
                    "theme",
                    title,
                    reason,
                    0.7,
                    best,
                    f"theme:{label}",
                    _collage(title),
                    drew_on={"content"},
                )
            )
    return out


def birthday_ideas(
    session: Session, lib: Library, user_id: str, person_ids: set[str] | None = None
) -> list[Suggestion]:
    """A named person's birthday (as the owner set it), or cake and candles with people."""
    out = []
    people = session.scalars(
        select(Person).where(
            Person.user_id == user_id,
            Person.birthday.is_not(None),
            Person.id.in_(person_ids) if person_ids is not None else True,
        )
    )
    for person in people:
        born = date.fromisoformat(person.birthday)  # type: ignore[arg-type]
        by_year: dict[int, list[Asset]] = defaultdict(list)
        for (asset_id,) in session.execute(_faces_of(user_id, person.id, lib, person_ids)):
            day = lib.local_day(asset_id)
            if day and (day.month, day.day) == (born.month, born.day) and asset_id in lib.assets:
                by_year[day.year].append(lib.assets[asset_id])
        for year, found in by_year.items():
            name = person.name or "Someone"
            cake = sum(1 for a in found if "cake" in lib.tags.get(a.id, {}))
            reason = f"{len(found)} photos on {name}'s birthday" + (
                ", with cake and candles" if cake else ""
            )
            title = f"{name}'s birthday {year}"
            best = media.best_photos(session, found, media.MAX_COLLAGE)
            render = _collage(title) if len(best) >= media.MIN_COLLAGE else None
            out.append(
                Suggestion(
                    "theme",
                    title,
                    reason,
                    0.95,
                    best,
                    f"birthday:{person.id}:{year}",
                    render,
                    # A named person and their faces; cake and candles are tags.
                    drew_on={"faces"}
                    | lib.ranked_by_quality(found)
                    | ({"content"} if cake else set()),
                )
            )
    return out


def _faces_of(
    user_id: str, person_id: str, lib: Library, person_ids: set[str] | None
) -> Select[tuple[str]]:
    """A person's photos in id order (ties in quality go to the first); of `lib` only when it
    is a part of the library (`person_ids` given: a batch's people)."""
    q = select(Face.asset_id).where(Face.user_id == user_id, Face.person_id == person_id)
    if person_ids is not None:
        q = q.where(Face.asset_id.in_(list(lib.assets)))
    return q.distinct().order_by(Face.asset_id)


def home_country(places: Iterable[str | None]) -> str | None:
    """The home country for holidays: the most photographed one (of every place row's code)."""
    countries = Counter(c for c in places if c)
    return countries.most_common(1)[0][0] if countries else None


def holiday_ideas(
    session: Session,
    lib: Library,
    code: str | None = None,
    only: set[tuple[str, int]] | None = None,
) -> list[Suggestion]:
    """Holidays of the home country (the most photographed country), from `holidays`. `code`:
    that country, counted over the whole library when `lib` is a part of it; `only`: the
    (holiday, year) groups `lib` holds every photo of."""
    import holidays

    code = code or home_country(p.country_code for p in lib.places.values())
    if code is None:
        return []
    days = {a: lib.local_day(a) for a in lib.assets}
    years = sorted({d.year for d in days.values() if d})
    try:
        calendar = holidays.country_holidays(code, years=years)
    except NotImplementedError:
        return []
    groups: dict[tuple[str, int], list[Asset]] = defaultdict(list)
    for asset_id, day in days.items():
        if day and day in calendar:
            key = (calendar.get(day), day.year)
            if only is None or key in only:
                groups[key].append(lib.assets[asset_id])
    out = []
    for (name, year), found in groups.items():
        best = media.best_photos(session, found, media.MAX_COLLAGE)
        if len(best) < media.MIN_COLLAGE:
            continue
        title = f"{name} {year}"
        festive = sum(
            1 for a in found if {"christmas", "halloween", "party"} & set(lib.tags.get(a.id, {}))
        )
        reason = f"{len(found)} photos on {name} ({code})" + (
            ", and they look festive" if festive else ""
        )
        out.append(
            Suggestion(
                "theme",
                title,
                reason,
                0.8 if festive else 0.6,
                best,
                f"holiday:{code}:{name}:{year}",
                _collage(title),
                # The home country comes from places; "festive" and the ranking from content.
                drew_on={"places"}
                | lib.ranked_by_quality(found)
                | ({"content"} if any(a.id in lib.tags for a in found) else set()),
            )
        )
    return out


def on_this_day_ideas(session: Session, lib: Library, today: date) -> list[Suggestion]:
    found: dict[int, list[Asset]] = defaultdict(list)
    for asset_id in lib.assets:
        day = lib.local_day(asset_id)
        if day and (day.month, day.day) == (today.month, today.day) and day.year < today.year:
            found[today.year - day.year].append(lib.assets[asset_id])
    out = []
    for years_ago, assets in sorted(found.items()):
        title = f"On this day, {_count(years_ago, 'year')} ago"
        best = media.best_photos(session, assets, media.MAX_COLLAGE)
        render = _collage(title) if len(best) >= media.MIN_COLLAGE else None
        day = today.replace(year=today.year - years_ago)
        reason = f"{_count(len(assets), 'photo')} from {day:%-d %B %Y}"
        out.append(
            Suggestion(
                "on_this_day",
                title,
                reason,
                0.8,
                best,
                f"otd:{today:%m-%d}:{years_ago}",
                render,
                drew_on=lib.ranked_by_quality(assets),
            )
        )
    return out


def broadest_smiles(session: Session, user_id: str, n: int) -> tuple[int, list[str]]:
    """How many ready photos have a big smile, and the `n` broadest (ids only: no row is
    decrypted), broadest first: walked down the (user, smile) index (migration 0024) and
    counted in it, not read whole."""
    big = and_(
        FaceExpression.user_id == user_id,
        FaceExpression.smile.is_not(None),  # the partial index ix_face_expressions_user_smile
        FaceExpression.smile >= SMILE_MIN,
    )
    smiling = select(func.count(FaceExpression.asset_id.distinct())).where(big)
    not_ready = select(Asset.id).where(
        Asset.user_id == user_id, or_(Asset.status < "ready", Asset.status > "ready")
    )
    count = (session.scalar(smiling) or 0) - (
        session.scalar(smiling.where(FaceExpression.asset_id.in_(not_ready))) or 0
    )
    # A photo first appears at its broadest face: the first n distinct are the n broadest.
    found: list[str] = []
    rows = n
    while len(found) < n:
        found = []
        got = session.execute(
            select(FaceExpression.asset_id)
            .join(Asset, Asset.id == FaceExpression.asset_id)
            .where(big, Asset.status == "ready")
            .order_by(FaceExpression.smile.desc(), FaceExpression.asset_id)
            .limit(rows)
        ).all()
        for (asset_id,) in got:
            if asset_id not in found:
                found.append(asset_id)
        if len(got) < rows:
            break
        rows *= 2
    return count, found[:n]


def smile_ideas(
    session: Session, lib: Library, user_id: str, broadest: tuple[int, list[str]] | None = None
) -> list[Suggestion]:
    """The broadest smiles; `lib` needs to hold only the first MAX_COLLAGE of them.
    `broadest`: what `broadest_smiles` found, when the caller already asked (a batch)."""
    count, found = broadest or broadest_smiles(session, user_id, media.MAX_COLLAGE)
    best = [lib.assets[a] for a in found if a in lib.assets]
    if len(best) < media.MIN_COLLAGE:
        return []
    reason = f"the {len(best)} broadest smiles of {count} photos with a big smile"
    return [
        Suggestion(
            "theme",
            "Best smiles",
            reason,
            0.7,
            best,
            "smiles",
            _collage("Best smiles"),
            drew_on={"faces"},  # expressions are faces-scope results
        )
    ]


def over_the_years_ideas(
    session: Session, lib: Library, user_id: str, person_ids: set[str] | None = None
) -> list[Suggestion]:
    """ "Maya over the years": a named person seen in several different years."""
    out = []
    for person in session.scalars(
        select(Person).where(
            Person.user_id == user_id,
            Person.name.is_not(None),
            Person.id.in_(person_ids) if person_ids is not None else True,
        )
    ):
        by_year: dict[int, Asset] = {}
        for (asset_id,) in session.execute(_faces_of(user_id, person.id, lib, person_ids)):
            day = lib.local_day(asset_id)
            if day and asset_id in lib.assets:
                best = by_year.get(day.year)
                if best is None or lib.quality.get(asset_id, 0) > lib.quality.get(best.id, 0):
                    by_year[day.year] = lib.assets[asset_id]
        if len(by_year) < OVER_THE_YEARS_MIN:
            continue
        years = sorted(by_year)
        picked = [by_year[y] for y in years][-media.MAX_COLLAGE :]
        title = f"{person.name} over the years"
        reason = f"{person.name} in {len(years)} different years, {years[0]} to {years[-1]}"
        render = _collage(title) if len(picked) >= media.MIN_COLLAGE else None
        out.append(
            Suggestion(
                "theme",
                title,
                reason,
                0.85,
                picked,
                f"years:{person.id}",
                render,
                drew_on={"faces"} | lib.ranked_by_quality(picked),
            )
        )
    return out


def restyle_ideas(
    session: Session, lib: Library, user_id: str, *, faces: bool, partial: bool = False
) -> list[Suggestion]:
    """One painterly version of the library's best landscape (no faces: a restyled face is
    a likeness the owner did not ask for; `faces` False: faces may not be read, so none are
    known). `partial`: `lib` holds only the candidates."""
    with_faces: set[str] = set()
    any_faces: object = None
    if faces:
        q = select(Face.asset_id).where(Face.user_id == user_id)
        if partial:
            q = q.where(Face.asset_id.in_(list(lib.assets)))
            any_faces = session.scalar(select(Face.id).where(Face.user_id == user_id).limit(1))
        with_faces = {a for (a,) in session.execute(q)}
        if not partial:
            any_faces = bool(with_faces)
    candidates = [
        a
        for a in lib.assets.values()
        if a.kind == "image"
        and a.id not in with_faces
        and a.id in lib.quality
        and _big_enough(lib.metas.get(a.id), RESTYLE_MIN_SIDE)  # an 8x8 APNG is no "best shot"
    ]
    if not candidates:
        return []
    best = max(candidates, key=lambda a: lib.quality[a.id])
    title = "Your best shot, painted"
    from camroll.create.style_names import style_name

    reason = (
        "the sharpest, best exposed photo without people, painted "
        f"{style_name(RESTYLE_STYLE)} style"
    )

    def render(session: Session, assets: list[Asset]) -> tuple[bytes, str]:
        return media.render_restyle_for(session, assets[0], RESTYLE_STYLE, title), "image/jpeg"

    return [
        Suggestion(
            "restyle",
            title,
            reason,
            0.5,
            [best],
            f"restyle:{best.id}",
            render,
            {"style": style_name(RESTYLE_STYLE)},  # params name styles as people do
            # Chosen by quality among the photos that faces found to have no people in them.
            drew_on={"content"} | ({"faces"} if any_faces else set()),
        )
    ]


def _big_enough(meta: AssetMetadata | None, side: int) -> bool:
    return bool(meta and meta.width and meta.height and min(meta.width, meta.height) >= side)


def _score(s: Suggestion, lib: Library, named: set[str], dismissed: Counter[str]) -> float:
    """Recency, quality, the people the owner named, novelty (fewer dismissals of this kind)."""
    days = [lib.local_day(a.id) for a in s.assets]
    newest = max((d for d in days if d), default=None)
    age_years = (date.today() - newest).days / 365 if newest else 5.0
    recency = 1.0 / (1.0 + max(age_years, 0.0))
    quality = sum(lib.quality.get(a.id, 0.5) for a in s.assets) / max(1, len(s.assets))
    people = 1.0 if any(a.id in named for a in s.assets) else 0.0
    novelty = 0.7 ** dismissed[s.kind]
    return round((s.confidence + 0.5 * recency + 0.5 * quality + 0.3 * people) * novelty, 4)


def suggestions(
    session: Session,
    user_id: str,
    today: date | None = None,
    lib: Library | None = None,
    *,
    faces: bool,
) -> list[Suggestion]:
    """Every idea the whole library suggests today (the full pass). `faces`: whether faces-scope
    rows (people, smiles) may be read: the step's `may_use("faces")`."""
    lib = lib if lib is not None else load_library(session, user_id)
    if not lib.assets:
        return []
    today = today or datetime.now(UTC).date()
    return [
        *trip_ideas(session, lib, user_id),
        *theme_ideas(session, lib),
        *(birthday_ideas(session, lib, user_id) if faces else []),
        *holiday_ideas(session, lib),
        *on_this_day_ideas(session, lib, today),
        *(smile_ideas(session, lib, user_id) if faces else []),
        *(over_the_years_ideas(session, lib, user_id) if faces else []),
        *restyle_ideas(session, lib, user_id, faces=faces),
    ]


def batch_suggestions(
    session: Session, user_id: str, batch: list[str], today: date | None = None, *, faces: bool
) -> tuple[Library, list[Suggestion]]:
    """The ideas a batch of new photos touched, each made exactly as the full pass makes it:
    the themes of its tags, the people of its faces, best smiles, "on this day" for today's
    date, the best shot to paint; trips and holidays when it has a photo away from home, on a
    trip's dates or on a holiday. Each generator sees only the part of the library it needs.
    Returns the union of what was loaded (for scoring) and the suggestions."""
    from camroll.analyze.library import people_of
    from camroll.moments.trips import AT_HOME_KM, SPLIT_SILENCE

    today = today or datetime.now(UTC).date()
    batch_lib = load_library(session, user_id, batch)
    seen = Library({}, {}, {}, defaultdict(dict), {})
    seen.update(batch_lib)
    if not batch_lib.assets:
        return seen, []
    out: list[Suggestion] = []

    def part(ids: Iterable[str]) -> Library:
        lib = load_library(session, user_id, ids, light=True)
        seen.update(lib)
        return lib

    labels = {
        label
        for tags in batch_lib.tags.values()
        for label, score in tags.items()
        if label in THEMES and score >= THEME_MIN_SCORE
    }
    if labels:
        counts, ids = {}, set()
        for label in labels:
            counts[label], top = theme_candidates(session, user_id, label)
            ids |= set(top)
        out += theme_ideas(session, part(ids), counts)

    # Only named people (over the years) and people with a birthday have ideas.
    people: set[str] = (
        set(
            session.scalars(
                select(Person.id).where(
                    Person.id.in_(people_of(session, user_id, list(batch_lib.assets))),
                    or_(Person.name.is_not(None), Person.birthday.is_not(None)),
                )
            )
        )
        if faces
        else set()
    )
    if people:
        lib = part(person_candidates(session, user_id, people))
        out += birthday_ideas(session, lib, user_id, people)
        out += over_the_years_ideas(session, lib, user_id, people)

    smiling = select(FaceExpression.asset_id).where(
        FaceExpression.user_id == user_id, FaceExpression.smile >= SMILE_MIN
    )
    if faces and session.scalar(
        smiling.where(FaceExpression.asset_id.in_(list(batch_lib.assets))).limit(1)
    ):
        broadest = broadest_smiles(session, user_id, media.MAX_COLLAGE)  # counted once
        out += smile_ideas(session, part(broadest[1]), user_id, broadest)

    days = {d for a in batch_lib.assets if (d := batch_lib.local_day(a))}
    if any((d.month, d.day) == (today.month, today.day) and d.year < today.year for d in days):
        ids = session.scalars(
            select(AssetMetadata.asset_id).where(
                AssetMetadata.user_id == user_id,
                func.substr(AssetMetadata.taken_at_local, 5, 6) == f"-{today:%m-%d}",
            )
        )
        out += on_this_day_ideas(session, part(ids), today)

    if restyle_ideas(
        session, batch_lib, user_id, faces=faces, partial=True
    ):  # a candidate in the batch
        previous = session.scalars(
            select(Idea.asset_id)
            .where(Idea.user_id == user_id, Idea.kind == "restyle")
            .order_by(Idea.updated_at.desc())
            .limit(1)
        ).first()
        lib = part([*batch_lib.assets, *([previous] if previous else [])])
        out += restyle_ideas(session, lib, user_id, faces=faces, partial=True)

    existing = [
        f
        for (f,) in session.execute(
            select(Idea.fingerprint).where(
                Idea.user_id == user_id,
                or_(Idea.fingerprint.like("%:trip:%"), Idea.fingerprint.like("holiday:%")),
            )
        )
    ]
    spans = []
    for f in existing:
        if ":trip:" in f:
            first, last = f.split(":trip:", 1)[1].split(":")
            spans.append((date.fromisoformat(first), date.fromisoformat(last)))
    away = any(
        m.latitude is not None
        and m.longitude is not None
        and (
            a not in batch_lib.places
            or batch_lib.places[a].distance_from_home_km is None
            or batch_lib.places[a].distance_from_home_km > AT_HOME_KM  # type: ignore[operator]
        )
        for a, m in batch_lib.metas.items()
    )
    slack = SPLIT_SILENCE + timedelta(days=1)
    on_trip = any(first - slack <= d <= last + slack for d in days for first, last in spans)
    countries = {p.country_code for p in batch_lib.places.values() if p.country_code}
    countries |= {f.split(":")[1] for f in existing if f.startswith("holiday:")}
    on_holiday = _any_holiday(countries, days)
    if away or on_trip:
        out += _batch_trip_ideas(session, user_id, list(batch_lib.assets), seen)
    if on_holiday:
        out += _batch_holiday_ideas(session, user_id, days, part)
    return seen, out


def _batch_trip_ideas(
    session: Session, user_id: str, batch: list[str], seen: Library
) -> list[Suggestion]:
    """The trips around the batch, found in a window of the timeline (`moments.window`) with
    the gap threshold of the last full pass and the stored home periods: the same trips the
    full pass finds there. Without those (no full pass yet, no home periods) the whole library
    is read, as the full pass reads it."""
    from camroll.analyze.library import library_state
    from camroll.moments.window import stored_periods, window_trips

    gap = library_state(session, user_id).moments_gap_s
    window = Library({}, {}, {}, defaultdict(dict), {})

    def load(ids: list[str]) -> list[MomentItem]:
        lib = load_library(session, user_id, ids)
        seen.update(lib)
        window.update(lib)
        return trip_items(lib, ids)

    found = None
    if gap is not None:
        periods = stored_periods(session, user_id)
        found = window_trips(session, user_id, batch, timedelta(seconds=gap), periods, load)
    if found is None:
        whole = load_library(session, user_id)
        seen.update(whole)
        return trip_ideas(session, whole, user_id)
    return trip_ideas(session, window, user_id, trips=found.trips)


def _batch_holiday_ideas(
    session: Session, user_id: str, days: set[date], part: Callable[[Iterable[str]], Library]
) -> list[Suggestion]:
    """Holidays on the batch's days: each (holiday, year) a batch day falls on, made from the
    photos of that holiday's dates only (read by capture time), for the home country counted
    over the whole library as the full pass counts it."""
    import holidays

    code = home_country(
        session.scalars(select(AssetPlace.country_code).where(AssetPlace.user_id == user_id))
    )
    if code is None or not days:
        return []
    try:
        calendar = holidays.country_holidays(code, years=sorted({d.year for d in days}))
    except NotImplementedError:
        return []
    groups = {(calendar.get(d), d.year) for d in days if d in calendar}
    if not groups:
        return []
    dates = {d for d, name in calendar.items() if (name, d.year) in groups}
    # A local date is within a day of the instant stored in sort_at (time zones).
    near = or_(
        *(
            and_(
                Asset.sort_at >= datetime.combine(d, datetime.min.time(), UTC) - timedelta(days=1),
                Asset.sort_at < datetime.combine(d, datetime.min.time(), UTC) + timedelta(days=2),
            )
            for d in dates
        )
    )
    ids = session.scalars(
        select(Asset.id).where(Asset.user_id == user_id, Asset.status == "ready", near)
    )
    return holiday_ideas(session, part(ids), code, groups)


# A person with fewer faces than this has every photo ranked in one query (as cheap as the
# walk); above it, each year's best is walked down the quality index (`_walk_best`).
PERSON_WALK_MIN = 500
_WALK_FIRST = 256  # quality index rows the walk reads first; each next page is twice as long


def person_candidates(session: Session, user_id: str, person_ids: set[str]) -> set[str]:
    """The photos birthday and over-the-years ideas of these people can use: each one's
    photos on their birthday, and their best photos of each year (quality, as
    `over_the_years_ideas` ranks them, every one tied for the best: the generator's own order
    picks among them). A superset is harmless: the generators rank what they are given."""
    people = list(
        session.scalars(select(Person).where(Person.user_id == user_id, Person.id.in_(person_ids)))
    )
    # PostgreSQL ranks a person's photos in one statement with hash joins (its planner has
    # statistics); the walk's dozen small statements a person cost it more in round trips
    # (bench/RESULTS.md). SQLite walks.
    walk = session.get_bind().dialect.name == "sqlite"
    years = _library_years(session, user_id) if walk else None
    found: set[str] = set()
    whole: dict[str, str] = {}
    for person in people:
        mmdd = (person.birthday or "")[4:10]  # "-MM-DD"
        if years is None or (person.face_count or 0) < PERSON_WALK_MIN:
            whole[person.id] = mmdd
            continue
        best, unknown = _walk_best(session, user_id, person.id, years, person.face_count)
        found |= best
        rest = []  # years the walk did not settle: read by date when under twice their faces
        for year in unknown:
            in_year = _year_best(session, user_id, person.id, year, 2 * person.face_count)
            if in_year is None:
                rest.append(year)
            else:
                found |= in_year
        if rest:  # ... else ranked from all the person's photos
            found |= _ranked_whole(session, user_id, {person.id: ""}, rest)
        if mmdd:
            found |= _birthday_photos(session, user_id, person.id, mmdd, years)
    if whole:
        found |= _ranked_whole(session, user_id, whole)
    return found


def _library_years(session: Session, user_id: str) -> list[str] | None:
    """Every year ("YYYY") a photo's local date can fall in: a photo's sort_at is its capture
    instant (or its local time read as UTC, ingest/process.py), within a day of its local date.
    Two ends of the (user_id, sort_at) index, not the library."""
    at = Asset.sort_at
    first = session.scalar(select(func.min(at)).where(Asset.user_id == user_id))
    last = session.scalar(select(func.max(at)).where(Asset.user_id == user_id))
    if first is None or last is None:
        return None
    span = range((first - timedelta(days=1)).year, (last + timedelta(days=1)).year + 1)
    return [f"{y:04d}" for y in span]


def _walk_best(
    session: Session, user_id: str, person_id: str, years: list[str], faces: int
) -> tuple[set[str], list[str]]:
    """A person's best photos of the years it can settle (all tied for the best), and the
    years it could not. Walked down the (user, score) quality index (migration 0024) in pages
    with a probe of the person's faces: a person's first photos of a year in the walk are its
    best, and the year is settled once one scores above the last row read (its ties are then
    read too) and above 0 (photos without a score rank at 0). About (library / the person's
    photos that year) index rows, at most as many as the person's faces: a year with few or
    none of their photos is left to the caller."""
    scored = and_(
        AssetQuality.user_id == user_id,
        AssetQuality.score.is_not(None),  # the partial index ix_asset_quality_user_score
    )
    order = (AssetQuality.score.desc(), AssetQuality.asset_id.desc())
    top: dict[str, float] = {}  # each year's best score so far
    hits: list[tuple[str, float, str]] = []
    key: tuple[float, str] | None = None  # the last index row read
    size, read = _WALK_FIRST, 0
    while True:
        after = tuple_(AssetQuality.score, AssetQuality.asset_id) < key if key else true()
        page = select(AssetQuality.asset_id, AssetQuality.score).where(scored, after)
        page = page.order_by(*order).limit(size).subquery()
        on_face = (
            select(Face.asset_id)  # from the (user, person, asset) index alone
            .where(Face.user_id == user_id, Face.person_id == person_id)
            .where(Face.asset_id == page.c.asset_id)
            .exists()
        )
        for asset_id, score, local in session.execute(
            select(page.c.asset_id, page.c.score, AssetMetadata.taken_at_local)
            .join(Asset, Asset.id == page.c.asset_id)
            .join(AssetMetadata, AssetMetadata.asset_id == page.c.asset_id)
            .where(on_face, Asset.status == "ready", AssetMetadata.taken_at_local.is_not(None))
        ):
            hits.append((asset_id, score, local[:4]))
            top[local[:4]] = max(score, top.get(local[:4], score))
        end = session.execute(
            select(AssetQuality.score, AssetQuality.asset_id)
            .where(scored, after)
            .order_by(*order)
            .offset(size - 1)
            .limit(1)
        ).first()
        read += size
        last = end[0] if end is not None else None  # None: the index is read to its end
        unknown = [y for y in years if not (top.get(y, 0) > 0 and (last is None or top[y] > last))]
        if not unknown or end is None or read >= faces:
            known = set(years) - set(unknown)
            return {a for a, score, y in hits if y in known and top[y] == score}, unknown
        key = (end[0], end[1])
        size *= 2


def _year_best(
    session: Session, user_id: str, person_id: str, year: str, most: int
) -> set[str] | None:
    """A person's best photos of one year ("YYYY", all tied for the best) from the year's
    photos, found by sort_at (within a day of the local date); None when the year holds `most`
    photos or more (counted in the index up to there, no further)."""
    y = int(year)
    in_year = and_(
        Asset.user_id == user_id,
        Asset.sort_at >= datetime(y, 1, 1, tzinfo=UTC) - timedelta(days=1),
        Asset.sort_at < datetime(y + 1, 1, 1, tzinfo=UTC) + timedelta(days=1),
    )
    bounded = select(Asset.id).where(in_year).limit(most).subquery()
    if (session.scalar(select(func.count()).select_from(bounded)) or 0) >= most:
        return None
    on_face = (
        select(Face.asset_id)  # from the (user, person, asset) index alone
        .where(Face.user_id == user_id, Face.person_id == person_id, Face.asset_id == Asset.id)
        .exists()
    )
    score = func.coalesce(AssetQuality.score, 0.0)  # as `_ranked_whole` ranks them
    rows = session.execute(
        select(Asset.id, score)
        .join(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .outerjoin(AssetQuality, AssetQuality.asset_id == Asset.id)
        .where(
            in_year,
            by_row(Asset.status) == "ready",  # not the (user_id, status) index
            func.substr(AssetMetadata.taken_at_local, 1, 4) == year,
            on_face,
        )
    ).all()
    best = max((sc for _, sc in rows), default=None)
    return {a for a, sc in rows if sc == best}


def _birthday_photos(
    session: Session, user_id: str, person_id: str, mmdd: str, years: list[str]
) -> set[str]:
    """A person's ready photos on their birthday ("-MM-DD") in these years: each day's photos
    found by sort_at (within a day of the local date) in the (user_id, sort_at) index."""
    near = []
    for year in years:
        try:
            day = datetime.combine(date.fromisoformat(year + mmdd), datetime.min.time(), UTC)
        except ValueError:  # 29 February of a year without one
            continue
        near.append(
            and_(
                Asset.user_id == user_id,  # in each term: each is a range of the index
                Asset.sort_at >= day - timedelta(days=1),
                Asset.sort_at < day + timedelta(days=2),
            )
        )
    if not near:
        return set()
    on_face = (
        select(Face.asset_id)  # from the (user, person, asset) index alone
        .where(Face.user_id == user_id, Face.person_id == person_id, Face.asset_id == Asset.id)
        .exists()
    )
    return set(
        session.scalars(
            select(Asset.id)
            .join(AssetMetadata, AssetMetadata.asset_id == Asset.id)
            .where(
                or_(*near),
                by_row(Asset.status) == "ready",  # not the (user_id, status) index
                func.substr(AssetMetadata.taken_at_local, 5, 6) == mmdd,
                on_face,
            )
        )
    )


def _ranked_whole(
    session: Session, user_id: str, birthdays: dict[str, str], years: list[str] | None = None
) -> set[str]:
    """`person_candidates` for these people ({person: "-MM-DD" or ""}) from all their photos
    (of these years, "YYYY", when given): each one's every face joined to its photo, metadata
    and quality, ranked in SQL (only the candidates come back)."""
    local = AssetMetadata.taken_at_local
    ranked = (
        select(
            Face.asset_id,
            func.substr(local, 5, 6).label("mmdd"),
            Face.person_id,
            func.rank()
            .over(
                partition_by=(Face.person_id, func.substr(local, 1, 4)),
                order_by=func.coalesce(AssetQuality.score, 0.0).desc(),
            )
            .label("place"),
        )
        .join(Asset, Asset.id == Face.asset_id)
        .join(AssetMetadata, AssetMetadata.asset_id == Face.asset_id)
        .outerjoin(AssetQuality, AssetQuality.asset_id == Face.asset_id)
        .where(
            Face.user_id == user_id,
            Face.person_id.in_(list(birthdays)),
            Asset.status == "ready",
            local.is_not(None),
            func.substr(local, 1, 4).in_(years) if years is not None else true(),
        )
        .subquery()
    )
    on_birthday = [
        and_(ranked.c.person_id == p, ranked.c.mmdd == mmdd)
        for p, mmdd in birthdays.items()
        if mmdd
    ]
    return set(
        session.scalars(
            select(ranked.c.asset_id).where(or_(ranked.c.place == 1, *on_birthday)).distinct()
        )
    )


# Top candidates per theme read for a batch: best_photos keeps one per near-duplicate group,
# so more than MAX_COLLAGE; fewer distinct groups among them than that falls back to all.
THEME_CANDIDATES = 8 * media.MAX_COLLAGE


def theme_candidates(session: Session, user_id: str, label: str) -> tuple[int, list[str]]:
    """How many ready photos have this theme, and the best of them by quality (as
    `media.best_photos` ranks them), found in SQL without loading the theme: counted in the
    (user, label, score) index, and the best walked down the (user, score) index of quality
    until THEME_CANDIDATES of them have the theme (migration 0024), so a batch reads about
    THEME_CANDIDATES / (the theme's share of the library) index rows, not the theme."""
    themed = and_(
        AssetTag.user_id == user_id, AssetTag.label == label, AssetTag.score >= THEME_MIN_SCORE
    )
    tagged = select(func.count(AssetTag.asset_id.distinct())).where(themed)
    # Photos in the trash (or not ready) keep their tags: few, found from their status.
    not_ready = select(Asset.id).where(
        Asset.user_id == user_id, or_(Asset.status < "ready", Asset.status > "ready")
    )
    count = (session.scalar(tagged) or 0) - (
        session.scalar(tagged.where(AssetTag.asset_id.in_(not_ready))) or 0
    )
    has_theme = (
        select(AssetTag.asset_id).where(themed, AssetTag.asset_id == AssetQuality.asset_id).exists()
    )
    ranked = session.execute(
        select(AssetQuality.asset_id, AssetQuality.duplicate_group, AssetQuality.score)
        .join(Asset, Asset.id == AssetQuality.asset_id)
        .where(
            AssetQuality.user_id == user_id,
            AssetQuality.score.is_not(None),  # the partial index ix_asset_quality_user_score
            Asset.status == "ready",
            has_theme,
        )
        .order_by(AssetQuality.score.desc())
        .limit(THEME_CANDIDATES)
    ).all()
    # Photos without a quality score rank at 0.5: only when the walk got that far (a small
    # theme) can one of them be among the best, and then the theme is read whole.
    if len(ranked) < THEME_CANDIDATES or ranked[-1][2] <= 0.5:
        ranked = _theme_ranked(session, themed)
    groups = {g or a for a, g, _ in ranked}
    if len(ranked) == THEME_CANDIDATES and len(groups) < media.MAX_COLLAGE:
        return count, [a for a, _, _ in _theme_ranked(session, themed, whole=True)]
    return count, [a for a, _, _ in ranked]


def _theme_ranked(
    session: Session, themed: ColumnElement[bool], whole: bool = False
) -> list[Row[tuple[str, str | None, float]]]:
    """The best THEME_CANDIDATES ready photos of a theme (every one when `whole`), best first
    by quality, a photo without a score ranked at 0.5."""
    tagged = (
        select(AssetTag.asset_id)
        .join(Asset, Asset.id == AssetTag.asset_id)
        .where(themed, Asset.status == "ready")
        .distinct()
        .subquery()
    )
    score = func.coalesce(AssetQuality.score, 0.5)
    q = (
        select(tagged.c.asset_id, AssetQuality.duplicate_group, score)
        .outerjoin(AssetQuality, AssetQuality.asset_id == tagged.c.asset_id)
        .order_by(score.desc())
    )
    return list(session.execute(q if whole else q.limit(THEME_CANDIDATES)).all())


def _any_holiday(countries: set[str], days: set[date]) -> bool:
    import holidays

    years = sorted({d.year for d in days})
    for code in countries:
        try:
            calendar = holidays.country_holidays(code, years=years)
        except NotImplementedError:
            continue
        if any(d in calendar for d in days):
            return True
    return False


def _render_kind(s: Suggestion) -> str | None:
    if s.render is None:
        return None
    return s.kind if s.kind in ("recap", "restyle") else "collage"


def _members_hash(assets: list[Asset]) -> str:
    return hashlib.sha256("|".join(sorted(a.id for a in assets)).encode()).hexdigest()[:16]


class IdeasStep(BaseStep):
    """The idea generators over one owner's library: the batch's ideas, or all of them."""

    name = "ideas"
    scope = "creations"
    # Face boxes, clip segments and smiles in what it draws (ideas/media.py); what each idea
    # drew on (`Suggestion.drew_on`): trips' places, quality and tags.
    uses = ("faces", "places", "content")
    reads = ("assets", "asset_tags", "asset_quality", "faces", "people", "asset_places")
    writes = ("ideas", "idea media", "library_state.ideas_until")

    def __init__(self, today: date | None, full: bool | None) -> None:
        self.today, self.full = today, full

    def run(self, session: Session, subject: str) -> int:
        return _generate(session, subject, self.today, self.full)


def refresh_ideas(user_id: str, today: date | None = None, full: bool | None = None) -> int:
    """Create or update this owner's ideas; returns how many were (re)rendered. After a batch
    only the ideas it touched are made again (`batch_suggestions`); a full pass runs at most
    daily, when the library grew by a tenth, or when `full` says so."""
    with session_scope() as session:
        done = run_steps(session, user_id, [IdeasStep(today, full)], user_id)[0]
        return done.value if done.ran else 0


def _made_meanwhile(session: Session, user_id: str, fingerprint: str) -> bool:
    found = select(Idea.id).where(Idea.user_id == user_id, Idea.fingerprint == fingerprint)
    return session.scalar(found) is not None


def _generate(session: Session, user_id: str, today: date | None, full: bool | None) -> int:
    from camroll.analyze.library import FULL_EVERY, FULL_GROWTH, analysed_since, library_state

    state = library_state(session, user_id)
    started = utcnow()
    batch = analysed_since(session, user_id, state.ideas_until)
    if full is None:
        full = (
            batch is None
            or state.ideas_full_at is None
            or started - state.ideas_full_at >= FULL_EVERY
            or len(batch) >= FULL_GROWTH * max(state.full_size, 1)
        )
    faces = may_use("faces")  # people, smiles and faces in photos: only while faces is granted
    if full or batch is None:
        lib = load_library(session, user_id)
        found = suggestions(session, user_id, today, lib, faces=faces)
    else:
        lib, found = batch_suggestions(session, user_id, batch, today, faces=faces)
    # Only what the owner allows now: an idea drawing on a scope that is off would be drawn
    # (a recap's encode), then dropped at its write, every day.
    found = [s for s in found if all(may_use(scope) for scope in s.drew_on)]
    # Only the ideas made again are read (a batch touches a few of the library's hundreds).
    fingerprints = sorted({s.fingerprint for s in found})
    existing = {
        i.fingerprint: i
        for k in range(0, len(fingerprints), _CHUNK)
        for i in session.scalars(
            select(Idea).where(
                Idea.user_id == user_id, Idea.fingerprint.in_(fingerprints[k : k + _CHUNK])
            )
        )
    }
    shown = {a.id for s in found for a in s.assets}
    named: set[str] = (
        {
            a
            for (a,) in session.execute(
                select(Face.asset_id)
                .join(Person, Person.id == Face.person_id)
                .where(
                    Face.user_id == user_id,
                    Person.name.is_not(None),
                    Face.asset_id.in_(shown),
                )
            )
        }
        if faces
        else set()
    )
    dismissed = Counter(
        {
            kind: n
            for kind, n in session.execute(
                select(Idea.kind, func.count())
                .where(Idea.user_id == user_id, Idea.state == "dismissed")
                .group_by(Idea.kind)
            )
        }
    )
    rendered = 0
    todo = []
    for s in found:
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
        if idea is None and _made_meanwhile(session, user_id, s.fingerprint):
            continue  # another pass for this owner made it while this one rendered others
        # Render first, with no write pending: on SQLite a write transaction held through a
        # 30 s video encode would lock every other writer out.
        try:
            data, mime = s.render(session, s.assets) if s.render else (None, None)
        except Exception as e:  # one idea that cannot render must not hold back the rest
            session.rollback()
            log.exception("idea %s for %s failed to render", s.kind, user_id)
            job_runs.record_failure("idea_render", user_id, s.fingerprint, f"{s.kind}: {e!r}")
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
        new = idea is None
        if new:
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
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            if new and _made_meanwhile(session, user_id, s.fingerprint):
                # Another pass for this owner (a batch beside the daily one) wrote this idea
                # while this one rendered it: theirs stands, the rest of this pass goes on.
                log.info("idea %s for %s was made by another pass meanwhile", s.kind, user_id)
                continue
            raise
        if not still_consented(session, user_id, values["scope"].split("+")):
            session.rollback()  # switched off while it rendered: none of it is kept
            log.info("idea %s for %s dropped: a scope it drew on was switched off", s.kind, user_id)
            continue
        if data is not None:
            idea.blob_key = media.store_media(session, user_id, idea.id, data)
            idea.media_mime = mime
            rendered += 1
        session.commit()  # each rendered idea is kept even if a later one fails
        job_runs.clear_failure("idea_render", user_id, s.fingerprint)
    state = library_state(session, user_id)
    state.ideas_until = started
    if full or batch is None:
        state.ideas_full_at = started
    log.info("ideas for %s (%s): %d rendered", user_id, "full" if full else "batch", rendered)
    return rendered
