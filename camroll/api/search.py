"""`GET /api/search?q=`: tags, places, people's names and dates, ranked."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from camroll import assets
from camroll.api.assets import AssetOut, asset_out
from camroll.api.deps import Caller, caller, db
from camroll.privacy.audit import record
from camroll.search.service import search_page

router = APIRouter(prefix="/api", tags=["search"])


class SearchHit(BaseModel):
    asset: AssetOut
    score: float
    matched: list[str]


class SearchPage(BaseModel):
    query: str
    total: int
    items: list[SearchHit]


@router.get("/search", response_model=SearchPage)
def search_assets(
    q: str = Query(..., min_length=1, max_length=200, description='e.g. "beach 2015", "Anna"'),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(
        0, ge=0, le=10**9, description="hits to skip: the next page starts at offset+limit"
    ),
    who: Caller = Depends(caller),
    session: Session = Depends(db, scope="function"),
) -> SearchPage:
    """Best matches first. Each hit says why it matched (`tag:beach`, `person:Anna`,
    `place:Yosemite Valley`, `similar:dog`, `date:2015`)."""
    if not q.strip():
        raise HTTPException(422, "the query is empty")
    found = search_page(session, who.user.id, q, limit, offset)
    page = found.hits
    rows = assets.with_metadata(session, who.user.id, [h.asset_id for h in page])
    record(session, who, "search")
    return SearchPage(
        query=q,
        total=found.total,
        items=[
            SearchHit(asset=asset_out(*rows[h.asset_id]), score=h.score, matched=list(h.matched))
            for h in page
            if h.asset_id in rows
        ],
    )
