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
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    literal_column,
    select,
    table,
    text,
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
    if query.months:
        out.append(func.substr(day, 6, 2).in_([f"{m:02d}" for m in sorted(query.months)]))
    if query.date_from:
        out.append(day >= query.date_from.isoformat())
    if query.date_to:
        out.append(day <= query.date_to.isoformat())
    return out


def _ready(asset_id: ColumnElement) -> ColumnElement[bool]:
    return exists().where(Asset.id == asset_id, Asset.status == "ready")


def matching(session: Session, user_id: str, query: ParsedQuery, tagged: Iterable[str]) -> set[str]:
    """Ready assets of this owner with any of these tagged words, within the query's dates."""
    toks = blind.tokens(blind_key(user_id, session.connection()), tagged)
    if not toks:
        return set()
    where = [SearchTerm.user_id == user_id, *date_filter(query, SearchTerm.day)]
    if session.get_bind().dialect.name == "sqlite":
        hits = select(literal_column("rowid")).select_from(table("search_fts"))
        match = " OR ".join(f'"{t}"' for t in toks)
        hits = hits.where(text("search_fts MATCH :m").bindparams(m=match))
        q = select(SearchTerm.asset_id).where(SearchTerm.id.in_(hits), *where)
    else:
        vector = func.to_tsvector(literal_column("'simple'"), SearchTerm.tokens)
        tsq = func.to_tsquery(literal_column("'simple'"), " | ".join(toks))
        q = select(SearchTerm.asset_id).where(vector.op("@@")(tsq), *where)
    found = set(session.scalars(q.distinct()))
    return _only_ready(session, found)


def _only_ready(session: Session, ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(list(ids)):
        out.update(
            session.scalars(select(Asset.id).where(Asset.id.in_(chunk), Asset.status == "ready"))
        )
    return out


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


def dated(session: Session, user_id: str, query: ParsedQuery) -> list[tuple[str, str]]:
    """(asset id, day) of every ready asset within the query's dates, newest first."""
    rows = session.execute(
        select(SearchTerm.asset_id, SearchTerm.day)
        .where(
            SearchTerm.user_id == user_id,
            SearchTerm.kind == "date",
            _ready(SearchTerm.asset_id),
            *date_filter(query, SearchTerm.day),
        )
        .order_by(SearchTerm.day.desc(), SearchTerm.asset_id)
    )
    return [(a, d) for a, d in rows]


def library_tags(session: Session, user_id: str, query: ParsedQuery) -> set[str]:
    """The distinct tag labels of the owner's library (within the query's dates): what a query
    word is compared with for meaning. Tag labels are the curated vocabulary, not secret."""
    q = select(AssetTag.label).where(AssetTag.user_id == user_id)
    if query.has_date:
        q = q.join(
            SearchTerm, and_(SearchTerm.asset_id == AssetTag.asset_id, SearchTerm.kind == "date")
        ).where(*date_filter(query, SearchTerm.day))
    return set(session.scalars(q.distinct()))


def named_people(session: Session, user_id: str) -> dict[str, str]:
    """person id -> name, for the owner's named people (decrypted here: a few hundred at most)."""
    named = select(Person.id, Person.name).where(
        Person.user_id == user_id, Person.name.is_not(None)
    )
    return dict(session.execute(named).all())


def with_people(
    session: Session, user_id: str, query: ParsedQuery, person_ids: Sequence[str]
) -> set[str]:
    """Ready assets showing any of these people, within the query's dates."""
    if not person_ids:
        return set()
    q = (
        select(Face.asset_id)
        .where(Face.user_id == user_id, Face.person_id.in_(list(person_ids)))
        .distinct()
    )
    if query.has_date:
        q = q.join(
            SearchTerm, and_(SearchTerm.asset_id == Face.asset_id, SearchTerm.kind == "date")
        ).where(*date_filter(query, SearchTerm.day))
    return _only_ready(session, session.scalars(q))


def load_docs(session: Session, user_id: str, asset_ids: Iterable[str]) -> list[SearchDoc]:
    """Documents for these assets only: what ranking reads and explains (decrypted places)."""
    docs: dict[str, SearchDoc] = {}
    for chunk in _chunks(sorted(set(asset_ids))):
        for asset_id, day in session.execute(
            select(SearchTerm.asset_id, SearchTerm.day).where(
                SearchTerm.user_id == user_id,
                SearchTerm.kind == "date",
                SearchTerm.asset_id.in_(chunk),
            )
        ):
            docs[asset_id] = SearchDoc(asset_id, date.fromisoformat(day) if day else None)
        for asset_id, label in session.execute(
            select(AssetTag.asset_id, AssetTag.label).where(
                AssetTag.user_id == user_id, AssetTag.asset_id.in_(chunk)
            )
        ):
            if asset_id in docs:
                docs[asset_id].tags.append(label)
        for place in session.scalars(
            select(AssetPlace).where(AssetPlace.user_id == user_id, AssetPlace.asset_id.in_(chunk))
        ):
            if place.asset_id in docs:
                docs[place.asset_id].places = _place_names(place)
        for asset_id, name in session.execute(
            select(Face.asset_id, Person.name)
            .join(Person, Person.id == Face.person_id)
            .where(Face.user_id == user_id, Face.asset_id.in_(chunk), Person.name.is_not(None))
        ):
            if asset_id in docs and name not in docs[asset_id].people:
                docs[asset_id].people.append(name)
    return list(docs.values())


def _chunks(ids: list[_T]) -> Iterable[list[_T]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]
