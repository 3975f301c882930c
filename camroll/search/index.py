"""The search index: blind tokens per asset in `search_terms`, found through the database's
full-text index (SQLite FTS5, PostgreSQL tsvector + GIN; migration 0012).

Rows are written per asset when it is analysed (and backfilled by the library refresh for assets
analysis skipped), one per source and scope: the capture day (`cloud_processing`), the tags
(their own scope, "content" or "content+faces") and the place names ("places"). So revoking a
scope deletes exactly the tokens it allowed, through the same provenance as every derived row.
People are not tokenised per asset: names change (renames, merges, reclusters), so a query
matches the owner's named people (few) and finds their photos through the faces index.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    case,
    delete,
    exists,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from camroll.crypto.fields import blind_key
from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetTag, Face, Person, SearchTerm
from camroll.search import blind
from camroll.search.query import ParsedQuery
from camroll.search.rank import SearchDoc

log = logging.getLogger(__name__)
_T = TypeVar("_T")
INDEX_MODEL = ("camroll-blind-index", "1")
_CHUNK = 2000  # ids per IN (...) list


def day_of(local: str | None, fallback: datetime) -> date:
    """The capture day as the owner's calendar had it; the upload's UTC day when unknown."""
    if local:
        try:
            return datetime.fromisoformat(local).date()
        except ValueError:
            pass
    return fallback.date()


def _row(asset: Asset, kind: str, scope: str, tokens: list[str], day: str) -> SearchTerm:
    return SearchTerm(
        user_id=asset.user_id,
        asset_id=asset.id,
        scope=scope,
        model=INDEX_MODEL[0],
        model_version=INDEX_MODEL[1],
        kind=kind,
        tokens=" ".join(tokens),
        day=day,
    )


def index_asset(session: Session, asset: Asset) -> None:
    """(Re)write the asset's rows from what analysis stored for it now: idempotent."""
    index_assets(session, [asset])


def index_assets(session: Session, assets: Sequence[Asset]) -> None:
    """`index_asset` for many assets of one owner at once (a few queries per chunk)."""
    if not assets:
        return
    key = blind_key(assets[0].user_id, session.connection())
    for chunk in _chunks(list(assets)):
        ids = [a.id for a in chunk]
        session.execute(
            delete(SearchTerm).where(SearchTerm.asset_id.in_(ids)),
            execution_options={"synchronize_session": False},
        )
        local = dict(
            session.execute(
                select(AssetMetadata.asset_id, AssetMetadata.taken_at_local).where(
                    AssetMetadata.asset_id.in_(ids)
                )
            ).all()
        )
        tags: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for asset_id, label, scope in session.execute(
            select(AssetTag.asset_id, AssetTag.label, AssetTag.scope).where(
                AssetTag.asset_id.in_(ids)
            )
        ):
            tags[asset_id][scope].append(label)
        places = {
            p.asset_id: p
            for p in session.scalars(select(AssetPlace).where(AssetPlace.asset_id.in_(ids)))
        }
        rows = []
        for asset in chunk:
            day = day_of(local.get(asset.id), asset.sort_at).isoformat()
            rows.append(_row(asset, "date", "cloud_processing", [], day))
            for scope, labels in sorted(tags[asset.id].items()):
                words = blind.label_words(labels, whole_labels=True)
                rows.append(_row(asset, "tags", scope, blind.tokens(key, words), day))
            if (place := places.get(asset.id)) is not None:
                words = blind.label_words(_place_names(place), whole_labels=False)
                rows.append(_row(asset, "places", place.scope, blind.tokens(key, words), day))
        session.add_all(rows)
        session.flush()


def index_missing(session: Session, user_id: str) -> int:
    """Index the owner's ready assets that have no rows yet (analysis skipped, or made before
    the index existed); returns how many."""
    indexed = exists().where(SearchTerm.asset_id == Asset.id, SearchTerm.kind == "date")
    assets = list(
        session.scalars(
            select(Asset).where(Asset.user_id == user_id, Asset.status == "ready", ~indexed)
        )
    )
    index_assets(session, assets)
    return len(assets)


def index_everyone() -> int:
    """Index every owner's unindexed assets: once, when an upgrade creates the index."""
    from camroll.crypto.keys import KeyDestroyed
    from camroll.db.engine import session_scope
    from camroll.db.models import User

    with session_scope() as s:
        users = list(s.scalars(select(User.id)))
    done = 0
    for user_id in users:
        try:
            with session_scope() as s:
                done += index_missing(s, user_id)
        except KeyDestroyed:  # a purged account's rows are going anyway
            continue
    with session_scope() as s:
        if s.get_bind().dialect.name == "postgresql":  # the planner needs to know the new rows
            s.execute(text("ANALYZE search_terms"))
    log.info("search index: %d assets of %d owners indexed", done, len(users))
    return done


