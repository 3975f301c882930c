"""Search over the owner's library: tags, place names, the names of the people in each photo and
the capture date, found through the database's full-text index (search/index.py). The database
ranks the matches on the blind tokens and the faces alone (index.ranked: words covered, score,
date) and returns one page; only that page's documents are loaded, decrypted and explained by
`rank`. The database still reads every match once to order them, so a query that matches most of
a large library costs more than a narrow one (about 0.2 s for 30k matches at 50k photos).

Nothing is embedded per photo: MiniLM compares the query's words with the library's tag
labels (cached per process). A database without the index (not migrated to 0012) falls back to
the scan: every document of the owner loaded and ranked in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetTag, Face, Person
from camroll.search import blind, index
from camroll.search.query import ParsedQuery, parse_query
from camroll.search.rank import (
    MIN_PREFIX,
    W_PERSON_EXACT,
    W_PERSON_WORD,
    W_PREFIX,
    W_SIMILAR,
    W_WORD,
    Hit,
    Meaning,
    SearchDoc,
    meaning_of,
    prefix_match,
    query_terms,
    rank,
    search_docs,
    word_match,
    words,
)


def library_docs(session: Session, user_id: str) -> list[SearchDoc]:
    """One document per ready asset of this owner, and nobody else's: the fallback scan."""
    docs: dict[str, SearchDoc] = {}
    for asset_id, sort_at, local in session.execute(
        select(Asset.id, Asset.sort_at, AssetMetadata.taken_at_local)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == user_id, Asset.status == "ready")
    ):
        docs[asset_id] = SearchDoc(asset_id, index.day_of(local, sort_at))
    tags: dict[str, list[str]] = defaultdict(list)
    for asset_id, label in session.execute(
        select(AssetTag.asset_id, AssetTag.label).where(AssetTag.user_id == user_id)
    ):
        tags[asset_id].append(label)
    for place in session.scalars(select(AssetPlace).where(AssetPlace.user_id == user_id)):
        if place.asset_id in docs:
            names = (place.city, place.subregion, place.region, place.country)
            docs[place.asset_id].places = [n for n in names if n]
    for asset_id, name in session.execute(
        select(Face.asset_id, Person.name)
        .join(Person, Person.id == Face.person_id)
        .where(Face.user_id == user_id, Person.name.is_not(None))
    ):
        if asset_id in docs and name not in docs[asset_id].people:
            docs[asset_id].people.append(name)
    for asset_id, labels in tags.items():
        if asset_id in docs:
            docs[asset_id].tags = labels
    return [index.sort_doc(d) for d in docs.values()]


# With an optional CLIP model: a photo matches a description at this cosine, if it is also
# close to the best match (CLIP cosines are low and bunched; only the top of the list means much).
CLIP_FLOOR = 0.2
CLIP_MARGIN = 0.1


@dataclass(frozen=True)
class Results:
    """One page of hits, best first, and how many there are in all."""

    total: int
    hits: list[Hit]


def search(session: Session, user_id: str, q: str) -> list[Hit]:
    """Every hit, best first (tests and tools; the API and the web ask for a page)."""
    return search_page(session, user_id, q, None).hits


def search_page(
    session: Session, user_id: str, q: str, limit: int | None, offset: int = 0
) -> Results:
    """Hits `offset` to `offset + limit` (all with `limit` None): word matches ranked in the
    database, then CLIP matches (if a CLIP model is installed) that the words did not find."""
    query = parse_query(q)
    if not index.available(session):
        hits = scan(session, user_id, q)
        return Results(len(hits), hits[offset : None if limit is None else offset + limit])
    plan = _plan(session, user_id, query)
    found = _word_page(session, user_id, query, plan, limit, offset)

    def seen(ids: Iterable[str]) -> set[str]:
        return _word_hits_among(session, user_id, query, plan, ids)

    clip = _clip_hits(
        session, user_id, query, seen, lambda ids: index.within(session, user_id, query, ids)
    )
    start = max(0, offset - found.total)
    stop = None if limit is None else max(0, offset + limit - found.total)
    return Results(found.total + len(clip), found.hits + clip[start:stop])


def scan(session: Session, user_id: str, q: str) -> list[Hit]:
    """The search without the index: every document loaded into Python."""
    query = parse_query(q)
    docs = library_docs(session, user_id)
    hits = search_docs(q, docs)
    when = {d.asset_id: d.taken_at for d in docs}
    found = {h.asset_id for h in hits}

    def in_scope(ids: Iterable[str]) -> set[str]:
        return {a for a in ids if a in when and query.matches_date(when[a])}

    return hits + _clip_hits(session, user_id, query, lambda ids: found & set(ids), in_scope)


@dataclass(frozen=True)
class _Plan:
    """What the query's words stand for in this library, and the index features they score by."""

    meaning: Meaning
    features: list[index.Feature]
    query_vec: np.ndarray
    labels: dict[str, np.ndarray]


