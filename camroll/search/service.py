"""Search over the owner's library: tags, place names, the names of the people in each photo and
the capture date, found through the database's full-text index (search/index.py) and ranked by
`rank` over the candidates only, so a query costs what it finds, not the library's size.

Nothing is embedded per photo: MiniLM compares the query's words with the library's tag
labels (cached per process). A database without the index (not migrated to 0012) falls back to
the scan: every document of the owner loaded and ranked in memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetTag, Face, Person
from camroll.search import blind, index
from camroll.search.query import ParsedQuery, parse_query
from camroll.search.rank import (
    Hit,
    SearchDoc,
    meaning_tags,
    prefix_match,
    query_terms,
    rank,
    search_docs,
    word_match,
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
    return list(docs.values())


# With an optional CLIP model: a photo matches a description at this cosine, if it is also
# close to the best match (CLIP cosines are low and bunched; only the top of the list means much).
CLIP_FLOOR = 0.2
CLIP_MARGIN = 0.1


def search(session: Session, user_id: str, q: str) -> list[Hit]:
    query = parse_query(q)
    if not index.available(session):
        return scan(session, user_id, q)
    hits = indexed(session, user_id, query)
    seen = {h.asset_id for h in hits}
    return hits + _clip_hits(
        session, user_id, query, seen, lambda ids: index.within(session, user_id, query, ids)
    )


def scan(session: Session, user_id: str, q: str) -> list[Hit]:
    """The search without the index: every document loaded into Python."""
    query = parse_query(q)
    docs = library_docs(session, user_id)
    hits = search_docs(q, docs)
    when = {d.asset_id: d.taken_at for d in docs}

    def in_scope(ids: Iterable[str]) -> set[str]:
        return {a for a in ids if a in when and query.matches_date(when[a])}

    return hits + _clip_hits(session, user_id, query, {h.asset_id for h in hits}, in_scope)


def indexed(session: Session, user_id: str, query: ParsedQuery) -> list[Hit]:
    """Candidates from the index (words, people, then tags by meaning), ranked like the scan."""
    terms = query_terms(query)
    if not terms:
        if not query.has_date:
            return []
        note = [f"date:{' '.join(query.dates)}"]  # "2015": everything from then, newest first
        return [Hit(a, 1.0, list(note)) for a, _day in index.dated(session, user_id, query)]
    found = index.matching(session, user_id, query, [w for t in terms for w in blind.term_words(t)])
    people = [
        pid
        for pid, name in index.named_people(session, user_id).items()
        if any(word_match(t, name, True) or prefix_match(t, name) for t in terms)
    ]
    found |= index.with_people(session, user_id, query, people)
    docs = index.load_docs(session, user_id, found)

    from camroll.search.text import embed_labels, embed_query

    tags = index.library_tags(session, user_id, query)
    labels = embed_labels([*query.terms, *sorted(tags)])
    query_vec = embed_query(query.text)
    by_meaning = meaning_tags(query, docs, tags, query_vec, labels)
    if by_meaning:
        more = index.matching(session, user_id, query, [f"t:{t}" for t in by_meaning]) - found
        docs += index.load_docs(session, user_id, more)
    return rank(query, docs, query_vec, labels, library_tags=tags)


def _clip_hits(
    session: Session,
    user_id: str,
    query: ParsedQuery,
    seen: set[str],
    in_scope: Callable[[Iterable[str]], set[str]],
) -> list[Hit]:
    """Photos whose CLIP image embedding matches the description, after the word matches.
    `in_scope` keeps the ready assets within the query's dates. The embeddings are searched
    through the owner's vector index (`camroll.search.vectors`)."""
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
    found = [
        Hit(a, float(3.0 * s), ["clip"])
        for a, s in sims.items()
        if s >= best - CLIP_MARGIN and a not in seen
    ]
    return sorted(found, key=lambda h: -h.score)
