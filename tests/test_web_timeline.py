"""The timeline, viewer and trash in a real browser (Debian's Chromium via Playwright), on a
phone (390x844, touch) and a desktop (1280x900), against one `camroll serve` with a small
synced set from the shared roll: photos from 2004 to 2026, a video, a Live Photo pair and a
broken file. Timeline pages are 8 tiles, so scrolling must load further pages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select

from tests.conftest import ROLL, Server, make_user
from tests.test_sync_e2e import sync
from tests.test_trash_api import blobs_of, rows_mentioning
from tests.test_web import ARGS, CHROMIUM

FILES = [
    "pigallery2/test-assets/video.mp4",  # 13.7 s H.264: plays and seeks
    "pigallery2/test-assets/live_photo/IMG_7943.HEIC",  # Live Photo still (2026) ...
    "pigallery2/test-assets/live_photo/IMG_7943_HEVC.MOV",  # ... and its motion
    "pigallery2/demo/IMG_8824.jpg",
    "pigallery2/demo/IMG_8943.jpg",
    "pigallery2/demo/IMG_6297.jpg",
    "pigallery2/demo/broken image.JPG",  # quarantined, with its reason
    "exif-samples/jpg/Canon_40D.jpg",
    "exif-samples/jpg/Nikon_D70.jpg",
    "exif-samples/jpg/Pentax_K10D.jpg",
    "exif-samples/jpg/Canon_DIGITAL_IXUS_400.jpg",
    "exif-samples/jpg/Kodak_CX7530.jpg",
    "exif-samples/jpg/Sony_HDR-HC3.jpg",
    "exif-samples/jpg/Reconyx_HC500_Hyperfire.jpg",
]
EMAIL, PASSWORD = "timeline@example.org", "correct horse"
PAGE = 8


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, dict]]:
    from camroll.config import get_settings
    from camroll.db.engine import _factory
    from camroll.storage import _cached

    tmp = tmp_path_factory.mktemp("timeline")
    data, roll = tmp / "data", tmp / "roll"
    data.mkdir()
    roll.mkdir()
    for rel in FILES:
        src = ROLL / rel
        assert src.is_file(), f"missing shared test file {src}"
        shutil.copy2(src, roll / src.name)
    values = {
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": f"sqlite:///{data / 'camroll.db'}",
        "XDG_STATE_HOME": str(tmp / "state"),
        "CAMROLL_TIMELINE_PAGE": str(PAGE),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        from camroll.db.migrate import upgrade

        upgrade()
        token = make_user(EMAIL, password=PASSWORD)
        server = Server(values).start()
        try:
            result = sync(server, token, values, roll)
            assert result["failed"] == [], result["failed"]
            yield server, token, values
        finally:
            server.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()


def login(page: Page, server: Server) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")


def load_everything(page: Page, expected: int) -> None:
    """Scroll as a person would until every page has arrived."""
    for _ in range(40):
        if page.locator("#timeline .tile").count() >= expected:
            break
        page.mouse.wheel(0, 5000)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(300)
    assert page.locator("#timeline .tile").count() == expected


@pytest.mark.backends("sqlite")
def test_desktop_timeline_pages_headings_viewer_video_206_and_live_photo(
    site: tuple[Server, str, dict],
) -> None:
    server, token, _ = site
    api = server.client(token)
    ready = api.get("/api/assets", params={"status": "ready", "limit": 100}).json()["items"]
    # The Live Photo's motion shows inside its still, not as a tile of its own.
    tiles_expected = sum(1 for a in ready if not (a["kind"] == "video" and a["live_pair_id"]))
    assert tiles_expected == len(FILES) - 2 > PAGE

    with sync_playwright() as p:
        autoplay = "--autoplay-policy=no-user-gesture-required"
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*ARGS, autoplay])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        ranged: list[tuple[int, str | None]] = []
        page.on(
            "response",
            lambda r: (
                ranged.append((r.status, r.headers.get("content-range")))
                if r.url.endswith("/original")
                else None
            ),
        )
        login(page, server)
        assert page.locator("#timeline .tile").count() == PAGE  # the first page only
        # The header counts what the grid will show (a Live Photo once), not just this page.
        assert f"{tiles_expected} photos and videos" in page.inner_text(".summary")
        load_everything(page, tiles_expected)  # ... then the rest, with no cap

        years = page.locator(".tl-year").all_inner_texts()
        assert years == sorted(years, reverse=True) and len(years) == len(set(years))
        assert {"2026", "2015", "2008", "2004"} <= set(years), years
        months = page.locator(".tl-month").all_inner_texts()
        assert "July 2015" in months and "May 2008" in months, months
        days = page.locator("section.day h4 time").evaluate_all(
            "els => els.map(e => e.getAttribute('datetime'))"
        )
        assert days == sorted(days, reverse=True)  # newest first (no zone swaps in this set)
        # UTC order kept: the tiles come in the API's order (capture instant, newest first).
        shown = page.locator("#timeline .tile").evaluate_all(
            "els => els.map(e => JSON.parse(e.dataset.item).id)"
        )
        assert shown == [a["id"] for a in ready if not (a["kind"] == "video" and a["live_pair_id"])]
        # Local capture time as the camera recorded it.
        canon = ".tile:has(img[alt*='Canon_40D.jpg, taken 2008-05-30 15:56'])"
        assert page.locator(canon).count() == 1
        # The justified grid: tiles keep their photo's shape (not all squares).
        ratios = page.locator("#timeline .tile").evaluate_all(
            "els => els.map(e => e.offsetWidth / e.offsetHeight)"
        )
        assert max(ratios) / min(ratios) > 1.2, ratios
        assert "broken image.JPG" in page.inner_text("#quarantine")  # the reason stays visible

        # Scrubber: jump to a year.
        page.click(".scrubber a:text-is('2008')")
        page.wait_for_url("**/?year=2008")
        assert page.locator(".tl-year").first.inner_text() == "2008"

        # Viewer: the video plays and seeks; the server answers 206 with Content-Range.
        page.goto(server.url + "/")
        load_everything(page, tiles_expected)
        page.click(".tile:has(img[alt^='Video video.mp4'])")
        video = page.locator(".viewer video.v-media")
        video.wait_for(state="visible")
        page.wait_for_function(
            "() => { const v = document.querySelector('.viewer video.v-media');"
            " v.muted = true; v.play(); return v.currentTime > 0.3; }",
            timeout=30000,
        )
        page.evaluate("document.querySelector('.viewer video.v-media').currentTime = 11")
        page.wait_for_function(
            "() => { const v = document.querySelector('.viewer video.v-media');"
            " return !v.seeking && v.currentTime >= 11 && v.readyState >= 2; }",
            timeout=30000,
        )
        assert any(s == 206 and cr and cr.startswith("bytes ") for s, cr in ranged), ranged

        # Info panel: date, camera and, per datum, the scope that allowed it and its model.
        page.keyboard.press("ArrowRight")
        page.click(".viewer [data-v=info]")
        info = page.locator(".v-info")
        info.locator(".v-prov").wait_for()
        text = info.inner_text()
        assert "Taken" in text and "Camera" in text, text
        prov = info.locator(".v-prov tr").evaluate_all(
            "rows => rows.slice(1).map(r => [...r.cells].map(c => c.innerText.trim()))"
        )
        kinds = {row[0].split(" (")[0] for row in prov}
        assert {"metadata", "previews"} <= kinds, prov
        assert all(scope and model for _, scope, model in prov), prov
        page.keyboard.press("Escape")
        assert page.locator(".viewer").is_hidden()

        # The Live Photo plays its motion.
        still = next(a for a in ready if a["filename"] == "IMG_7943.HEIC")
        assert still["live_pair_id"]
        page.click(".tile:has(img[alt*='IMG_7943.HEIC'])")
        with page.expect_response(f"**/api/assets/{still['live_pair_id']}/original") as motion:
            page.locator(".viewer [data-v=live]").click()
        assert motion.value.status in (200, 206)
        page.wait_for_function(
            "() => { const v = document.querySelector('.viewer video.v-live');"
            " return v && v.currentTime > 0.2; }",
            timeout=30000,
        )
        page.keyboard.press("Escape")

        # Keyboard selection of four photos, then "Make a collage" lands on Ideas with it.
        from camroll.consent.gate import set_scopes
        from camroll.db.engine import session_scope
        from camroll.db.models import User

        with session_scope() as s:
            user_id = s.scalars(select(User.id).where(User.email == EMAIL)).one()
            set_scopes(s, user_id, {"creations": True}, client="test")
        page.click(".tl-select")
        for name in ("IMG_8824.jpg", "IMG_8943.jpg", "IMG_6297.jpg", "Canon_40D.jpg"):
            page.locator(f".tile:has(img[alt*='{name}'])").focus()
            page.keyboard.press("Space")
        assert page.locator(".tl-count").inner_text() == "4 selected"
        page.click(".tl-actions [data-act=collage]")
        page.wait_for_url("**/ideas", timeout=60000)
        assert "My collage" in page.inner_text("main")
        browser.close()


@pytest.mark.backends("sqlite")
def test_phone_deletes_restores_and_empties_the_trash_leaving_nothing(
    site: tuple[Server, str, dict],
) -> None:
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, User

    server, token, env = site
    with session_scope() as s:
        user_id = s.scalars(select(User.id).where(User.email == EMAIL)).one()
        # File names are stored encrypted per user: found in Python, not in SQL.
        mine = s.scalars(select(Asset).where(Asset.user_id == user_id)).all()
        target = next(a.id for a in mine if a.filename == "Nikon_D70.jpg")
    assert rows_mentioning(target) and blobs_of(env, user_id, target)
    tile = ".tile:has(img[alt*='Nikon_D70.jpg'])"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(
            viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
        )
        page = context.new_page()
        login(page, server)
        load_everything(page, len(FILES) - 2)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # The viewer on a touch screen: a swipe goes to the next photo, two fingers zoom.
        cdp = context.new_cdp_session(page)

        def touch(kind: str, *points: tuple[int, int]) -> None:
            cdp.send(
                "Input.dispatchTouchEvent",
                {
                    "type": kind,
                    "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
                },
            )

        page.tap(".tile:has(img[alt*='IMG_8943.jpg'])")
        title = page.locator(".v-title")
        assert "IMG_8943.jpg" in title.inner_text()
        touch("touchStart", (320, 420))
        for x in range(300, 60, -40):
            touch("touchMove", (x, 425))
        touch("touchEnd")
        page.wait_for_function(
            "() => !document.querySelector('.v-title').textContent.includes('IMG_8943')"
        )
        touch("touchStart", (150, 420), (240, 420))
        for d in range(0, 120, 20):
            touch("touchMove", (150 - d, 420), (240 + d, 420))
        touch("touchEnd")
        scale = page.evaluate("getComputedStyle(document.querySelector('.v-media')).transform")
        assert scale.startswith("matrix(") and float(scale[7:].split(",")[0]) > 1.5, scale
        page.keyboard.press("Escape")

        # Select a photo with a tap and delete it.
        page.tap(".tl-select")
        page.tap(tile)
        assert page.locator(".tl-count").inner_text() == "1 selected"
        page.tap(".tl-actions [data-act=delete]")
        page.locator(".tl-status a[href='/trash']").wait_for()
        assert "Moved 1 to the trash" in page.inner_text(".tl-status")
        assert page.locator(tile).count() == 0
        with session_scope() as s:
            assert s.get(Asset, target).status == "trashed"

        # Restore it from the trash page, reached from the timeline.
        page.tap(".tl-status a[href='/trash']")
        page.wait_for_url("**/trash")
        assert "Nikon_D70.jpg" in page.inner_text(".trash-list")
        page.tap("button[aria-label='Restore Nikon_D70.jpg']")
        page.locator("text=The trash is empty.").wait_for()
        page.goto(server.url + "/")
        load_everything(page, len(FILES) - 2)
        assert page.locator(tile).count() == 1

        # Delete again, then empty the trash: nothing of it is left anywhere.
        page.tap(".tl-select")
        page.tap(tile)
        page.tap(".tl-actions [data-act=delete]")
        page.locator(".tl-status a[href='/trash']").wait_for()
        page.goto(server.url + "/trash")
        page.tap("text=Empty trash now (1)")
        page.locator("text=The trash is empty.").wait_for()
        browser.close()

    assert rows_mentioning(target) == {}
    assert blobs_of(env, user_id, target) == []
    api = server.client(token)
    assert api.get(f"/api/assets/{target}").status_code == 404

    # A Live Photo goes to the trash, and comes back, as one: the still and its motion.
    still = next(a for a in api.get("/api/assets").json()["items"] if a["live_pair_id"])
    pair = {still["id"], still["live_pair_id"]}
    assert set(api.delete(f"/api/assets/{still['id']}").json()["ids"]) == pair
    assert {i["id"] for i in api.get("/api/trash").json()["items"]} == pair
    assert set(api.post(f"/api/assets/{still['live_pair_id']}/restore").json()["ids"]) == pair
    assert api.get("/api/trash").json()["items"] == []
