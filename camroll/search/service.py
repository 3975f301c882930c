"""Search over the owner's library: documents built from what analysis stored (tags, place
names, the names of the people in each photo, the capture date), ranked by `rank`.

Nothing is embedded per photo: MiniLM compares the query's words with the library's tag
labels (cached per process), so search adds no derived data of its own to hold or delete.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AssetMetadata, AssetPlace, AssetTag, Face, Person
from camroll.search.rank import Hit, SearchDoc, search_docs


def _day(local: str | None, fallback: datetime) -> date:
    if local:
        try:
            return datetime.fromisoformat(local).date()
        except ValueError:
            pass
    return fallback.date()


def library_docs(session: Session, user_id: str) -> list[SearchDoc]:
    """One document per ready asset of this owner, and nobody else's."""
    docs: dict[str, SearchDoc] = {}
    for asset_id, sort_at, local in session.execute(
        select(Asset.id, Asset.sort_at, AssetMetadata.taken_at_local)
        .outerjoin(AssetMetadata, AssetMetadata.asset_id == Asset.id)
        .where(Asset.user_id == user_id, Asset.status == "ready")
    ):
        docs[asset_id] = SearchDoc(asset_id, _day(local, sort_at))
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
    docs = library_docs(session, user_id)
    hits = search_docs(q, docs)
    return hits + _clip_hits(session, user_id, q, docs, {h.asset_id for h in hits})


def _clip_hits(
    session: Session, user_id: str, q: str, docs: list[SearchDoc], seen: set[str]
) -> list[Hit]:
    """Photos whose CLIP image embedding matches the description, after the word matches."""
    import numpy as np

    from camroll.analyze.registry import get_clip
    from camroll.db.models import AssetEmbedding
    from camroll.search.query import parse_query

    query = parse_query(q)
    rows = session.execute(
        select(AssetEmbedding.asset_id, AssetEmbedding.vector).where(
            AssetEmbedding.user_id == user_id
        )
    ).all()
    clip = get_clip() if rows and query.terms else None
    if clip is None:
        return []
    when = {d.asset_id: d.taken_at for d in docs}
    ids = [a for a, _ in rows if a in when and query.matches_date(when[a])]
    if not ids:
        return []
    by_id = dict(rows)
    vectors = np.stack([np.frombuffer(by_id[a], dtype="<f4") for a in ids])
    text = clip.encode_texts([f"a photo of {' '.join(query.terms)}"])[0]
    sims = vectors @ text
    best = float(sims.max())
    found = [
        Hit(a, float(3.0 * s), ["clip"])
        for a, s in zip(ids, sims, strict=True)
        if s >= CLIP_FLOOR and s >= best - CLIP_MARGIN and a not in seen
    ]
    return sorted(found, key=lambda h: -h.score)