def _plan(session: Session, user_id: str, query: ParsedQuery) -> _Plan | None:
    """Decide, over the owner's whole date-matching library and without loading its documents,
    what rank.py decides over the documents: whether each word matches some label whole (else
    prefixes count), which tags it means, and how each kind of match scores."""
    terms = query_terms(query)
    if not terms:
        return None
    from camroll.search.text import embed_labels, embed_query

    tags = index.library_tags(session, user_id, query)
    names = index.named_people(session, user_id)
    features: list[index.Feature] = []
    whole: dict[str, bool] = {}
    for i, t in enumerate(terms):
        by_name = tuple(sorted(p for p, n in names.items() if word_match(t, n, True)))
        exact = [index.Feature(i, "word", W_WORD, tagged=(blind.term_words(t)[0],))]
        if by_name:
            exact.append(index.Feature(i, "person", W_PERSON_WORD, people=by_name))
        features += exact
        whole[t] = any(word_match(t, tag, False) for tag in tags) or index.any_asset(
            session, user_id, query, exact
        )
        if not whole[t] and len(t) >= MIN_PREFIX:
            features.append(index.Feature(i, "prefix", W_PREFIX, tagged=(f"p:{t}",)))
            by_prefix = tuple(sorted(p for p, n in names.items() if prefix_match(t, n)))
            if by_prefix:
                features.append(index.Feature(i, "prefix", W_PREFIX, people=by_prefix))
    labels = embed_labels([*query.terms, *sorted(tags)])
    query_vec = embed_query(query.text)
    meaning = meaning_of(terms, whole, tags, query_vec, labels)
    for i, t in enumerate(terms):
        for tag, cos in sorted(meaning.similar.get(t, {}).items()):
            features.append(index.Feature(i, "similar", W_SIMILAR * cos, tagged=(f"t:{tag}",)))
    # A person's whole name typed exactly: a bonus per distinct name, as rank.py adds it.
    exact_name = " ".join(terms)
    by_exact: dict[str, list[str]] = defaultdict(list)
    for p, n in names.items():
        if " ".join(words(n)) == exact_name:
            by_exact[n].append(p)
    for n in sorted(by_exact):
        features.append(
            index.Feature(-1, "bonus", W_PERSON_EXACT, people=tuple(sorted(by_exact[n])))
        )
    return _Plan(meaning, features, query_vec, labels)


def indexed(
    session: Session, user_id: str, query: ParsedQuery, limit: int | None = None, offset: int = 0
) -> Results:
    """One page of word matches, ranked like the scan: the database orders every match by
    words covered, score, date and id (index.ranked), and only the page's documents are loaded,
    decrypted and explained by rank.py."""
    return _word_page(session, user_id, query, _plan(session, user_id, query), limit, offset)


def _word_page(
    session: Session,
    user_id: str,
    query: ParsedQuery,
    plan: _Plan | None,
    limit: int | None,
    offset: int,
) -> Results:
    if plan is None:
        if not query.has_date:
            return Results(0, [])
        note = [f"date:{' '.join(query.dates)}"]  # "2015": everything from then, newest first
        total, rows = index.dated(session, user_id, query, limit, offset)
        return Results(total, [Hit(a, 1.0, list(note)) for a, _day in rows])
    total, page = index.ranked(session, user_id, query, plan.features, limit, offset)
    docs = index.load_docs(session, user_id, page)
    hits = rank(query, docs, plan.query_vec, plan.labels, meaning=plan.meaning)
    return Results(total, hits)


def _word_hits_among(
    session: Session, user_id: str, query: ParsedQuery, plan: _Plan | None, ids: Iterable[str]
) -> set[str]:
    """Those of `ids` that the words find (what CLIP must not list twice)."""
    if plan is None:
        if not query.has_date:
            return set()
        return index.within(session, user_id, query, ids)
    out: set[str] = set()
    chunk = sorted(set(ids))
    for i in range(0, len(chunk), 2000):
        out.update(
            index.ranked(session, user_id, query, plan.features, None, 0, chunk[i : i + 2000])[1]
        )
    return out


def _clip_hits(
    session: Session,
    user_id: str,
    query: ParsedQuery,
    seen: Callable[[Iterable[str]], set[str]],
    in_scope: Callable[[Iterable[str]], set[str]],
) -> list[Hit]:
    """Photos whose CLIP image embedding matches the description, after the word matches.
    `seen` tells which of some ids the words found; `in_scope` keeps the ready assets within
    the query's dates. The embeddings are searched through the owner's vector index
    (`camroll.search.vectors`)."""
    from camroll.inference.registry import get_clip
    from camroll.search.vectors import clip_similarities

    clip = get_clip() if query.terms else None
    if clip is None:
        return []
    text = clip.encode_texts([f"a photo of {' '.join(query.terms)}"])[0]
    sims = clip_similarities(session, user_id, clip.name, clip.version, text, CLIP_FLOOR)
    allowed = in_scope(sims) if sims else set()
    sims = {a: s for a, s in sims.items() if a in allowed}
    if not sims:
        return []
    best = max(sims.values())
    by_words = seen(a for a, s in sims.items() if s >= best - CLIP_MARGIN)
    found = [
        Hit(a, float(3.0 * s), ["clip"])
        for a, s in sims.items()
        if s >= best - CLIP_MARGIN and a not in by_words
    ]
    return sorted(found, key=lambda h: -h.score)
