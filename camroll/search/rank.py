"""Rank a user's assets for a parsed query: date filter, keywords, then meaning.

Keywords match tags, place names and people's names, case- and accent-insensitively, by whole word
with light plural stemming ("beaches" finds "beach"); a prefix ("yos") counts only when the word
matches nothing whole, so "cat" does not drag in "cathedral". MiniLM supplies meaning: a query word
is compared with each tag of the library ("puppy" finds "dog", "seaside" finds "beach"). Assets
that match nothing, by word or by meaning, are left out. Assets covering more of the query's
words come first, then higher scores, then newer ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np

from camroll.search.query import ParsedQuery, normalize, parse_query

# Score of one query word by how it matched. A person's whole name typed exactly wins outright;
# a meaning match must stay below a real word match.
W_PERSON_EXACT = 8.0
W_PERSON_WORD = 5.0
W_WORD = 4.0
W_PREFIX = 2.0
W_SIMILAR = 4.0  # times the cosine (a good synonym is ~0.75 -> 3.0)

# all-MiniLM-L6-v2 cosines between single words: synonyms score 0.6-0.85 (puppy/dog 0.80,
# seaside/beach 0.73, ship/boat 0.60), unrelated words up to ~0.55 (puppy/cat 0.53, vehicle/road
# 0.58 while vehicle/car is 0.87). So a tag must clear a floor AND be near the word's best tag.
LABEL_FLOOR = 0.55
LABEL_FLOOR_WORD = 0.75
LABEL_MARGIN = 0.12

MIN_PREFIX = 3
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class SearchDoc:
    asset_id: str
    taken_at: date | None
    tags: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Hit:
    asset_id: str
    score: float
    matched: list[str]  # "person:Anna", "tag:beach", "place:...", "similar:dog", "date:2015"


def stem(word: str) -> str:
    """Light English plural stemming, the same on both sides: beaches/beach, puppies/puppy."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=65536)
def words(label: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(normalize(label)))


@lru_cache(maxsize=65536)
def _stems(label: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(label))


def word_match(term: str, label: str, person: bool) -> bool:
    # Names are not stemmed: "Charles" is not the plural of "Charle".
    return term in words(label) if person else stem(term) in _stems(label)


def prefix_match(term: str, label: str) -> bool:
    return len(term) >= MIN_PREFIX and any(w.startswith(term) for w in words(label))


def _sorted(hits: list[tuple[int, float, date | None, Hit]]) -> list[Hit]:
    hits.sort(key=lambda h: (-h[0], -h[1], -(h[2].toordinal() if h[2] else 0), h[3].asset_id))
    return [h[3] for h in hits]


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).ravel()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def query_terms(query: ParsedQuery) -> list[str]:
    # "anne-marie" is two words, as the names and tags it should match are split.
    return list(dict.fromkeys(w for t in query.terms for w in _WORD.findall(t)))


def _whole(terms: list[str], tags: set[str], pool: Sequence[SearchDoc]) -> dict[str, bool]:
    """Whether each word matches some label whole; prefixes are the fallback for words typed
    halfway, only where the word matches nothing whole."""
    places = {p for d in pool for p in d.places} | tags
    people = {p for d in pool for p in d.people}
    return {
        t: any(word_match(t, x, False) for x in places)
        or any(word_match(t, x, True) for x in people)
        for t in terms
    }


@dataclass(frozen=True)
class Meaning:
    """What each query word stands for, decided over the whole (date-matching) library: whether
    it matches some label whole (else a prefix counts), and the tags it means by similarity."""

    whole: dict[str, bool]
    similar: dict[str, dict[str, float]]


def meaning_of(
    terms: list[str],
    whole: dict[str, bool],
    library_tags: set[str],
    query_embedding: np.ndarray | None,
    label_embeddings: Mapping[str, np.ndarray] | None,
) -> Meaning:
    """The Meaning of the query words, given `whole` (from the library's labels and names): the
    search index computes `whole` in the database and ranks with this."""
    similar = _similar_tags(terms, library_tags, whole, query_embedding, label_embeddings)
    return Meaning(whole, similar)


