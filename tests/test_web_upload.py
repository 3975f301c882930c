"""First run and upload in a real browser (Debian's Chromium through Playwright): a new account
opts in with the consent switches, uploads real camera-roll files over tus from the file chooser
on a phone, picks them again and sends nothing, resumes an upload whose connection was cut (on a
desktop, by drag and drop), shares files through the Web Share Target, and the app is
installable (manifest, icons, a service worker that caches no photo).

One server for the module; each test makes its own account."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Request, Route, sync_playwright
from sqlalchemy import func, select

from camroll.db.engine import session_scope
from camroll.db.models import Upload, User
from tests.conftest import ROLL, Server, make_user
from tests.test_web import ARGS, CHROMIUM

PG = ROLL / "pigallery2"
# Ten files as a phone would hold them: a Live Photo (HEIC still + MOV motion), a video, a broken
# JPEG and six photos.
PICK = [
    PG / "test-assets/live_photo/IMG_7943.HEIC",
    PG / "test-assets/live_photo/IMG_7943_HEVC.MOV",
    PG / "test-assets/sidecar/bunny_1sec.mp4",
    PG / "demo/broken image.JPG",
    PG / "demo/IMG_8824.jpg",
    PG / "demo/IMG_8943.jpg",
    PG / "demo/Chars_exiftool.jpg",
    PG / "demo/IMG_9398-2.jpg",
    PG / "demo/IMG_6297.jpg",
    PG / "demo/wild-2.jpg",
]
BROKEN = "broken image.JPG"
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
WAIT_MS = 240_000  # processing HEIC and video on a loaded 2-core machine


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One `camroll serve` (SQLite) for the whole module; make_user writes to its database."""
    from camroll.config import get_settings
    from camroll.db.engine import _factory
    from camroll.db.migrate import upgrade
    from camroll.storage import _cached

    root = Path(tempfile.mkdtemp(prefix="camroll-web-upload-"))
    (root / "data").mkdir()
    env = {
        "CAMROLL_DATA_DIR": str(root / "data"),
        "CAMROLL_DATABASE_URL": f"sqlite:///{root / 'data' / 'camroll.db'}",
        "XDG_STATE_HOME": str(root / "state"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        upgrade()
        srv = Server(env).start()
        try:
            yield srv
        finally:
            srv.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    for f in PICK:
        assert f.is_file(), f"missing test data: {f}"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def sign_in(page: Page, server: Server, email: str, password: str) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def no_overflow(page: Page) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{page.url} overflows: {scroll} > {width}"


def outcomes(page: Page, n: int) -> dict[str, tuple[str, str]]:
    """The newest `n` rows of the upload list: file name -> (state, what the user reads)."""
    rows = page.locator(".outcomes li").all()[:n]
    return {
        r.locator(".name").inner_text(): (
            r.get_attribute("data-state") or "",
            r.locator(".outcome").inner_text(),
        )
        for r in rows
    }


def csp_violations(page: Page) -> list[str]:
    """Every script and style of these pages must pass the site's Content-Security-Policy."""
    seen: list[str] = []
    page.on("console", lambda m: seen.append(m.text) if "Security Policy" in m.text else None)
    return seen


def wait_idle(page: Page) -> None:
    page.wait_for_selector("#uploader[data-state=idle]", state="attached", timeout=WAIT_MS)


def api(page: Page, server: Server, path: str) -> dict | list:
    res = page.request.get(server.url + path)
    assert res.ok, (path, res.status, res.text())
    return res.json()


@pytest.mark.backends("sqlite")
def test_phone_first_run_opt_in_upload_ten_then_pick_again_uploads_nothing(
    server: Server, browser: Browser, backend: str
) -> None:
    make_user("phone@example.org", consent=False, password="phone pass 1")
    context = browser.new_context(**PHONE)
    page = context.new_page()
    csp = csp_violations(page)
    tus: list[str] = []
    page.on(
        "request",
        lambda r: tus.append(f"{r.method} {r.url}") if "/api/uploads" in r.url else None,
    )

    # First sign-in lands on the onboarding page: every scope explained, every switch off.
    sign_in(page, server, "phone@example.org", "phone pass 1")
    assert page.url == server.url + "/welcome"
    switches = page.locator("button[role=switch]")
    assert switches.count() == 5
    assert (
        switches.evaluate_all("els => els.map(e => e.getAttribute('aria-checked'))")
        == ["false"] * 5
    )
    uploads_scope = page.locator("#scope-cloud_processing")
    text = uploads_scope.inner_text()
    assert "What it lets camroll do" in text and "When you switch it off" in text
    assert "30 days later" in text  # the retention deadline, in words
    assert "nothing is lost" in text  # ... and the undo
    no_overflow(page)

    # Nothing can be uploaded yet: the upload page says so and offers only the switch.
    page.goto(server.url + "/upload")
    assert "Nothing can be uploaded yet" in page.inner_text("#upload-off")
    assert page.locator("input[type=file]").count() == 0

    # Opt in on the onboarding page with the switch (keyboard: focus + Enter).
    page.goto(server.url + "/welcome")
    switch = page.locator("#scope-cloud_processing button[role=switch]")
    switch.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#scope-cloud_processing button[aria-checked=true]")
    assert page.locator("#welcome-next a", has_text="Upload photos").is_visible()
    history = api(page, server, "/api/consent/history")
    assert [(h["scope"], h["granted"], h["client"]) for h in history] == [
        ("cloud_processing", True, "web")
    ]
    page.click("#scope-cloud_processing summary")
    assert "Switched on" in page.inner_text("#scope-cloud_processing .scope-history")

    # Upload ten files through the file chooser.
    page.click("#welcome-next a")
    page.wait_for_url(server.url + "/upload")
    accept = page.get_attribute("input[type=file]", "accept") or ""
    for kind in ("image/*", "video/*", ".heic", ".heif", ".mov", ".dng"):
        assert kind in accept.split(","), accept
    assert page.get_attribute("input[type=file]", "multiple") is not None
    page.set_input_files("input[type=file]", [str(f) for f in PICK])
    wait_idle(page)
    no_overflow(page)
    first = outcomes(page, 10)
    assert set(first) == {f.name for f in PICK}
    state, said = first[BROKEN]
    assert state == "quarantined", first
    assert said.startswith("Quarantined: ") and len(said) > 25, said  # a reason in words
    assert {n: s for n, (s, _) in first.items() if n != BROKEN} == {
        f.name: "stored" for f in PICK if f.name != BROKEN
    }, first
    assert "10 of 10 files" in page.inner_text(".stats")
    posts = [t for t in tus if t.startswith("POST ")]
    assert len(posts) == 10, tus  # one tus creation per file

    # The timeline shows them (the Live Photo's motion may be folded into its still), and the
    # broken one with its reason.
    assets = {a["filename"]: a for a in api(page, server, "/api/assets?limit=100")["items"]}
    assert set(assets) == {f.name for f in PICK}
    broken = assets[BROKEN]
    assert broken["status"] == "quarantined" and broken["quarantine_reason"]
    assert first[BROKEN][1] == f"Quarantined: {broken['quarantine_detail']}"
    page.goto(server.url + "/")
    page.wait_for_load_state("networkidle")
    html = page.content()
    shown = [
        a
        for a in assets.values()
        if a["status"] == "ready" and not (a["kind"] == "video" and a["live_pair_id"])
    ]
    assert len(shown) >= 8
    missing = [a["filename"] for a in shown if a["id"] not in html]
    assert not missing, f"not in the timeline: {missing}\n{html[-1500:]}"
    quarantine = page.locator("#quarantine").inner_text()
    assert BROKEN in quarantine and broken["quarantine_reason"] in quarantine

    # The same ten picked again: hashed, asked about, and nothing is sent.
    page.goto(server.url + "/upload")
    tus.clear()
    page.set_input_files("input[type=file]", [str(f) for f in PICK])
    wait_idle(page)
    again = outcomes(page, 10)
    assert again == {f.name: ("had", "Already had") for f in PICK}, again
    assert tus == [], tus  # zero tus requests: no POST, no PATCH
    assert len(api(page, server, "/api/assets?limit=100")["items"]) == 10
    assert csp == [], csp
    context.close()


@pytest.mark.backends("sqlite")
def test_desktop_drop_resumes_after_cut_connection_and_share_target(
    server: Server, browser: Browser, backend: str
) -> None:
    make_user("desk@example.org", consent=True, password="desk pass 1")
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    csp = csp_violations(page)
    sign_in(page, server, "desk@example.org", "desk pass 1")
    assert page.url == server.url + "/"  # opted in already: no onboarding

    # Installable: manifest linked, icons real PNGs, a service worker controlling the root.
    manifest_url = page.get_attribute("link[rel=manifest]", "href")
    manifest = api(page, server, manifest_url or "/missing")
    assert manifest["display"] == "standalone" and manifest["start_url"] == "/"
    assert manifest["share_target"]["action"] == "/share"
    assert manifest["share_target"]["enctype"] == "multipart/form-data"
    for icon in manifest["icons"]:
        body = page.request.get(server.url + icon["src"]).body()
        w, h = Image.open(io.BytesIO(body)).size
        assert f"{w}x{h}" == icon["sizes"], icon
    scope = page.evaluate(
        "navigator.serviceWorker.ready.then(r => r.scope)"
    )  # resolves once the worker is active
    assert scope == server.url + "/"

    # A 1.5 MB video in 512 KiB tus chunks; the second PATCH's connection is cut.
    movie = ROLL / "lychee/Samples/train.mov"
    data = movie.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    seen: list[str] = []
    offsets: list[int] = []
    state = {"patches": 0}

    def cut_second_patch(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            state["patches"] += 1
            offsets.append(int(request.headers["upload-offset"]))
            if state["patches"] == 1:
                time.sleep(1.5)  # a slow first chunk, so speed and time left are measured
            if state["patches"] == 2:
                seen.append("cut")
                route.abort("connectionreset")
                return
        seen.append(request.method)
        route.continue_()

    page.route("**/api/uploads/*", cut_second_patch)
    page.goto(server.url + "/upload")
    page.evaluate("document.getElementById('uploader').dataset.chunkBytes = String(512 * 1024)")
    # Every text the progress line shows, as the user would have read it.
    page.evaluate(
        """() => {
            const stats = document.querySelector("#uploader .stats");
            window.statsSeen = [];
            new MutationObserver(() => window.statsSeen.push(stats.textContent))
                .observe(stats, { childList: true, characterData: true, subtree: true });
        }"""
    )
    # Drag and drop, as on a desktop: a real DataTransfer carrying the file.
    page.evaluate(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "video/quicktime" }));
            const zone = document.querySelector(".dropzone");
            for (const type of ["dragenter", "dragover", "drop"]) {
                const init = { dataTransfer: dt, bubbles: true, cancelable: true };
                zone.dispatchEvent(new DragEvent(type, init));
            }
        }""",
        [base64.b64encode(data).decode(), movie.name],
    )
    wait_idle(page)
    assert outcomes(page, 1) == {movie.name: ("stored", "Stored")}
    lines = page.evaluate("window.statsSeen")
    mb = f"{len(data) / 1e6:.1f} MB"
    assert any(
        re.fullmatch(rf"0 of 1 files · [\d.]+ [KM]B of {mb} · [\d.]+ [KM]B/s · about \d+ s left", t)
        for t in lines
    ), lines  # files done, bytes, speed and time left while it runs
    assert lines[-1] == f"1 of 1 files · {mb} of {mb}", lines
    assert "cut" in seen and "HEAD" in seen[seen.index("cut") :], seen  # asked where it stood
    chunk = 512 * 1024
    assert offsets[:2] == [0, chunk] and offsets[2] == chunk, offsets  # resumed, not restarted
    assert offsets[-1] == 2 * chunk and state["patches"] == 4, offsets
    mine = [a for a in api(page, server, "/api/assets?limit=100")["items"] if a["checksum"] == sha]
    assert len(mine) == 1 and mine[0]["size"] == len(data)
    original = page.request.get(server.url + mine[0]["original_url"]).body()
    assert hashlib.sha256(original).hexdigest() == sha  # every byte, once, in order
    page.unroute("**/api/uploads/*")

    # The service worker keeps the app shell, never photos or API answers.
    cached = page.evaluate(
        """async () => {
            const out = [];
            for (const k of await caches.keys())
                for (const r of await (await caches.open(k)).keys()) out.push(r.url);
            return out;
        }"""
    )
    assert any(u.endswith("/static/camroll.css") for u in cached), cached
    assert not [u for u in cached if "/api/" in u], cached
    # Without a connection the installed app says so, rather than showing a browser error.
    context.set_offline(True)
    page.goto(server.url + "/people")
    assert page.inner_text("h1") == "You are offline"
    context.set_offline(False)

    # Web Share Target: the share sheet POSTs the files as multipart `media`, as this form does.
    # One new photo, one already had, one broken: each gets its verdict on the page.
    shared = [PG / "demo/IMG_1252.jpg", movie, PG / "demo" / BROKEN]
    page.goto(server.url + "/upload")
    page.set_content(
        '<form method="post" action="/share" enctype="multipart/form-data">'
        '<input type="file" name="media" multiple><button>Share</button></form>'
    )
    page.set_input_files("input[name=media]", [str(f) for f in shared])
    page.click("text=Share")
    page.wait_for_url(server.url + "/share")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.outcomes li')].every(li =>"
        " ['stored', 'had', 'quarantined'].includes(li.dataset.state)"
        " && !li.textContent.includes('processing'))",
        timeout=WAIT_MS,
    )
    got = outcomes(page, 3)
    assert got["IMG_1252.jpg"] == ("stored", "Stored"), got
    assert got[movie.name] == ("had", "Already had"), got
    assert got[BROKEN][0] == "quarantined" and got[BROKEN][1].startswith("Quarantined: "), got
    names = [a["filename"] for a in api(page, server, "/api/assets?limit=100")["items"]]
    assert sorted(names) == sorted(f.name for f in shared)
    assert csp == [], csp
    context.close()


@pytest.mark.backends("sqlite")
def test_share_and_consent_refuse_bad_requests(server: Server, backend: str) -> None:
    """Bad input gets a clear 4xx and stores nothing; nothing is stored without consent."""
    make_user("late@example.org", consent=False, password="late pass 1")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        res = http.post("/login", data={"email": "late@example.org", "password": "late pass 1"})
        assert res.status_code == 303 and res.headers["location"] == "/welcome"
        photo = (PG / "demo/IMG_8824.jpg").read_bytes()
        res = http.post("/share", files=[("media", ("x.jpg", photo, "image/jpeg"))])
        assert res.status_code == 403 and "Nothing was stored" in res.text
        assert http.post("/consent/nonsense", data={"granted": "true"}).status_code == 404
        assert http.post("/consent/faces", data={"granted": "yes"}).status_code == 422
        res = http.post(
            "/consent/cloud_processing",
            data={"granted": "true"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert res.status_code == 403
        # htmx swaps the switches in place (as the privacy centre uses them).
        res = http.post(
            "/consent/cloud_processing", data={"granted": "true"}, headers={"HX-Request": "true"}
        )
        assert res.status_code == 200 and res.text.count('aria-checked="true"') == 1
        assert http.post("/share", data={"title": "no files"}).status_code == 400
        assert http.post("/share", json={"media": "x"}).status_code == 400  # not multipart
        # A share whose body ends in the middle of a file keeps nothing of it.
        cut = (
            b'--b0\r\nContent-Disposition: form-data; name="media"; filename="cut.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + photo[: len(photo) // 2]
        )
        res = http.post(
            "/share", content=cut, headers={"Content-Type": "multipart/form-data; boundary=b0"}
        )
        assert res.status_code == 400 and "No photos or videos came" in res.text
        assert http.get("/api/assets").json()["items"] == []
        with session_scope() as s:  # no half-received upload left behind either
            late = select(User.id).where(User.email == "late@example.org")
            assert s.scalar(select(func.count(Upload.id)).where(Upload.user_id.in_(late))) == 0
        res = http.post("/consent/cloud_processing", data={"granted": "false", "next": "//evil"})
        assert res.status_code == 303 and res.headers["location"] == "/welcome"
        # Opted out: the deadline is shown with the undo, and the undo clears it.
        page = http.get("/welcome").text
        assert "scheduled for deletion" in page and "to undo it" in page
        http.post("/consent/cloud_processing", data={"granted": "true"})
        assert "scheduled for deletion" not in http.get("/welcome").text
        assert http.get("/api/consent").json()["deletion_due_at"] is None
