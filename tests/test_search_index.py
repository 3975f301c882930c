"""Search through the database's full-text index (SQLite FTS5, PostgreSQL tsvector + GIN) over
blind tokens: the same answers as the in-memory scan, no plaintext in the index, and the index's
rows go with their scope and with the account.

The library is test_search_rank's (the real 2015 road trip's tags, geocoded places and names),
written as analysis writes it: tag, place, person and face rows, then `index_asset`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select, text

from camroll.accounts import create_token
from camroll.crypto.fields import blind_key
from camroll.db.engine import session_scope
from camroll.db.models import (
    Asset,
    AssetMetadata,
    AssetPlace,
    AssetTag,
    Face,
    Person,
    SearchTerm,
    User,
)
from camroll.privacy.retention import delete_scope_data
from camroll.search import blind
from camroll.search.index import index_asset
from camroll.search.query import parse_query
from camroll.search.service import indexed, scan, search, search_page
from tests.conftest import make_user
from tests.test_search_rank import LIBRARY

QUERIES = [
    "beach 2015", "Anna", "Ben Carter", "annabel", "yosemite", "yos", "california beaches",
    "puppy", "seaside", "dog june 2016", "2015", "12 june 2015", "dog beach", "jonkoping",
    "zoe", "sydney", "xyzzy", "summer 2016", "party berkeley", "lake",
]  # fmt: skip


def _provenance(user_id: str, asset_id: str, scope: str) -> dict[str, str]:
    return dict(user_id=user_id, asset_id=asset_id, scope=scope, model="t", model_version="1")


def _library(email: str) -> str:
    """The LIBRARY as stored rows of a new owner, each asset indexed; returns the user id."""
    make_user(email)
    with session_scope() as s:
        uid = s.scalar(select(User.id).where(User.email == email))
        people: dict[str, Person] = {}
        for n, doc in enumerate(LIBRARY):
            at = datetime(2020, 1, 1, tzinfo=UTC)
            asset = Asset(
                id=f"{doc.asset_id}-{uid[:6]}", user_id=uid, checksum=f"{n}", size=1,
                filename=f"{doc.asset_id}.jpg", kind="image", status="ready", sort_at=at,
            )  # fmt: skip
            s.add(asset)
            s.flush()
            local = f"{doc.taken_at.isoformat()}T12:00:00" if doc.taken_at else None
            meta = _provenance(uid, asset.id, "cloud_processing")
            s.add(AssetMetadata(**meta, taken_at_local=local))
            for tag in doc.tags:
                row = _provenance(uid, asset.id, "content")
                s.add(AssetTag(**row, label=tag, score=0.9, sources="[]"))
            if doc.places:
                city, *rest = doc.places[0].split(", ")
                s.add(AssetPlace(
                    **_provenance(uid, asset.id, "places"), city=city,
                    region=rest[-2] if len(rest) > 1 else None, country=rest[-1] if rest else None,
                ))  # fmt: skip
            for name in doc.people:
                if name not in people:
                    people[name] = Person(**_provenance(uid, asset.id, "faces"), name=name)
                    s.add(people[name])
                    s.flush()
                s.add(Face(
                    **_provenance(uid, asset.id, "faces"), box_x=0, box_y=0, box_w=0.1, box_h=0.1,
                    landmarks="[]", score=0.99, usable=True, person_id=people[name].id,
                ))  # fmt: skip
            s.flush()
            index_asset(s, asset)
    return uid


def _ids(hits) -> list[str]:
    return [h.asset_id.rsplit("-", 1)[0] for h in hits]


def test_index_answers_like_the_scan_and_holds_no_plaintext(env: dict) -> None:
    uid = _library("owner@example.com")
    other = _library("other@example.com")  # same words, other key: never in the owner's hits
    with session_scope() as s:
        for q in QUERIES:
            fast, slow = indexed(s, uid, parse_query(q)).hits, scan(s, uid, q)
            assert [(h.asset_id, h.score, h.matched) for h in fast] == [
                (h.asset_id, h.score, h.matched) for h in slow
            ], q
            assert all(h.asset_id.endswith(uid[:6]) for h in fast), q
        # What users notice, spelled out (the rank tests' answers, through the database).
        assert _ids(search(s, uid, "dog june 2016")) == ["dog-lawn", "dogs-park"]
        assert _ids(search(s, uid, "puppy"))[:1] in (["dog-lawn"], ["dogs-park"])
        assert set(_ids(search(s, uid, "yosemite"))) == {"yosemite-falls", "yosemite-cliff"}
        assert _ids(search(s, uid, "Annabel Lee"))[:2] == ["annabel-lunch", "birthday"]
        assert search(s, uid, "xyzzy") == []
        # No word of any tag, place or name is in the index, nor in SQLite's FTS5 tables.
        stored = set(" ".join(s.scalars(select(SearchTerm.tokens))).split())
        assert stored and all(len(t) == 20 and set(t) <= set("abcdefghijklmnop") for t in stored)
        key = blind_key(uid)
        for word in ("yosemite", "beach", "california", "berkeley"):
            assert blind.token(key, f"s:{word}") in stored  # the word only as its keyed hash
            assert word not in stored
        if s.get_bind().dialect.name == "sqlite":
            n = s.scalar(text("SELECT count(*) FROM search_fts WHERE search_fts MATCH 'beach'"))
            assert n == 0
    assert other != uid


def test_a_page_is_the_scans_ranking_cut_where_the_database_cuts_it(env: dict) -> None:
    """The database ranks every match and hands over one page: each page is that slice of the
    scan's full ranking (same photos, order, scores and reasons), with the scan's total."""
    uid = _library("owner@example.com")
    _library("other@example.com")
    with session_scope() as s:
        for q in QUERIES:
            everything = [(h.asset_id, h.score, h.matched) for h in scan(s, uid, q)]
            for limit, offset in ((1, 0), (2, 1), (3, 0), (4, 3), (5, 100)):
                page = search_page(s, uid, q, limit, offset)
                assert page.total == len(everything), q
                got = [(h.asset_id, h.score, h.matched) for h in page.hits]
                assert got == everything[offset : offset + limit], (q, limit, offset)


def test_the_api_pages_through_every_hit_in_the_ranking_order(
    app_client: httpx.Client, env: dict
) -> None:
    uid = _library("owner@example.com")
    with session_scope() as s:
        token = create_token(s, s.get(User, uid), "pages")
        everything = [h.asset_id for h in scan(s, uid, "california beaches")]
    assert len(everything) > 5
    got, offset = [], 0
    while True:
        r = app_client.get(
            "/api/search",
            params={"q": "california beaches", "limit": 2, "offset": offset},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["total"] == len(everything)
        if not (items := r.json()["items"]):
            break
        got += [h["asset"]["id"] for h in items]
        offset += 2
    assert got == everything
    far = app_client.get(
        "/api/search",
        params={"q": "california beaches", "offset": 10**9},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert far["items"] == [] and far["total"] == len(everything)
    # The web page shows one page of tiles and says how many match in all.
    r = app_client.get(
        "/search",
        params={"q": "california beaches"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    assert f"{len(everything)} results, best first." in r.text
    assert r.text.count('class="tile"') == len(everything)


def test_hostile_queries_and_paging_get_answers_or_clear_refusals(
    app_client: httpx.Client, env: dict
) -> None:
    """Full-text syntax, SQL, control bytes and out-of-range paging reach the ranked page: each
    is an answer (words are matched as blind tokens, never as query syntax) or a 422 that says
    which parameter is wrong, and the library's search still works afterwards."""
    uid = _library("hostile@example.com")
    with session_scope() as s:
        token = create_token(s, s.get(User, uid), "hostile")
        expected = [h.asset_id for h in scan(s, uid, "california beaches")]
    auth = {"Authorization": f"Bearer {token}"}
    answered = [
        'beach" OR "*',
        "NEAR(beach california, 1)",
        "beach*",
        "') ; DROP TABLE search_terms; --",
        "california\x00beaches",
        "\u202e\u0000\ufeff",
        "-beach ^california",
        "x" * 200,
    ]
    for q in answered:
        r = app_client.get("/api/search", params={"q": q, "limit": 3}, headers=auth)
        assert r.status_code == 200, (q, r.status_code, r.text)
        body = r.json()
        assert len(body["items"]) <= 3 and body["total"] >= len(body["items"]), q
    refused = [
        ({"q": "x" * 201}, "q"),
        ({"q": ""}, "q"),
        ({"q": "beach", "limit": 0}, "limit"),
        ({"q": "beach", "limit": 501}, "limit"),
        ({"q": "beach", "offset": -1}, "offset"),
        ({"q": "beach", "offset": 10**9 + 1}, "offset"),
        ({"q": "beach", "offset": "many"}, "offset"),
    ]
    for params, name in refused:
        r = app_client.get("/api/search", params=params, headers=auth)
        assert r.status_code == 422, (params, r.status_code, r.text)
        assert name in {e["loc"][-1] for e in r.json()["detail"]}, (params, r.text)
    r = app_client.get(
        "/api/search", params={"q": "california beaches", "limit": 500}, headers=auth
    )
    assert [h["asset"]["id"] for h in r.json()["items"]] == expected


