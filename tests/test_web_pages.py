"""People, ideas and the privacy centre in a real browser (Debian's Chromium), on a phone
(390x844, touch) and a desktop (1280x900), plus the merge-suggestion API.

One server and one library for the module: photos of six people from the shared face sets, two
of whom the clustering keeps apart as two people each, analysed for faces and made into ideas by
the real server. Tests run in file order; the last one switches faces off.
"""

from __future__ import annotations

import io
import shutil
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, sync_playwright

from tests.conftest import SHARED, Server, make_user
from tests.test_sync_e2e import all_assets, sync
from tests.test_web import ARGS, CHROMIUM

pytestmark = pytest.mark.backends("sqlite")  # the browser checks pages; queries are in the API

DEEPFACE = SHARED / "faces" / "deepface"
ALEX = SHARED / "faces" / "face_recognition" / "examples"
# name in the roll -> source. Two people the clustering keeps apart as two each, which is what
# suggestions are for: person_03 of deepface (img3 | img12, img54) and Alex Lacamoire
# (alex-lacamoire.png | the two knn photos). Then person_00 three times, person_01 and person_10
# twice: smiles enough for a "Best smiles" idea.
FILES = {
    "img3.jpg": DEEPFACE / "img3.jpg",
    "img12.jpg": DEEPFACE / "img12.jpg",
    "img54.jpg": DEEPFACE / "img54.jpg",
    "alex-lacamoire.png": ALEX / "alex-lacamoire.png",
    "alex_lacamoire1.jpg": ALEX / "knn_examples" / "test" / "alex_lacamoire1.jpg",
    "alex_img1.jpg": ALEX / "knn_examples" / "train" / "alex_lacamoire" / "img1.jpg",
    **{n: DEEPFACE / n for n in ("img1.jpg", "img2.jpg", "img4.jpg", "img26.jpg", "img27.jpg")},
    **{n: DEEPFACE / n for n in ("img20.jpg", "img21.jpg")},
}
EMAIL, PASSWORD = "pages@example.org", "pages-password-1"
SCOPES = {"cloud_processing": True, "faces": True, "creations": True}
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@dataclass
class Site:
    server: Server
    client: httpx.Client
    env: dict
    assets: dict[str, dict]  # filename -> GET /api/assets/{id}
    browser: Browser

    def person_of(self, filename: str) -> str:
        return self.assets[filename]["faces"][0]["person_id"]

    def refresh(self) -> None:
        self.assets = {
            a["filename"]: self.client.get(f"/api/assets/{a['id']}").json()
            for a in all_assets(self.client)
        }

    def page(self, device: dict) -> tuple[BrowserContext, Page]:
        ctx = self.browser.new_context(**device, accept_downloads=True)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        page.goto(self.server.url + "/login")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return ctx, page


