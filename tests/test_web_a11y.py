"""Page quality on every page of the web app: axe-core (from npm) finds no serious or critical
violation, and nothing overflows sideways on a 360 px wide phone, in light and dark themes.

Every page is listed, those other people build included: a page that is missing fails here.
One server, one small analysed library (three photos of two women), one browser.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.conftest import REPO, SHARED, Server, make_user
from tests.test_sync_e2e import all_assets, sync
from tests.test_web import ARGS, CHROMIUM
from tests.test_web_pages import _wait_jobs

pytestmark = pytest.mark.backends("sqlite")

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text() if AXE.exists() else ""
DEEPFACE = SHARED / "faces" / "deepface"
FILES = ["img1.jpg", "img2.jpg", "img26.jpg"]
EMAIL, PASSWORD = "a11y@example.org", "a11y-password-1"
# name -> path; "{person}" is a person of the library. Signed-in pages after the login page.
PAGES = {
    "timeline": "/",
    "welcome": "/welcome",
    "upload": "/upload",
    "trash": "/trash",
    "search": "/search?q=woman",
    "people": "/people",
    "person": "/people/{person}",
    "ideas": "/ideas",
    "privacy": "/privacy",
    "report": "/report",
    "devices": "/devices",
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    from camroll.accounts import set_password
    from camroll.config import get_settings
    from camroll.db.engine import _factory, session_scope
    from camroll.db.migrate import upgrade
    from camroll.db.models import User
    from camroll.storage import _cached

    tmp = tmp_path_factory.mktemp("a11y")
    (tmp / "data").mkdir()
    env = {
        "CAMROLL_DATA_DIR": str(tmp / "data"),
        "CAMROLL_DATABASE_URL": f"sqlite:///{tmp / 'data' / 'camroll.db'}",
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    roll = tmp / "roll"
    roll.mkdir()
    for name in FILES:
        shutil.copy(DEEPFACE / name, roll / name)
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
            scopes = {"cloud_processing": True, "faces": True, "creations": True}
            assert client.put("/api/consent", json={"scopes": scopes}).status_code == 200
            assert sync(server, token, env, roll)["failed"] == []
            _wait_jobs(client)
            people = client.get("/api/people").json()
            assert people and len(all_assets(client)) == len(FILES)
            yield server, people[0]["id"]
        finally:
            server.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()


def _audit(page: Page) -> dict:
    """axe-core's serious and critical violations, and how far the page overflows sideways.

    axe goes in through the DevTools protocol: the pages' Content-Security-Policy rightly
    refuses an injected <script> (add_script_tag), and the policy stays on for the audit."""
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE + "\n;true")
    found = page.evaluate(
        """async () => {
          const r = await axe.run(document, {resultTypes: ['violations']});
          return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
            .map(v => ({id: v.id, impact: v.impact,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return {"violations": found, "overflow": overflow}


def test_every_page_passes_axe_and_fits_a_360px_phone(library: tuple[Server, str]) -> None:
    server, person = library
    assert AXE.exists(), "npm ci installs axe-core"
    problems: dict[str, dict] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        ctx = browser.new_context(viewport={"width": 360, "height": 780}, has_touch=True)
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        responses: dict[str, int] = {}

        page.goto(server.url + "/login")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            result = _audit(page)
            if result["violations"] or result["overflow"] > 0:
                problems[f"login/{scheme}"] = result
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)

        for name, path in PAGES.items():
            response = page.goto(server.url + path.format(person=person))
            responses[name] = response.status if response else 0
            if responses[name] != 200:
                continue
            page.wait_for_load_state("networkidle")
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                result = _audit(page)
                if result["violations"] or result["overflow"] > 0:
                    problems[f"{name}/{scheme}"] = result
        browser.close()
    missing = {n: s for n, s in responses.items() if s != 200}
    assert not missing, f"pages that do not load: {missing}"
    assert not problems, json.dumps(problems, indent=1)


def test_axe_is_the_one_from_the_lockfile() -> None:
    lock = json.loads((REPO / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/axe-core"]["version"]
    assert f"axe v{version}" in Path(AXE).read_text()[:200]
