"""The web app in a real browser (Debian's Chromium driven by Playwright): login, then a
timeline of thumbnails by day."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import ROLL, Server, make_user
from tests.test_sync_e2e import sync

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.backends("sqlite")  # the browser checks pages; the database is covered elsewhere
def test_login_then_timeline_shows_thumbnails_by_day(
    server: Server, env: dict, tmp_path: Path
) -> None:
    token = make_user("web@example.org", password="correct horse")
    result = sync(server, token, env, ROLL / "pigallery2" / "demo")
    assert result["failed"] == []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        assert page.url.endswith("/login")  # signed-out visitors are sent to the login page

        page.fill("input[name=email]", "web@example.org")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "Wrong email or password" in page.inner_text("[role=alert]")

        page.fill("input[name=password]", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_url(server.url + "/")
        days = page.locator("section.day h4").all_inner_texts()
        assert "2015-06-14" in " ".join(days) or any(d.startswith("2015-") for d in days), days
        # Newest first in true (UTC) order; a time-zone change can put a local day one day
        # out of calendar order next to its neighbour, never more.
        dates = [date.fromisoformat(d[:10]) for d in days]
        assert all(b <= a + timedelta(days=1) for a, b in pairwise(dates)), days

        page.screenshot(path=str(tmp_path / "timeline.png"), full_page=False)
        # Thumbnails load lazily: scroll through the page as a person would.
        height = page.evaluate("document.body.scrollHeight")
        for y in range(0, height + 900, 600):
            page.evaluate(f"window.scrollTo(0, {y})")
            page.wait_for_timeout(50)
        page.wait_for_load_state("networkidle")
        page.wait_for_function(
            "[...document.querySelectorAll('.tile img')].every(e => e.complete)", timeout=15000
        )
        images = page.locator(".tile img")
        assert images.count() >= 10
        widths = images.evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(w > 0 for w in widths), widths  # every thumbnail decrypted and decoded
        assert "quarantined" in page.inner_text(".summary")  # broken image.JPG is listed
        assert "empty" in page.inner_text("#quarantine")

        page.click("text=Sign out")
        page.wait_for_url(server.url + "/login")
        page.goto(server.url + "/")
        assert page.url.endswith("/login")
        browser.close()
