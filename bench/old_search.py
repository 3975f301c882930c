"""The index path as it was before the database ranked a page (commit 8f2480e), for
bench/scale_search.py to time beside the new one: every candidate the index finds is loaded,
decrypted and ranked in Python. Its queries are copied here because search/index.py no longer
has them; ranking is rank.py's (unchanged for a full list of documents)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import literal_column, select, table, text
from sqlalchemy.orm import Session

from camroll.crypto.fields import blind_key
from camroll.db.models import Asset, Face, SearchTerm
from camroll.search import blind, index
from camroll.search.query import ParsedQuery
from camroll.search.rank import (
    Hit,
    SearchDoc,
    _similar_tags,
    _whole,
    prefix_match,
    query_terms,
    rank,
    word_match,
)


def _only_ready(session: Session, ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    ids = list(ids)
    for i in range(0, len(ids), 2000):
        chunk = ids[i : i + 2000]
        out.update(
            session.scalars(select(Asset.id).where(Asset.id.in_(chunk), Asset.status == "ready"))
        )
    return out


def _matching(
    session: Session, user_id: str, query: ParsedQuery, tagged: Iterable[str]
) -> set[str]:
    toks = blind.tokens(blind_key(user_id, session.connection()), tagged)
    if not toks:
        return set()
    where = [SearchTerm.user_id == user_id, *index.date_filter(query, SearchTerm.day)]
    if session.get_bind().dialect.name == "sqlite":
        hits = select(literal_column("rowid")).select_from(table("search_fts"))
        match = " OR ".join(f'"{t}"' for t in toks)
        hits = hits.where(text("search_fts MATCH :m").bindparams(m=match))
        q = select(SearchTerm.asset_id).where(SearchTerm.id.in_(hits), *where)
    else:
        from sqlalchemy import func

        vector = func.to_tsvector(literal_column("'simple'"), SearchTerm.tokens)
        tsq = func.to_tsquery(literal_column("'simple'"), " | ".join(toks))
        q = select(SearchTerm.asset_id).where(vector.op("@@")(tsq), *where)
    return _only_ready(session, set(session.scalars(q.distinct())))


def _with_people(
    session: Session, user_id: str, query: ParsedQuery, person_ids: Sequence[str]
) -> set[str]:
    from sqlalchemy import and_

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
        ).where(*index.date_filter(query, SearchTerm.day))
    return _only_ready(session, session.scalars(q))


def _meaning_tags(query, docs, library_tags, query_vec, labels) -> set[str]:
    terms = query_terms(query)
    pool = [d for d in docs if query.matches_date(d.taken_at)]
    whole = _whole(terms, library_tags, pool)
    similar = _similar_tags(terms, library_tags, whole, query_vec, labels)
    return {tag for found in similar.values() for tag in found}


def indexed_before(session: Session, user_id: str, query: ParsedQuery) -> list[Hit]:
    """Every hit, best first, as the index path found and ranked them before."""
    terms = query_terms(query)
    if not terms:
        if not query.has_date:
            return []
        note = [f"date:{' '.join(query.dates)}"]
        _total, rows = index.dated(session, user_id, query, None)
        return [Hit(a, 1.0, list(note)) for a, _day in rows]
    found = _matching(session, user_id, query, [w for t in terms for w in blind.term_words(t)])
    people = [
        pid
        for pid, name in index.named_people(session, user_id).items()
        if any(word_match(t, name, True) or prefix_match(t, name) for t in terms)
    ]
    found |= _with_people(session, user_id, query, people)
    docs: list[SearchDoc] = index.load_docs(session, user_id, found)

    from camroll.search.text import embed_labels, embed_query

    tags = index.library_tags(session, user_id, query)
    labels = embed_labels([*query.terms, *sorted(tags)])
    query_vec = embed_query(query.text)
    by_meaning = _meaning_tags(query, docs, tags, query_vec, labels)
    if by_meaning:
        more = _matching(session, user_id, query, [f"t:{t}" for t in by_meaning]) - found
        docs += index.load_docs(session, user_id, more)
    return rank(query, docs, query_vec, labels, library_tags=tags)