def test_index_rows_go_with_their_scope_and_the_account(env: dict) -> None:
    uid = _library("owner@example.com")
    with session_scope() as s:
        assert _ids(search(s, uid, "yosemite"))
        delete_scope_data(s, uid, "places")
    with session_scope() as s:
        assert search(s, uid, "yosemite") == []  # the place tokens went with the scope
        assert set(_ids(search(s, uid, "waterfall"))) == {"yosemite-falls"}
        assert s.scalar(select(func.count()).where(SearchTerm.kind == "places")) == 0
        s.delete(s.get(User, uid))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(SearchTerm)) == 0
        if s.get_bind().dialect.name == "sqlite":  # the FTS5 index followed the cascade
            assert s.scalar(text("SELECT count(*) FROM search_fts")) == 0


def test_a_library_upgraded_across_the_index_revision_is_indexed(env: dict) -> None:
    from alembic import command

    from camroll.db.migrate import alembic_config, current_revision
    from camroll.startup import prepare_database

    uid = _library("owner@example.com")
    command.downgrade(alembic_config(), "0011")  # the library as it was before the index
    assert current_revision() == "0011"
    prepare_database()  # what `camroll serve` does on start
    with session_scope() as s:
        assert set(_ids(search(s, uid, "yosemite"))) == {"yosemite-falls", "yosemite-cliff"}
        assert len(search(s, uid, "2015")) == 9
