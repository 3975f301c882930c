"""The timeline at `/`: a justified grid by day under month and year headings, a year
scrubber, infinite scroll on the same cursor as GET /api/assets; the viewer's info panel; and
the trash page."""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from camroll import assets as svc
from camroll import job_runs
from camroll.api.assets import derived_out, owned_asset
from camroll.api.deps import Caller, db, optional_caller
from camroll.api.limits import SHORT_TEXT
from camroll.config import get_settings
from camroll.db.models import Asset, AssetMetadata
from camroll.privacy.audit import record
from camroll.summary import overview, provenance
from camroll.trash import empty_trash, expires_at, restore_asset, trashed
from camroll.web.routes import templates

router = APIRouter(include_in_schema=False)
MONTHS = list(calendar.month_name)[1:]


@dataclass
class Tile:
    asset: Asset
    meta: AssetMetadata | None
    aspect: float  # width / height of the upright thumbnail, for the justified layout
    preview_w: int
    preview_h: int
    local: str  # capture time as the camera's clock read it, "2015-06-14 18:03"
    day: str


@dataclass
class Block:
    """One run of tiles under its headings; a heading is None when the run continues the
    previous page's year, month or day."""

    year: str | None
    month: str | None
    day: str | None
    day_label: str
    tiles: list[Tile]


def _local(asset: Asset, meta: AssetMetadata | None) -> tuple[str, str]:
    if meta is not None and meta.taken_at_local:
        text = meta.taken_at_local.replace("T", " ")[:16]
        return text, text[:10]
    # No capture time known: the upload instant, in UTC.
    text = asset.sort_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return text, text[:10]


def _day_label(day: str) -> str:
    try:
        d = datetime.strptime(day, "%Y-%m-%d")
    except ValueError:
        return day
    return f"{day} · {d.strftime('%A')}"


def _page(
    session: Session, user_id: str, cursor: str | None, before: datetime | None
) -> tuple[list[Tile], str | None]:
    try:
        rows, next_cursor = svc.timeline(
            session, user_id, cursor, before, get_settings().timeline_page
        )
    except svc.BadCursor as e:
        raise HTTPException(400, str(e)) from None
    tiles = []
    for row in rows:
        local, day = _local(row.asset, row.meta)
        (tw, th), (pw, ph) = row.thumb, row.preview
        tiles.append(
            Tile(
                asset=row.asset,
                meta=row.meta,
                aspect=round(tw / th, 4) if tw and th else 1.0,
                preview_w=pw or tw or 1,
                preview_h=ph or th or 1,
                local=local,
                day=day,
            )
        )
    return tiles, next_cursor


def _blocks(tiles: list[Tile], prev_day: str | None) -> list[Block]:
    blocks: list[Block] = []
    last = prev_day or ""
    for t in tiles:
        if blocks and t.day == last:
            blocks[-1].tiles.append(t)
            continue
        year = t.day[:4] if t.day[:4] != last[:4] else None
        month = t.day[:7] if t.day[:7] != last[:7] else None
        day = t.day if t.day != last else None
        blocks.append(Block(year, month, day, _day_label(t.day), [t]))
        last = t.day
    return blocks


def _month_label(month: str) -> str:
    try:
        return f"{MONTHS[int(month[5:7]) - 1]} {month[:4]}"
    except (ValueError, IndexError):
        return month


def _page_context(
    session: Session, user_id: str, cursor: str | None, prev: str | None, before: datetime | None
) -> dict[str, object]:
    tiles, next_cursor = _page(session, user_id, cursor, before)
    last_day = tiles[-1].day if tiles else prev
    return {
        "blocks": _blocks(tiles, prev),
        "next_cursor": next_cursor,
        "last_day": last_day,
        "month_label": _month_label,
    }


@router.get("/", response_class=HTMLResponse)
def timeline(
    request: Request,
    year: int | None = Query(None, ge=1, le=9998),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    me = who.user.id
    record(session, who, "asset.list")
    before = None
    if year is not None:
        before = datetime(year + 1, 1, 1, tzinfo=UTC)
    found = overview(session, me)
    counts, years, quarantined = found.counts, found.years, found.quarantined
    return templates.TemplateResponse(
        request,
        "timeline.html",
        {
            "user": who.user,
            "counts": counts,
            "years": years,
            "year": year if before else None,
            "quarantined": quarantined,
            "failures": job_runs.failures(session, me),  # failed jobs with their reasons
            **_page_context(session, me, None, None, before),
        },
    )


@router.get("/timeline/page", response_class=HTMLResponse)
def timeline_page(
    request: Request,
    cursor: str = Query(..., max_length=SHORT_TEXT),
    prev: str | None = Query(None, max_length=10),
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The next page of tiles as an HTML fragment, for infinite scroll (htmx)."""
    if who is None:
        return Response(status_code=401)
    record(session, who, "asset.list")
    context = _page_context(session, who.user.id, cursor, prev or None, None)
    return templates.TemplateResponse(request, "_timeline_page.html", context)


@router.get("/timeline/info/{asset_id}", response_class=HTMLResponse)
def info_panel(
    asset_id: str,
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    """The viewer's info panel: date, place, camera, people, tags, and each datum's provenance."""
    if who is None:
        return Response(status_code=401)
    asset = owned_asset(session, who, asset_id)  # 404 for absent and someone else's alike
    meta = svc.metadata(session, asset)
    derived = derived_out(svc.derived(session, asset))
    record(session, who, "asset.read", asset.id)
    people = sorted({f.person_name for f in derived["faces"] if f.person_name})  # type: ignore[attr-defined]
    unnamed = sum(1 for f in derived["faces"] if not f.person_name)  # type: ignore[attr-defined]
    return templates.TemplateResponse(
        request,
        "_viewer_info.html",
        {
            "asset": asset,
            "meta": meta,
            "local": _local(asset, meta)[0],
            "place": derived["place"],
            "tags": derived["tags"],
            "people": people,
            "unnamed": unnamed,
            "provenance": provenance(session, asset),
        },
    )


@router.get("/trash", response_class=HTMLResponse)
def trash_page(
    request: Request,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    record(session, who, "trash.list")
    items = [(a, expires_at(a)) for a in trashed(session, who.user.id)]
    return templates.TemplateResponse(
        request,
        "trash.html",
        {"user": who.user, "items": items, "days": get_settings().trash_days},
    )


@router.post("/trash/{asset_id}/restore")
def trash_restore(
    asset_id: str,
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    asset = owned_asset(session, who, asset_id)
    if asset.status == "trashed":
        restore_asset(session, asset)
        record(session, who, "asset.restore", asset.id)
    return RedirectResponse("/trash", status_code=303)


@router.post("/trash/empty")
def trash_empty(
    who: Caller | None = Depends(optional_caller),
    session: Session = Depends(db, scope="function"),
) -> Response:
    if who is None:
        return RedirectResponse("/login", status_code=303)
    empty_trash(session, who.user.id)
    record(session, who, "trash.empty")
    return RedirectResponse("/trash", status_code=303)


def tile_json(t: Tile) -> str:
    """What the viewer needs about a tile, in one data attribute."""
    a = t.asset
    return json.dumps(
        {
            "id": a.id,
            "kind": a.kind,
            "name": a.filename,
            "local": t.local,
            "w": t.preview_w,
            "h": t.preview_h,
            "live": a.live_pair_id if a.kind != "video" else None,
        }
    )


templates.env.filters["tile_json"] = tile_json
