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


def search(session: Session, user_id: str, q: str) -> list[Hit]:
    return search_docs(q, library_docs(session, user_id))