def _place_names(place: AssetPlace) -> list[str]:
    names = (place.city, place.subregion, place.region, place.country)
    return [n for n in names if n]


# --- queries ------------------------------------------------------------------------------


def available(session: Session) -> bool:
    """Whether this database has the full-text index (a database migrated to 0012)."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite":
        found = session.execute(
            text("SELECT 1 FROM sqlite_master WHERE type='table' AND name='search_fts'")
        ).first()
        return found is not None
    return bind.dialect.name == "postgresql"


def date_filter(query: ParsedQuery, day: ColumnElement) -> list[ColumnElement[bool]]:
    """`query.matches_date` in SQL over a YYYY-MM-DD column."""
    if not query.has_date:
        return []
    out: list[ColumnElement[bool]] = [day.is_not(None)]
    if query.years:
        out.append(func.substr(day, 1, 4).in_([f"{y:04d}" for y in sorted(query.years)]))
        # The same, as a range an index on the day can answer.
        out += [day >= f"{min(query.years):04d}-01-01", day <= f"{max(query.years):04d}-12-31"]
    if query.months:
        out.append(func.substr(day, 6, 2).in_([f"{m:02d}" for m in sorted(query.months)]))
    if query.date_from:
        out.append(day >= query.date_from.isoformat())
    if query.date_to:
        out.append(day <= query.date_to.isoformat())
    return out


def _ready(asset_id: ColumnElement) -> ColumnElement[bool]:
    return exists().where(Asset.id == asset_id, Asset.status == "ready")


@dataclass(frozen=True)
class Feature:
    """One way an asset scores for one query word, as rank.py scores it: `tagged` words in its
    tag or place rows, or a face of one of `people`. Per word the best kind counts, in the
    order of KINDS (a person's name beats a tag or place word, which beats a prefix, which beats
    a tag by meaning); within a kind the highest weight. `term` -1 is the bonus for a person's
    whole name typed exactly: it adds its weight on top and covers no word."""

    term: int
    kind: str
    weight: float
    tagged: tuple[str, ...] = ()
    people: tuple[str, ...] = ()


KINDS = ("person", "word", "prefix", "similar")


def _owner_filter(
    session: Session, user_id: str, column: ColumnElement = SearchTerm.user_id
) -> ColumnElement[bool]:
    """`user_id = owner` that SQLite cannot answer from its user index: without planner
    statistics it would walk all the owner's rows and probe the match (or the page's ids) for
    each, where the match or the ids must lead. PostgreSQL plans from its statistics."""
    if session.get_bind().dialect.name == "sqlite":
        return column.concat("") == user_id
    return column == user_id


def _feature_rows(
    session: Session,
    user_id: str,
    query: ParsedQuery,
    f: Feature,
    slot: int,
    among: Sequence[str] | None = None,
):
    """(asset id, slot, weight, day) for every asset of the owner with this feature, within the
    query's dates (and among these ids only, when given)."""
    cols = (literal(slot, Integer).label("s"), literal(f.weight, Float).label("w"))
    ids = [] if among is None else [SearchTerm.asset_id.in_(list(among))]
    if f.people:  # the day (and whether the photo is indexed at all) from its date row
        return (
            select(Face.asset_id.label("a"), *cols, SearchTerm.day.label("day"))
            .join(
                SearchTerm,
                and_(
                    SearchTerm.asset_id == Face.asset_id,
                    SearchTerm.kind == "date",
                    _owner_filter(session, user_id),
                ),
            )
            .where(Face.user_id == user_id, Face.person_id.in_(list(f.people)))
            .where(*date_filter(query, SearchTerm.day), *ids)
        )
    toks = blind.tokens(blind_key(user_id, session.connection()), f.tagged)
    where = [_owner_filter(session, user_id), *date_filter(query, SearchTerm.day), *ids]
    # Every row of an asset carries its capture day, so the match needs no date row.
    q = select(SearchTerm.asset_id.label("a"), *cols, SearchTerm.day.label("day"))
    if session.get_bind().dialect.name == "sqlite":
        match = " OR ".join(f'"{t}"' for t in toks)
        fts = (
            select(literal_column("rowid").label("rowid"))
            .select_from(table("search_fts"))
            .where(literal_column("search_fts").op("MATCH")(literal(match)))
            .subquery()
        )
        return q.join(fts, SearchTerm.id == fts.c.rowid).where(*where)
    vector = func.to_tsvector(literal_column("'simple'"), SearchTerm.tokens)
    tsq = func.to_tsquery(literal_column("'simple'"), " | ".join(toks))
    return q.where(vector.op("@@")(tsq), *where)