def _wait_jobs(client: httpx.Client, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get("/api/jobs").json()
        if jobs["pending"] == 0 and jobs["running"] == 0:
            assert jobs["failed"] == 0, jobs
            return
        time.sleep(1)
    raise AssertionError(f"jobs still running: {client.get('/api/jobs').json()}")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from camroll.accounts import set_password
    from camroll.config import get_settings
    from camroll.db.engine import _factory, session_scope
    from camroll.db.migrate import upgrade
    from camroll.db.models import User
    from camroll.storage import _cached

    tmp = tmp_path_factory.mktemp("pages")
    (tmp / "data").mkdir()
    env = {
        "CAMROLL_DATA_DIR": str(tmp / "data"),
        "CAMROLL_DATABASE_URL": f"sqlite:///{tmp / 'data' / 'camroll.db'}",
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    roll = tmp / "roll"
    roll.mkdir()
    for name, src in FILES.items():
        shutil.copy(src, roll / name)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        upgrade()
        server = Server(env).start()
        try:
            token = make_user(EMAIL)
            with session_scope() as s:
                set_password(s.query(User).filter_by(email=EMAIL).one(), PASSWORD)
            client = server.client(token)
            assert client.put("/api/consent", json={"scopes": SCOPES}).status_code == 200
            result = sync(server, token, env, roll)
            assert result["failed"] == [], result
            _wait_jobs(client)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                site = Site(server, client, env, {}, browser)
                site.refresh()
                assert set(site.assets) == set(FILES)
                _keep_apart(site, "img3.jpg", "img12.jpg")
                _keep_apart(site, "alex-lacamoire.png", "alex_lacamoire1.jpg")
                yield site
                browser.close()
        finally:
            server.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()


def _keep_apart(site: Site, one: str, other: str) -> None:
    """Make sure `one` is a person of its own, apart from `other`'s, as the clustering left it.

    Whether these two photos of one face end up split depends on the clustering's threshold
    (0.5 splits both pairs; issue 13 raises it). Suggestions exist for the splits that remain, so
    the library is put in that state: the face is placed in a new person the way the clustering
    places faces (not pinned, no ban), and a recluster left alone would join them again.
    """
    from camroll.db.engine import session_scope
    from camroll.db.models import Face
    from camroll.people.assign import new_person, refresh_people

    if site.person_of(one) != site.person_of(other):
        return
    with session_scope() as s:
        face = s.get(Face, site.assets[one]["faces"][0]["id"])
        old = face.person_id
        face.person_id = new_person(s, face.user_id, face).id
        s.flush()
        refresh_people(s, face.user_id, {old, face.person_id})
    site.refresh()


def _recluster(site: Site) -> None:
    """The nightly full recluster, run now on the library's database."""
    from camroll.db.engine import session_scope
    from camroll.people.assign import recluster_user

    user_id = site.client.get("/api/me/report", params={"asset_limit": 1}).json()["user_id"]
    with session_scope() as s:
        recluster_user(s, user_id)


def _pairs(site: Site) -> dict[frozenset[str], dict]:
    found = site.client.get("/api/people/suggestions").json()
    return {frozenset((s["person_a"]["id"], s["person_b"]["id"])): s for s in found}


def _card(page: Page, a: str, b: str) -> Locator:
    return page.locator(f".pair[data-a='{a}'][data-b='{b}'], .pair[data-a='{b}'][data-b='{a}']")


def test_suggestion_api_lists_the_split_people_and_is_owner_scoped(site: Site) -> None:
    ingrid = site.person_of("img3.jpg"), site.person_of("img12.jpg")
    alex = site.person_of("alex-lacamoire.png"), site.person_of("alex_lacamoire1.jpg")
    assert ingrid[0] != ingrid[1] and alex[0] != alex[1]  # each one person in two
    pairs = _pairs(site)
    assert frozenset(ingrid) in pairs and frozenset(alex) in pairs, pairs
    for hit in pairs.values():
        assert 0.0 < hit["confidence"] <= 1.0 and hit["person_a"]["cover_url"]
    # Nobody else is suggested: every pair listed is one of the two real splits.
    assert set(pairs) == {frozenset(ingrid), frozenset(alex)}, pairs

    stranger = site.server.client(make_user("stranger@example.org"))
    assert stranger.put("/api/consent", json={"scopes": {"faces": True}}).status_code == 200
    assert stranger.get("/api/people/suggestions").json() == []
    body = {"person_a": alex[0], "person_b": alex[1]}
    assert stranger.post("/api/people/suggestions/confirm", json=body).status_code == 404
    assert stranger.post("/api/people/suggestions/reject", json=body).status_code == 404
    same = {"person_a": alex[0], "person_b": alex[0]}
    assert site.client.post("/api/people/suggestions/reject", json=same).status_code == 422
    half = {"person_a": alex[0]}
    assert site.client.post("/api/people/suggestions/confirm", json=half).status_code == 422
    nobody = make_user("nobody@example.org")  # uploads allowed, faces not
    assert site.server.client(nobody).get("/api/people/suggestions").status_code == 403
    # The web form's door refuses a post from another site (the owner's cookie rides along).
    forged = site.client.post(
        "/people/suggestions/same", data=body, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert forged.status_code == 403
    site.refresh()
    assert (site.person_of("img3.jpg"), site.person_of("img12.jpg")) == ingrid  # untouched
    assert set(_pairs(site)) == set(pairs)


def test_phone_rejects_a_suggestion_and_a_recluster_remembers(site: Site) -> None:
    a, b = site.person_of("img3.jpg"), site.person_of("img12.jpg")
    ctx, page = site.page(PHONE)
    try:
        page.goto(site.server.url + "/people")
        card = _card(page, a, b)
        card.get_by_role("button", name="different people").tap()
        page.wait_for_url("**/people?done=different")
        assert "not be suggested again" in page.inner_text("[role=status]")
        assert _card(page, a, b).count() == 0
    finally:
        ctx.close()
    _recluster(site)
    site.refresh()
    assert (site.person_of("img3.jpg"), site.person_of("img12.jpg")) == (a, b)
    assert frozenset((a, b)) not in _pairs(site)


def test_desktop_confirms_a_suggestion_and_the_merge_survives_a_recluster(site: Site) -> None:
    # The last recluster may have joined this unpinned pair on its own (issue 13's threshold).
    _keep_apart(site, "alex-lacamoire.png", "alex_lacamoire1.jpg")
    a, b = site.person_of("alex-lacamoire.png"), site.person_of("alex_lacamoire1.jpg")
    ctx, page = site.page(DESKTOP)
    try:
        page.goto(site.server.url + "/people")
        assert _card(page, a, b).count() == 1
        # Answered from one of the two people's own page: "Also them?"
        page.goto(site.server.url + f"/people/{a}")
        _card(page, a, b).get_by_role("button", name="Same:").click()
        page.wait_for_url("**/people/*?done=same")
        assert "one person now" in page.inner_text("[role=status]")
        assert "3 photos" in page.inner_text(".person-head")
        page.goto(site.server.url + "/people")
        assert _card(page, a, b).count() == 0
    finally:
        ctx.close()
    site.refresh()
    alex = {
        site.person_of(n) for n in ("alex-lacamoire.png", "alex_lacamoire1.jpg", "alex_img1.jpg")
    }
    assert len(alex) == 1
    _recluster(site)
    site.refresh()
    after = {
        site.person_of(n) for n in ("alex-lacamoire.png", "alex_lacamoire1.jpg", "alex_img1.jpg")
    }
    assert after == alex


def test_desktop_merges_two_people_by_hand(site: Site) -> None:
    a, b = site.person_of("img3.jpg"), site.person_of("img12.jpg")  # the owner changed their mind
    ctx, page = site.page(DESKTOP)
    try:
        page.goto(site.server.url + f"/people/{a}")
        page.click("text=Name, birthday, merge or hide")  # folded away: photos come first
        page.fill("input[name=name]", "Ingrid")
        page.click("text=Save name")
        page.wait_for_url(f"**/people/{a}?done=renamed")
        assert page.inner_text("h1") == "Ingrid"
        page.fill("input[name=birthday]", "1984-02-29")
        page.click("text=Save birthday")
        page.wait_for_url(f"**/people/{a}?done=birthday")
        page.select_option("select[name=other_id]", b)
        page.click("button:has-text('Merge')")
        page.wait_for_url(f"**/people/{a}?done=merged")
        assert "3 photos" in page.inner_text(".person-head")
        assert "born 1984-02-29" in page.inner_text(".person-head")
        assert page.locator(".face-tile img").count() == 3
    finally:
        ctx.close()
    assert site.client.get(f"/api/people/{b}").status_code == 404
    _recluster(site)
    site.refresh()
    assert site.person_of("img3.jpg") == site.person_of("img12.jpg") == site.person_of("img54.jpg")
    assert site.person_of("img3.jpg") == a
    assert site.client.get(f"/api/people/{a}").json()["name"] == "Ingrid"


def test_phone_moves_a_face_out_and_hides_that_person(site: Site) -> None:
    a = site.person_of("img1.jpg")
    assert site.person_of("img4.jpg") == a
    ctx, page = site.page(PHONE)
    try:
        page.goto(site.server.url + f"/people/{a}")
        page.get_by_role("button", name="Not them: img4.jpg").tap()
        page.wait_for_url(f"**/people/{a}?done=moved")
        assert page.get_by_role("button", name="Not them: img4.jpg").count() == 0
        site.refresh()
        moved = site.person_of("img4.jpg")
        assert moved != a
        # The owner said "not them": never suggested back into the person it left.
        assert frozenset((a, moved)) not in _pairs(site)
        page.goto(site.server.url + f"/people/{moved}")
        page.get_by_text("Name, birthday, merge or hide").tap()
        page.get_by_role("button", name="Hide this person").tap()
        page.wait_for_url(f"**/people/{moved}?done=hidden")
        page.goto(site.server.url + "/people")
        assert page.locator(f".person[data-id='{moved}']").count() == 0
        page.get_by_role("link", name="Hidden people (1)").tap()
        page.wait_for_url("**/people?hidden=1")
        assert page.locator(f".person[data-id='{moved}']").count() == 1
    finally:
        ctx.close()
    assert moved not in {p["id"] for p in site.client.get("/api/people").json()}


def test_phone_keeps_an_idea_and_downloads_it(site: Site) -> None:
    ideas = site.client.get("/api/ideas").json()
    assert ideas, "the library made no idea"
    first = ideas[0]
    ctx, page = site.page(PHONE)
    try:
        page.goto(site.server.url + "/ideas")
        card = page.locator(f"#idea-{first['id']}")
        assert card.locator("img, video").count() == 1
        card.get_by_role("button", name="Keep").tap()
        page.wait_for_url("**/ideas?done=kept*")
        assert "Kept" in page.locator(f"#idea-{first['id']} .actions").inner_text()
        with page.expect_download() as dl:
            page.locator(f"#idea-{first['id']}").get_by_role("link", name="Download").tap()
        data = Path(dl.value.path()).read_bytes()
        assert data[:3] == b"\xff\xd8\xff" or data[4:8] == b"ftyp"  # a JPEG or an MP4
        page.goto(site.server.url + "/ideas?kept=1")
        assert page.locator(f"#idea-{first['id']}").count() == 1
        # Regenerate: the same photos in the next layout, a different picture.
        page.locator(f"#idea-{first['id']}").get_by_role("button", name="Another layout").tap()
        page.wait_for_url("**/ideas?kept=1&done=regenerated*")
        again = site.client.get(f"/api/ideas/{first['id']}/media").content
        assert again[:3] == b"\xff\xd8\xff" and again != data
    finally:
        ctx.close()
    assert site.client.get(f"/api/ideas/{first['id']}").json()["state"] == "accepted"


def test_phone_adds_its_own_music_for_recaps_and_deletes_it(site: Site, tmp_path: Path) -> None:
    from tests.test_recap_api import _song

    song = _song(tmp_path / "Summer song.m4a", 6.0)
    photo = next(src for src in FILES.values() if src.suffix.lower() == ".jpg")
    ctx, page = site.page(PHONE)
    try:
        page.goto(site.server.url + "/ideas")
        upload = page.get_by_label("Add a track")
        upload.set_input_files(str(photo))  # not music: refused, with the reason
        page.get_by_role("button", name="Upload", exact=True).tap()
        page.get_by_text("Not added: this file has no sound in it").wait_for()
        upload.set_input_files(str(song))
        page.get_by_role("button", name="Upload", exact=True).tap()
        page.locator(".music .tracks li", has_text="Summer song.m4a").wait_for()
        assert "0:06" in page.locator(".music .tracks li").inner_text()
        page.get_by_role("button", name="Delete Summer song.m4a").tap()
        page.wait_for_url("**/ideas?done=track-deleted*")
        assert page.locator(".music .tracks li").count() == 0
    finally:
        ctx.close()
    assert site.client.get("/api/ideas/tracks").json() == []


def test_desktop_requests_an_export_and_downloads_it(site: Site) -> None:
    ctx, page = site.page(DESKTOP)
    try:
        page.goto(site.server.url + "/privacy")
        page.click("text=Make my export")
        page.wait_for_url("**/privacy?done=export#export")
        link = page.locator("#exports a:has-text('Download')")
        link.wait_for(timeout=240_000)  # htmx polls until the zip is ready
        with page.expect_download() as dl:
            link.click()
        with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as z:
            names = z.namelist()
        assert any(n.endswith("img3.jpg") for n in names), names
        assert any(n.endswith(".json") for n in names), names
        page.reload()
        log = page.inner_text("#log")  # the access log, in words
        assert "asked for an export" in log and "downloaded an export" in log, log
    finally:
        ctx.close()


def test_phone_switches_faces_off_and_faces_disappear(site: Site) -> None:
    photo = site.assets["img1.jpg"]["id"]
    ctx, page = site.page(PHONE)
    try:
        # The viewer's info panel names the faces found, and the scope that allowed them...
        page.goto(site.server.url + f"/timeline/info/{photo}")
        assert "People" in page.inner_text("body") and "faces" in page.inner_text("body")
        page.goto(site.server.url + "/privacy")
        switch = page.locator("button.switch[data-scope=faces]")
        assert switch.get_attribute("aria-checked") == "true"
        switch.tap()
        # htmx swaps the switches in place (no page load).
        page.locator("button.switch[data-scope=faces][aria-checked=false]").wait_for()
        page.goto(site.server.url + "/people")
        assert "Finding faces is switched off" in page.inner_text("main")
        assert page.locator(".person, .pair").count() == 0
        # ...and with faces off it has none left to show.
        page.goto(site.server.url + f"/timeline/info/{photo}")
        info = page.inner_text("body")
        assert "People" not in info and "face" not in info.lower(), info
    finally:
        ctx.close()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        site.refresh()
        if all(not a.get("faces") for a in site.assets.values()):
            break
        time.sleep(1)
    assert all(not a.get("faces") for a in site.assets.values())
    assert site.client.get("/api/people").status_code == 403


def test_desktop_deletes_the_account_then_keeps_it(site: Site) -> None:
    ctx, page = site.page(DESKTOP)
    try:
        page.goto(site.server.url + "/privacy")
        page.get_by_label("I understand").check()
        page.get_by_role("button", name="Delete my account").click()
        page.wait_for_url("**/privacy?done=deletion#delete")
        alert = page.locator(".danger-zone").inner_text()
        due = site.client.get("/api/me/report", params={"asset_limit": 1}).json()["account"]
        assert due["deletion_due_at"][:10] in alert and "/api/receipts/" in alert
        page.get_by_role("button", name="Keep my account").click()
        page.wait_for_url("**/privacy?done=kept")
        assert page.locator(".danger-zone").count() == 0
    finally:
        ctx.close()
    account = site.client.get("/api/me/report", params={"asset_limit": 1}).json()["account"]
    assert account.get("deletion_due_at") is None
    assert site.client.get("/api/consent").json()["scopes"]["cloud_processing"] is True


@pytest.mark.slow
def test_phone_watches_and_seeks_the_road_trip_recap(site: Site, tmp_path: Path) -> None:
    """The 2015 road trip becomes a recap video; on a phone it loads, plays and seeks (Range)."""
    from camroll.config import get_settings
    from camroll.db.engine import _factory
    from camroll.db.migrate import upgrade
    from camroll.storage import _cached

    demo = SHARED / "camera-roll" / "pigallery2" / "demo"
    roll = tmp_path / "roll"
    roll.mkdir()
    for photo in sorted(demo.glob("IMG_*.jpg")):
        shutil.copy(photo, roll / photo.name)
    (tmp_path / "data").mkdir()
    env = {
        "CAMROLL_DATA_DIR": str(tmp_path / "data"),
        "CAMROLL_DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'camroll.db'}",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        upgrade()
        server = Server(env).start()
        try:
            from camroll.accounts import set_password
            from camroll.db.engine import session_scope
            from camroll.db.models import User

            token = make_user(EMAIL)
            with session_scope() as s:
                set_password(s.query(User).filter_by(email=EMAIL).one(), PASSWORD)
            client = server.client(token)
            scopes = {"cloud_processing": True, "places": True, "creations": True}
            assert client.put("/api/consent", json={"scopes": scopes}).status_code == 200
            assert sync(server, token, env, roll)["failed"] == []
            _wait_jobs(client, timeout=1200)
            recaps = [i for i in client.get("/api/ideas").json() if i["media_type"] == "video/mp4"]
            assert recaps, "the road trip made no recap"
            # The module's browser (one Playwright per process), this library's server.
            trip = Site(server, client, env, {}, site.browser)
            ctx, page = trip.page(PHONE)
            try:
                statuses: list[int] = []
                page.on(
                    "response",
                    lambda r: statuses.append(r.status) if "/media" in r.url else None,
                )
                page.goto(server.url + "/ideas")
                video = page.locator(f"#idea-{recaps[0]['id']} video")
                state = video.evaluate(
                    """async v => {
                      if (v.readyState < 1) await new Promise(ok => v.onloadedmetadata = ok);
                      const d = v.duration;
                      v.muted = true;
                      await v.play();
                      v.currentTime = d / 2;
                      await new Promise(ok => v.onseeked = ok);
                      v.pause();
                      return {duration: d, at: v.currentTime, w: v.videoWidth, h: v.videoHeight};
                    }"""
                )
            finally:
                ctx.close()
            assert 15 <= state["duration"] <= 60, state
            assert max(state["w"], state["h"]) == 1920, state  # 1080p, landscape or portrait
            assert abs(state["at"] - state["duration"] / 2) < 1.5, state
            assert 206 in statuses, statuses  # seeking asked for a byte range
        finally:
            server.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()