def rank(
    query: ParsedQuery,
    docs: Sequence[SearchDoc],
    query_embedding: np.ndarray | None = None,
    label_embeddings: Mapping[str, np.ndarray] | None = None,
    library_tags: set[str] | None = None,
    meaning: Meaning | None = None,
) -> list[Hit]:
    """Hits, best first. query_embedding is of query.text; label_embeddings maps each query term
    and each tag to its vector (text.embed_labels). Without them, matching is by words only.
    `docs` may be only the candidates the search index found; `library_tags` are then the tags
    of the whole date-matching library, which decide what a word means (defaults to the docs'),
    or `meaning` decided over the library already (then `docs` may be any subset: one page)."""
    terms = query_terms(query)
    if not terms and not query.has_date:
        return []
    pool = [d for d in docs if query.matches_date(d.taken_at)]
    date_note = [f"date:{' '.join(query.dates)}"] if query.has_date else []
    if not terms:  # "2015": everything from then, newest first
        return _sorted([(0, 1.0, d.taken_at, Hit(d.asset_id, 1.0, list(date_note))) for d in pool])

    if meaning is None:
        tags = library_tags if library_tags is not None else {t for d in pool for t in d.tags}
        whole = _whole(terms, tags, pool)
        meaning = meaning_of(terms, whole, tags, query_embedding, label_embeddings)
    whole, similar = meaning.whole, meaning.similar
    exact_name = " ".join(terms)

    results: list[tuple[int, float, date | None, Hit]] = []
    for d in pool:
        covered, score, matched = 0, 0.0, []
        for t in terms:
            best, why = _best_keyword(t, d, allow_prefix=not whole[t])
            if best == 0.0:
                for tag in d.tags:
                    s = similar.get(t, {}).get(tag)
                    if s is not None and W_SIMILAR * s > best:
                        best, why = W_SIMILAR * s, f"similar:{tag}"
            if best > 0.0:
                covered += 1
                score += best
                matched.append(why)
        for p in d.people:
            if " ".join(words(p)) == exact_name:
                score += W_PERSON_EXACT
        if covered:
            hit = Hit(d.asset_id, round(score, 4), list(dict.fromkeys(matched)) + date_note)
            results.append((covered, score, d.taken_at, hit))
    return _sorted(results)


def _best_keyword(term: str, d: SearchDoc, allow_prefix: bool) -> tuple[float, str]:
    best, why = 0.0, ""
    for p in d.people:
        if word_match(term, p, True):
            return W_PERSON_WORD, f"person:{p}"
        if allow_prefix and prefix_match(term, p) and best < W_PREFIX:
            best, why = W_PREFIX, f"person:{p}"
    for kind, labels in (("tag", d.tags), ("place", d.places)):
        for x in labels:
            if word_match(term, x, False):
                return W_WORD, f"{kind}:{x}"
            if allow_prefix and prefix_match(term, x) and best < W_PREFIX:
                best, why = W_PREFIX, f"{kind}:{x}"
    return best, why


def _similar_tags(
    terms: list[str],
    tags: set[str],
    whole: dict[str, bool],
    query_embedding: np.ndarray | None,
    label_embeddings: Mapping[str, np.ndarray] | None,
) -> dict[str, dict[str, float]]:
    """term -> {tag: cosine} for the tags that mean the term without sharing a word with it."""
    if not label_embeddings or not tags:
        return {}
    # "dogs" and "dog" are one label: each gets the better cosine of the two, so a plural tag is
    # never cut by the margin its singular sets.
    groups: dict[str, list[str]] = {}
    for tag in tags:
        if tag in label_embeddings:
            groups.setdefault(" ".join(sorted(_stems(tag))), []).append(tag)
    out: dict[str, dict[str, float]] = {}
    for t in terms:
        vec = label_embeddings.get(t)
        if vec is None and len(terms) == 1 and query_embedding is not None:
            vec = query_embedding
        if vec is None:
            continue
        q = _unit(vec)
        sims = {
            key: max(float(_unit(label_embeddings[tag]) @ q) for tag in members)
            for key, members in groups.items()
            if not any(word_match(t, tag, False) for tag in members)
        }
        if not sims:
            continue
        top = max(sims.values())
        # A word that matches some asset by name only widens to near-synonyms (dog -> puppy 0.80),
        # not to neighbours (dog -> cat 0.66).
        floor = LABEL_FLOOR_WORD if whole[t] else LABEL_FLOOR
        keep = {
            tag: s
            for key, s in sims.items()
            if s >= floor and s >= top - LABEL_MARGIN
            for tag in groups[key]
        }
        if keep:
            out[t] = keep
    return out


def search_docs(q: str, docs: Sequence[SearchDoc], semantic: bool = True) -> list[Hit]:
    """Parse, embed (query text, its words and the pool's tags, all cached) and rank: the scan
    over documents in memory, for tests and for a database without the search index."""
    query = parse_query(q)
    if not semantic or not query.terms:
        return rank(query, docs)
    from camroll.search.text import embed_labels, embed_query

    tags = {t for d in docs for t in d.tags}
    labels = embed_labels([*query.terms, *sorted(tags)])
    return rank(query, docs, embed_query(query.text), labels)