def ranked(
    session: Session,
    user_id: str,
    query: ParsedQuery,
    features: Sequence[Feature],
    limit: int | None,
    offset: int = 0,
    among: Sequence[str] | None = None,
) -> tuple[int, list[str]]:
    """(how many ready assets of the owner within the query's dates have any feature, the ids
    of one page of them, best first): covering more words, then the higher score, then newer,
    then by id, the order of rank.py. Only the page leaves the database; the score is summed
    word by word in rank.py's order so equal scores are equal to the last bit, as in Python."""
    if not features:
        return 0, []
    # One slot per word and kind (its weight the best of the kind), one per name bonus.
    slot: dict[tuple[int, str], int] = {}
    for n, f in enumerate(features):
        slot.setdefault((f.term, f.kind) if f.term >= 0 else (-1 - n, f.kind), len(slot))
    rows = [
        _feature_rows(
            session,
            user_id,
            query,
            f,
            slot[(f.term, f.kind) if f.term >= 0 else (-1 - n, f.kind)],
            among,
        )
        for n, f in enumerate(features)
    ]
    found = union_all(*rows).subquery("found")
    per_asset = (
        select(
            found.c.a,
            func.max(found.c.day).label("day"),
            *[func.max(case((found.c.s == i, found.c.w))).label(f"f{i}") for i in range(len(slot))],
        )
        .group_by(found.c.a)
        .subquery("per_asset")
    )
    zero = literal(0.0, Float)
    score: ColumnElement = zero
    covered: ColumnElement = literal(0, Integer)
    for term in sorted({t for t, _ in slot if t >= 0}):
        best = func.coalesce(
            *[per_asset.c[f"f{slot[(term, k)]}"] for k in KINDS if (term, k) in slot], zero
        )
        score = score + best
        covered = covered + case((best > 0, 1), else_=0)
    for (t, _), i in slot.items():
        if t < 0:
            score = score + func.coalesce(per_asset.c[f"f{i}"], zero)
    q = (
        select(per_asset.c.a, func.count().over().label("total"))
        .join(Asset, and_(Asset.id == per_asset.c.a, Asset.status == "ready"))
        .order_by(covered.desc(), score.desc(), per_asset.c.day.desc().nulls_last(), per_asset.c.a)
    )
    if limit is not None:
        q = q.limit(limit)
    if offset:
        q = q.offset(offset)
    page = session.execute(q).all()
    if page:
        return int(page[0].total), [a for a, _ in page]
    if offset:  # past the end: the count alone
        return ranked(session, user_id, query, features, 1, 0, among)[0], []
    return 0, []


def any_asset(
    session: Session, user_id: str, query: ParsedQuery, features: Sequence[Feature]
) -> bool:
    """Whether any ready asset of the owner within the query's dates has one of these features
    (stops at the first)."""
    if not features:
        return False
    found = union_all(*[_feature_rows(session, user_id, query, f, 0) for f in features]).subquery(
        "found"
    )
    q = select(found.c.a).join(Asset, and_(Asset.id == found.c.a, Asset.status == "ready")).limit(1)
    return session.execute(q).first() is not None


def within(session: Session, user_id: str, query: ParsedQuery, ids: Iterable[str]) -> set[str]:
    """Those of `ids` that are the owner's ready assets within the query's dates."""
    out: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        out.update(
            session.scalars(
                select(SearchTerm.asset_id).where(
                    SearchTerm.user_id == user_id,
                    SearchTerm.kind == "date",
                    SearchTerm.asset_id.in_(chunk),
                    _ready(SearchTerm.asset_id),
                    *date_filter(query, SearchTerm.day),
                )
            )
        )
    return out


