"""Analysis through the real server: faces and people, tags, places and quality after a sync;
the owner's edits to people; and revoking then granting each analysis scope again."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from camroll.db.engine import session_scope
from camroll.db.models import (
    AssetPlace,
    AssetQuality,
    AssetTag,
    Face,
    FaceEmbedding,
    FaceExpression,
    HomeLocation,
    Person,
)
from tests.conftest import ROLL, SHARED, Server, make_user, run_cli
from tests.test_sync_e2e import all_assets, sync

DEEPFACE = SHARED / "faces" / "deepface"
# Two photos of one woman (she is also in the couple), one of another woman, a cat, a Yosemite
# landscape and a London street scene with GPS.
FILES = {
    "img1.jpg": DEEPFACE / "img1.jpg",
    "img2.jpg": DEEPFACE / "img2.jpg",
    "img26.jpg": DEEPFACE / "img26.jpg",
    "couple.jpg": DEEPFACE / "couple.jpg",
    "cat.hif": ROLL / "pillow-heif" / "heif_other" / "cat.hif",
    "IMG_6296.jpg": ROLL / "pigallery2" / "demo" / "IMG_6296.jpg",
    "big_ben.jpg": ROLL / "pigallery2" / "demo" / "timestamps" / "big_ben.jpg",
}
pytestmark = pytest.mark.backends("sqlite")
ANALYSIS = {"cloud_processing": True, "faces": True, "places": True, "content": True}


def _count(model: type, user_id: str) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(model).where(model.user_id == user_id))


def _user_id(client: httpx.Client) -> str:
    return client.get("/api/me/report", params={"asset_limit": 1}).json()["user_id"]


def _wait_jobs(client: httpx.Client, timeout: float = 240) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = client.get("/api/jobs").json()
        if jobs["pending"] == 0 and jobs["running"] == 0:
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"jobs did not finish: {jobs}")


def _analyse(server: Server, env: dict, roll: Path) -> tuple[httpx.Client, dict[str, dict]]:
    """FILES synced by a new owner with every analysis scope, analysed: (client, by name)."""
    for name, src in FILES.items():
        shutil.copy(src, roll / name)
    token = make_user("analysed@example.org")
    client = server.client(token)
    assert client.put("/api/consent", json={"scopes": ANALYSIS}).status_code == 200
    result = sync(server, token, env, roll)
    # `sync --wait` waits for analysis too: nothing is pending when it returns.
    assert result["failed"] == [] and result["jobs"]["failed"] == 0, result
    assert result["jobs"]["pending"] == 0, result
    by_name = {
        a["filename"]: client.get(f"/api/assets/{a['id']}").json() for a in all_assets(client)
    }
    return client, by_name


@pytest.fixture
def analysed(server: Server, env: dict, tmp_path: Path) -> tuple[httpx.Client, dict[str, dict]]:
    """A library of its own, for a test that moves faces, merges people or revokes scopes."""
    roll = tmp_path / "roll"
    roll.mkdir()
    return _analyse(server, env, roll)


@pytest.fixture(scope="module")
def shared(
    module_server: Server, module_env: dict, tmp_path_factory: pytest.TempPathFactory
) -> tuple[httpx.Client, dict[str, dict]]:
    """One library for the tests that only read it or name a person (not who is who)."""
    return _analyse(module_server, module_env, tmp_path_factory.mktemp("roll"))


def test_sync_finds_people_tags_places_and_quality(shared: tuple) -> None:
    client, assets = shared
    one, two, other = assets["img1.jpg"], assets["img2.jpg"], assets["img26.jpg"]
    for a in (one, two, other):
        assert len(a["faces"]) == 1, a["faces"]
        face = a["faces"][0]
        assert face["person_id"] and face["expression"] and 0 <= face["smile"] <= 1
        assert 0 <= face["box"]["x"] < 1 and 0 < face["box"]["w"] <= 1
        assert len(face["landmarks"]) == 5
    # The same person in two photos; someone else in the third.
    assert one["faces"][0]["person_id"] == two["faces"][0]["person_id"]
    assert other["faces"][0]["person_id"] != one["faces"][0]["person_id"]
    couple = assets["couple.jpg"]["faces"]
    assert len(couple) == 2 and couple[0]["person_id"] != couple[1]["person_id"]

    assert "cat" in {t["label"] for t in assets["cat.hif"]["tags"]}
    assert assets["cat.hif"]["faces"] == []
    for a in assets.values():
        assert a["quality"] is not None and 0 <= a["quality"]["score"] <= 1
        for t in a["tags"]:
            assert t["sources"], t  # every tag says where it came from

    yosemite = assets["IMG_6296.jpg"]["place"]
    assert yosemite["country_code"] == "US" and yosemite["region"] == "California"
    assert assets["big_ben.jpg"]["place"]["country_code"] == "GB"
    assert assets["img1.jpg"]["place"] is None  # no GPS, no place

    people = client.get("/api/people").json()
    assert sum(p["face_count"] for p in people) == 5
    pid = one["faces"][0]["person_id"]
    person = next(p for p in people if p["id"] == pid)
    assert person["face_count"] == 3  # img1, img2 and the woman in couple.jpg
    cover = client.get(person["cover_url"])
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/jpeg"

    # The transparency report accounts for everything the API shows about these photos.
    report = client.get("/api/me/report").json()["categories"]
    shown = {
        "faces": sum(len(a["faces"]) for a in assets.values()),
        "expressions": sum(1 for a in assets.values() for f in a["faces"] if f["expression"]),
        "face_embeddings": sum(len(a["faces"]) for a in assets.values()),
        "tags": sum(len(a["tags"]) for a in assets.values()),
        "places": sum(1 for a in assets.values() if a["place"]),
        "quality": sum(1 for a in assets.values() if a["quality"]),
        "people": len(client.get("/api/people", params={"include_hidden": True}).json()),
    }
    assert {k: report[k]["count"] for k in shown} == shown
    assert {s["scope"] for s in report["faces"]["scopes"]} == {"faces"}
    assert report["faces"]["made_by"][0]["model"] == "retinaface-mobilenet"

    listed = {a["filename"] for a in all_assets(client, person=pid)}
    assert listed == {"img1.jpg", "img2.jpg", "couple.jpg"}
    assert {a["filename"] for a in all_assets(client, tag="cat")} == {"cat.hif"}
    assert {a["filename"] for a in all_assets(client, place="California")} == {"IMG_6296.jpg"}
    assert {a["filename"] for a in all_assets(client, place="gb")} == {"big_ben.jpg"}


def test_owner_edits_survive_a_full_recluster(analysed: tuple, server: Server) -> None:
    from camroll.people.assign import recluster_user

    client, assets = analysed
    pid = assets["img1.jpg"]["faces"][0]["person_id"]
    r = client.patch(f"/api/people/{pid}", json={"name": "Anna", "birthday": "1990-05-17"})
    assert r.status_code == 200 and r.json()["name"] == "Anna"
    assert client.patch(f"/api/people/{pid}", json={"birthday": "17/05/1990"}).status_code == 422

    # Split: img2's face goes to a new person; merge: img26's person into Anna.
    face2 = assets["img2.jpg"]["faces"][0]["id"]
    split = client.post(f"/api/faces/{face2}/move", json={"person_id": None}).json()
    assert split["id"] != pid and split["face_count"] == 1
    other = assets["img26.jpg"]["faces"][0]["person_id"]
    merged = client.post(f"/api/people/{pid}/merge", json={"other_id": other}).json()
    assert merged["name"] == "Anna" and merged["face_count"] == 3
    assert client.get(f"/api/people/{other}").status_code == 404
    hidden = client.patch(f"/api/people/{split['id']}", json={"hidden": True}).json()
    assert hidden["hidden"] and split["id"] not in {
        p["id"] for p in client.get("/api/people").json()
    }

    with session_scope() as s:
        recluster_user(s, _user_id(client))

    after = {a["filename"] for a in all_assets(client, person=pid)}
    assert after == {"img1.jpg", "couple.jpg", "img26.jpg"}, after
    assert {a["filename"] for a in all_assets(client, person=split["id"])} == {"img2.jpg"}
    assert client.get(f"/api/people/{pid}").json()["birthday"] == "1990-05-17"

    # Search: a thing, a place, a year, a person's name, a synonym; never someone else's.
    def found(q: str) -> set[str]:
        r = client.get("/api/search", params={"q": q})
        assert r.status_code == 200, r.text
        return {h["asset"]["filename"] for h in r.json()["items"]}

    assert "cat.hif" in found("cat") and "IMG_6296.jpg" not in found("cat")
    assert found("Yosemite") == {"IMG_6296.jpg"}
    assert found("London 2023") == {"big_ben.jpg"}
    assert found("kitten") >= {"cat.hif"}
    client.patch(f"/api/people/{pid}", json={"name": "Maya Lindqvist"})
    assert found("Maya") == {"img1.jpg", "couple.jpg", "img26.jpg"}  # after the edits above
    assert found("xyzzy") == set()
    # Hostile or huge queries: a clear refusal or nothing found, never an error.
    assert found("'; DROP TABLE assets; -- (.*[") == set()
    too_long = client.get("/api/search", params={"q": "x" * 201})
    assert too_long.status_code == 422 and "200" in too_long.text
    assert client.get("/api/search", params={"q": ""}).status_code == 422
    assert client.post(f"/api/people/{pid}/merge", json={"other_id": pid}).status_code == 422
    assert client.patch(f"/api/people/{pid}", json={"name": " " * 5}).status_code == 422
    assert client.patch(f"/api/people/{pid}", json={"clear": ["hidden"]}).status_code == 422

    # The person's cover: a square cut of their face from the photo's preview.
    cover = client.get(f"/api/people/{pid}/cover")
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(cover.content)).size == (256, 256)

    # Someone else's people and faces answer 404.
    stranger = server.client(make_user("stranger@example.org"))
    stranger.put("/api/consent", json={"scopes": ANALYSIS})
    face = assets["img1.jpg"]["faces"][0]
    assert stranger.get(f"/api/people/{face['person_id']}").status_code == 404
    assert stranger.patch(f"/api/people/{face['person_id']}", json={"name": "x"}).status_code == 404
    assert stranger.post(f"/api/faces/{face['id']}/move", json={}).status_code == 404
    assert stranger.get(f"/api/people/{face['person_id']}/cover").status_code == 404
    # Even a person of theirs whose cover names someone else's face shows no one's face.
    stranger_id = _user_id(stranger)
    with session_scope() as s:
        planted = Person(
            user_id=stranger_id, scope="faces", model="test", model_version="1",
            cover_face_id=face["id"], face_count=1,
        )  # fmt: skip
        s.add(planted)
        s.flush()
        planted_id = planted.id
    assert stranger.get(f"/api/people/{planted_id}/cover").status_code == 404
    assert all_assets(stranger, person=face["person_id"]) == []
    assert stranger.get("/api/search", params={"q": "Maya"}).json()["items"] == []


SCOPE_DATA = {
    "faces": (Face, FaceEmbedding, FaceExpression, Person),
    "places": (AssetPlace, HomeLocation),
    "content": (AssetTag, AssetQuality),
}


@pytest.mark.backends("sqlite", "postgresql")
def test_revoking_a_scope_deletes_its_data_and_granting_recomputes_it(analysed: tuple) -> None:
    client, assets = analysed
    user_id = _user_id(client)
    pid = assets["img1.jpg"]["faces"][0]["person_id"]
    client.patch(f"/api/people/{pid}", json={"name": "Anna"})
    for scope, models in SCOPE_DATA.items():
        before = {m.__tablename__: _count(m, user_id) for m in models}
        assert all(n > 0 for k, n in before.items() if k != "home_locations"), before

        client.put("/api/consent", json={"scopes": {scope: False}})
        gone = {m.__tablename__: _count(m, user_id) for m in models}
        assert gone == dict.fromkeys(before, 0), (scope, gone)
        detail = client.get(f"/api/assets/{assets['couple.jpg']['id']}").json()
        if scope == "faces":
            assert detail["faces"] == []
            assert client.get("/api/people").status_code == 403
        # The other scopes' data stays.
        for other, other_models in SCOPE_DATA.items():
            if other != scope:
                assert _count(other_models[0], user_id) > 0, other

        client.put("/api/consent", json={"scopes": {scope: True}})
        _wait_jobs(client)
        again = {m.__tablename__: _count(m, user_id) for m in models}
        assert again == before, (scope, again, before)
    # Granting again recomputes; it cannot bring back what the owner said (the name).
    names = {p["name"] for p in client.get("/api/people").json()}
    assert names == {None}


def test_export_sidecars_carry_face_regions_and_keywords(shared: tuple, tmp_path: Path) -> None:
    import io
    import json
    import subprocess
    import zipfile

    from tests.test_export import _wait_ready

    client, assets = shared
    pid = assets["img1.jpg"]["faces"][0]["person_id"]
    client.patch(f"/api/people/{pid}", json={"name": "Anna, the elder"})  # a comma to escape
    started = client.post("/api/me/export").json()
    r = _wait_ready(client, started["url"], timeout=120)
    assert r.status_code == 200, r.text
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    sidecar = tmp_path / "couple.jpg.xmp"
    sidecar.write_bytes(zf.read("originals/couple.jpg.xmp"))
    read = subprocess.run(
        ["exiftool", "-json", "-struct", "-XMP:RegionInfo", "-XMP:Subject", str(sidecar)],
        capture_output=True,
        text=True,
        check=True,
    )
    xmp = json.loads(read.stdout)[0]
    regions = xmp["RegionInfo"]["RegionList"]
    faces = assets["couple.jpg"]["faces"]
    assert len(regions) == len(faces) == 2
    for region, face in zip(sorted(regions, key=lambda g: g["Area"]["X"]), faces, strict=True):
        box = face["box"]
        assert region["Type"] == "Face" and region["Area"]["Unit"] == "normalized"
        assert abs(region["Area"]["X"] - (box["x"] + box["w"] / 2)) < 1e-3
        assert abs(region["Area"]["H"] - box["h"]) < 1e-3
    assert "Anna, the elder" in {g.get("Name") for g in regions}
    keywords = xmp["Subject"] if isinstance(xmp["Subject"], list) else [xmp["Subject"]]
    assert "Anna, the elder" in keywords and "person" in keywords


def test_analysis_jobs_queued_before_a_revocation_skip_its_step(env: dict, tmp_path: Path) -> None:
    """Jobs wait in the queue with no worker; faces is revoked; the worker then runs them:
    tags appear, faces never do."""
    import os
    import subprocess
    import sys

    from tests.conftest import free_port

    roll = tmp_path / "roll"
    roll.mkdir()
    for name in ("img1.jpg", "couple.jpg", "cat.hif"):
        shutil.copy(FILES[name], roll / name)
    server = Server(env, port=free_port())
    serve = subprocess.Popen(
        [sys.executable, "-m", "camroll", "serve", "--no-worker", "--port", str(server.port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )

    def work_off_queue() -> dict:
        worker = subprocess.Popen(
            [sys.executable, "-m", "camroll", "worker"],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "worker.log").open("ab"),
        )
        try:
            return _wait_jobs(client)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

    try:
        import time

        for _ in range(100):
            try:
                httpx.get(f"{server.url}/api/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        token = make_user("queued-analysis@example.org")
        client = server.client(token)
        r = run_cli("sync", str(roll), "--server", server.url, "--token", token, env=env)
        assert r.returncode == 0, r.stderr
        work_off_queue()  # ingest only: no analysis scope yet
        user_id = _user_id(client)

        client.put("/api/consent", json={"scopes": {"faces": True, "content": True}})
        assert client.get("/api/jobs").json()["pending"] == 3  # queued, no worker
        client.put("/api/consent", json={"scopes": {"faces": False}})
        jobs = work_off_queue()
        assert jobs["failed"] == 0
        assert _count(Face, user_id) == 0 and _count(Person, user_id) == 0
        assert _count(AssetTag, user_id) > 0 and _count(AssetQuality, user_id) == 3
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def test_people_page_in_a_browser_names_a_person_in_place(
    shared: tuple, module_server: Server
) -> None:
    from playwright.sync_api import sync_playwright

    from camroll.accounts import set_password
    from camroll.db.models import User
    from tests.test_web import ARGS, CHROMIUM

    client, assets = shared
    with session_scope() as s:
        user = s.scalars(select(User).where(User.email == "analysed@example.org")).one()
        set_password(user, "correct horse")
    pid = assets["img1.jpg"]["faces"][0]["person_id"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(module_server.url + "/login")
        page.fill("input[name=email]", "analysed@example.org")
        page.fill("input[name=password]", "correct horse")
        page.click("button[type=submit]")
        page.wait_for_url(module_server.url + "/")
        page.click("text=People")
        page.wait_for_load_state("networkidle")
        people = page.locator(".person")
        assert people.count() == len(client.get("/api/people").json()) >= 3
        covers = page.locator(".person img").evaluate_all("els => els.map(e => e.naturalWidth)")
        assert all(w > 0 for w in covers), covers  # every cover cut and decrypted

        name = page.locator(f".person[data-id='{pid}'] input.name")
        name.fill("Maya")
        name.press("Enter")
        page.wait_for_selector(f".person[data-id='{pid}'] input.name.saved")
        page.reload()
        assert page.locator(f".person[data-id='{pid}'] input.name").input_value() == "Maya"

        page.fill("form.search input", "Maya")
        page.press("form.search input", "Enter")
        page.wait_for_load_state("networkidle")
        assert page.locator(".hits .tile").count() == 3  # img1, img2 and the couple
        assert "person:Maya" in page.inner_text(".hits")
        browser.close()