def dated(
    session: Session, user_id: str, query: ParsedQuery, limit: int | None, offset: int = 0
) -> tuple[int, list[tuple[str, str]]]:
    """(how many, one page of (asset id, day)) of the ready assets within the query's dates,
    newest first."""
    q = (
        select(SearchTerm.asset_id, SearchTerm.day, func.count().over().label("total"))
        .where(
            SearchTerm.user_id == user_id,
            SearchTerm.kind == "date",
            _ready(SearchTerm.asset_id),
            *date_filter(query, SearchTerm.day),
        )
        .order_by(SearchTerm.day.desc().nulls_last(), SearchTerm.asset_id)
        .limit(limit)
        .offset(offset or None)
    )
    rows = session.execute(q).all()
    if rows:
        return int(rows[0].total), [(a, d) for a, d, _ in rows]
    if offset:  # past the end: the count alone
        return dated(session, user_id, query, 1)[0], []
    return 0, []


_LABELS = text(
    "WITH RECURSIVE labels(label) AS ("
    " SELECT min(label) FROM asset_tags WHERE user_id = :u"
    " UNION ALL SELECT (SELECT min(t.label) FROM asset_tags t"
    "  WHERE t.user_id = :u AND t.label > labels.label)"
    " FROM labels WHERE labels.label IS NOT NULL"
    ") SELECT label FROM labels WHERE label IS NOT NULL"
)


def library_tags(session: Session, user_id: str, query: ParsedQuery) -> set[str]:
    """The distinct tag labels of the owner's library (within the query's dates): what a query
    word is compared with for meaning. Tag labels are the curated vocabulary, not secret.
    Read by skipping through the (user_id, label) index, one probe per label, not every tag row;
    with dates, each label is kept if one photo within them has it (stops at the first)."""
    labels = list(session.scalars(_LABELS.bindparams(u=user_id)))
    if not query.has_date:
        return set(labels)
    kept: set[str] = set()
    for label in labels:
        q = (
            select(AssetTag.asset_id)
            .join(
                SearchTerm,
                and_(
                    SearchTerm.asset_id == AssetTag.asset_id,
                    SearchTerm.kind == "date",
                    _owner_filter(session, user_id),
                ),
            )
            .where(AssetTag.user_id == user_id, AssetTag.label == label)
            .where(*date_filter(query, SearchTerm.day))
            .limit(1)
        )
        if session.execute(q).first() is not None:
            kept.add(label)
    return kept


def named_people(session: Session, user_id: str) -> dict[str, str]:
    """person id -> name, for the owner's named people (decrypted here: a few hundred at most)."""
    named = select(Person.id, Person.name).where(
        Person.user_id == user_id, Person.name.is_not(None)
    )
    return dict(session.execute(named).all())


def load_docs(session: Session, user_id: str, asset_ids: Iterable[str]) -> list[SearchDoc]:
    """Documents for these assets only: what ranking reads and explains (decrypted places)."""
    docs: dict[str, SearchDoc] = {}
    for chunk in _chunks(sorted(set(asset_ids))):
        for asset_id, day in session.execute(
            select(SearchTerm.asset_id, SearchTerm.day).where(
                _owner_filter(session, user_id),
                SearchTerm.kind == "date",
                SearchTerm.asset_id.in_(chunk),
            )
        ):
            docs[asset_id] = SearchDoc(asset_id, date.fromisoformat(day) if day else None)
        for asset_id, label in session.execute(
            select(AssetTag.asset_id, AssetTag.label).where(
                _owner_filter(session, user_id, AssetTag.user_id), AssetTag.asset_id.in_(chunk)
            )
        ):
            if asset_id in docs:
                docs[asset_id].tags.append(label)
        for place in session.scalars(
            select(AssetPlace).where(
                _owner_filter(session, user_id, AssetPlace.user_id),
                AssetPlace.asset_id.in_(chunk),
            )
        ):
            if place.asset_id in docs:
                docs[place.asset_id].places = _place_names(place)
        for asset_id, name in session.execute(
            select(Face.asset_id, Person.name)
            .join(Person, Person.id == Face.person_id)
            .where(
                _owner_filter(session, user_id, Face.user_id),
                Face.asset_id.in_(chunk),
                Person.name.is_not(None),
            )
        ):
            if asset_id in docs and name not in docs[asset_id].people:
                docs[asset_id].people.append(name)
    return [sort_doc(d) for d in docs.values()]


def sort_doc(doc: SearchDoc) -> SearchDoc:
    """Tags and names in one order, whatever order the database read them in: a word that
    matches two of them is explained by the same one (the first) on every path."""
    doc.tags.sort()
    doc.people.sort()
    return doc


def _chunks(ids: list[_T]) -> Iterable[list[_T]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]
