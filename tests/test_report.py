"""The transparency report (GET /api/me/report and the "Your data" page), checked against what
the API shows for the same owner, and against a derived table that did not exist before."""

from __future__ import annotations

import ast
import html
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import PIL
from sqlalchemy import select

from camroll.consent.scopes import TRAINING_STATEMENT
from camroll.db.models import derived_models
from camroll.privacy import report as report_module
from camroll.privacy.report import ORIGINALS, category_key
from tests.conftest import REPO, ROLL, Server, make_user
from tests.test_sync_e2e import all_assets, sync

PASSWORD = "correct horse"
PHOTOS = sorted((ROLL / "exif-samples" / "jpg" / "gps").glob("*.jpg"))  # all carry GPS
VIDEO = ROLL / "lychee" / "Samples" / "train.mov"
TRUNCATED = ROLL / "pigallery2" / "test-assets" / "imageSizeError.jpg"  # quarantined
# Report fields that the asset API shows under another name.
API_NAME = {"model_name": "model"}


def camera_roll(tmp_path: Path) -> Path:
    roll = tmp_path / "roll"
    (roll / "DCIM" / "100GPS").mkdir(parents=True)
    for src in PHOTOS:
        shutil.copy(src, roll / "DCIM" / "100GPS" / src.name)
    shutil.copy(VIDEO, roll / "DCIM" / "100GPS" / VIDEO.name)
    (roll / "Broken").mkdir()
    shutil.copy(TRUNCATED, roll / "Broken" / TRUNCATED.name)
    return roll


def exiftool_version() -> str:
    return subprocess.run(["exiftool", "-ver"], capture_output=True, text=True).stdout.strip()


def field_counts(category: dict) -> dict[str, int]:
    return {f["field"]: f["assets"] for f in category["fields"]}


def report_pages(client: httpx.Client, limit: int) -> tuple[dict, list[dict]]:
    first = client.get("/api/me/report", params={"asset_limit": limit}).json()
    items, page = list(first["assets"]["items"]), first
    while page["assets"]["next_cursor"]:
        assert len(page["assets"]["items"]) == limit
        params = {"asset_limit": limit, "asset_cursor": page["assets"]["next_cursor"]}
        page = client.get("/api/me/report", params=params).json()
        items += page["assets"]["items"]
    return first, items


def test_report_accounts_for_everything_the_api_shows(
    server: Server, env: dict, tmp_path: Path
) -> None:
    token = make_user("owner@example.org", password=PASSWORD)
    result = sync(server, token, env, camera_roll(tmp_path))
    assert result["failed"] == [] and result["jobs"]["pending"] == 0
    client = server.client(token)
    assets = all_assets(client)
    ready = [a for a in assets if a["status"] == "ready"]
    assert len(assets) == len(PHOTOS) + 2 and len(ready) == len(PHOTOS) + 1

    report, items = report_pages(client, limit=4)
    cats = report["categories"]
    assert set(cats) == {ORIGINALS} | {category_key(m) for m in derived_models()}

    originals = cats[ORIGINALS]
    assert originals["count"] == len(assets)
    assert originals["bytes"] == sum(a["size"] for a in assets)
    assert originals["by_status"] == dict(Counter(a["status"] for a in assets))
    assert originals["by_kind"] == dict(Counter(a["kind"] for a in assets if a["kind"]))
    assert originals["quarantine_reasons"] == {"truncated": 1}
    assert [s["scope"] for s in originals["scopes"]] == ["cloud_processing"]
    assert field_counts(originals)["device_path"] == len(assets)

    # Metadata: every field the API shows is counted exactly as often as the API has a value.
    meta = cats["metadata"]
    counts = field_counts(meta)
    checked = 0
    for field, held in counts.items():
        name = API_NAME.get(field, field)
        if name in assets[0]:
            assert held == sum(a[name] is not None for a in assets), field
            checked += 1
    assert checked >= 12
    assert counts["latitude"] == counts["longitude"] >= len(PHOTOS)  # every DSCN photo has GPS
    assert counts["taken_at_local"] >= len(PHOTOS) and counts["duration"] == 1
    # ExifTool read every file it was given, the quarantined one too.
    assert meta["count"] == meta["assets"] == len(assets)
    made_by = [(m["model"], m["version"], m["count"]) for m in meta["made_by"]]
    assert made_by == [("exiftool", exiftool_version(), len(assets))]

    previews = cats["previews"]
    assert previews["count"] == 2 * len(ready) and previews["assets"] == len(ready)
    assert [(m["model"], m["version"]) for m in previews["made_by"]] == [
        ("pillow", PIL.__version__)
    ]
    assert field_counts(previews)["kind"] == len(ready)

    # Every derived row is accounted for by a scope and by a model, with when it was made.
    for key, c in cats.items():
        if key == ORIGINALS:
            continue
        assert sum(s["count"] for s in c["scopes"]) == c["count"], key
        assert sum(m["count"] for m in c["made_by"]) == c["count"], key
        assert c["count"] == 0 or c["first_at"] <= c["last_at"], key

    # Photo by photo, over pages: every asset once, each agreeing with its API record.
    assert report["assets"]["total"] == len(assets)
    assert sorted(i["id"] for i in items) == sorted(a["id"] for a in assets)
    by_id = {a["id"]: a for a in assets}
    for item in items:
        api = by_id[item["id"]]
        assert item["filename"] == api["filename"] and item["status"] == api["status"]
        (m,) = item["derived"]["metadata"]
        assert (m["model"], m["scope"]) == ("exiftool", "cloud_processing")
        for field in ("latitude", "longitude", "taken_at_local", "width", "height"):
            assert m["fields"].get(field) == api[field], (item["filename"], field)
        kinds = sorted(r["fields"]["kind"] for r in item["derived"].get("previews", []))
        assert kinds == (["preview", "thumbnail"] if api["status"] == "ready" else [])

    assert report["training"] == TRAINING_STATEMENT
    consent = report["consent"]
    assert consent["scopes"]["cloud_processing"]["granted"] is True
    assert consent["scopes"]["faces"]["granted"] is False
    assert consent["history_records"] == len(client.get("/api/consent/history").json()) == 1

    # Another owner sees nothing of the first, even with a byte-identical photo of their own.
    other_token = make_user("other@example.org")
    other = server.client(other_token)
    empty = other.get("/api/me/report").json()
    assert all(c["count"] == 0 and c["made_by"] == [] for c in empty["categories"].values())
    assert all(f["assets"] == 0 for c in empty["categories"].values() for f in c["fields"])
    assert empty["assets"] == {"total": 0, "limit": 200, "next_cursor": None, "items": []}
    assert empty["consent"]["history_records"] == 1
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(PHOTOS[0], one / PHOTOS[0].name)
    assert sync(server, other_token, env, one)["failed"] == []
    theirs = other.get("/api/me/report").json()
    assert theirs["categories"][ORIGINALS]["count"] == 1
    assert theirs["categories"]["metadata"]["count"] == 1
    assert theirs["categories"]["previews"]["count"] == 2
    (their_item,) = theirs["assets"]["items"]
    assert their_item["id"] not in by_id
    assert {a["id"] for a in all_assets(other)} == {their_item["id"]}
    # ...and the first owner's report did not change.
    again = client.get("/api/me/report").json()["categories"]
    assert {k: c["count"] for k, c in again.items()} == {k: c["count"] for k, c in cats.items()}

    # The web page shows the same report to the signed-in owner, and only to them.
    with httpx.Client(base_url=server.url, timeout=60) as web:
        r = web.get("/report", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        r = web.post("/login", data={"email": "owner@example.org", "password": PASSWORD})
        assert r.status_code == 303
        page = web.get("/report")
    assert page.status_code == 200, server.log.read_text()[-3000:] if server.log else ""
    text = page.text
    assert html.escape(TRAINING_STATEMENT) in text
    for key in cats:
        assert f'id="cat-{key}"' in text, key
    assert f'<span class="count">{len(assets)}</span>' in text
    assert "exiftool " + exiftool_version() in text and "pillow " + PIL.__version__ in text
    assert "Upload and store my camera roll" in text
    for a in assets:  # all fit on the first page (default limit 200)
        assert f'id="asset-{a["id"]}"' in text
    assert their_item["id"] not in text and "other@example.org" not in text


def test_report_needs_credentials_and_refuses_a_forged_cursor(app_client: httpx.Client) -> None:
    assert "/api/me/report" in app_client.get("/api/openapi.json").json()["paths"]
    assert app_client.get("/api/me/report").status_code == 401
    token = make_user("cursor@example.org")
    headers = {"Authorization": f"Bearer {token}"}
    r = app_client.get("/api/me/report", params={"asset_cursor": "not-a-cursor"}, headers=headers)
    assert r.status_code == 400
    r = app_client.get("/api/me/report", params={"asset_limit": 0}, headers=headers)
    assert r.status_code == 422
    r = app_client.get("/report", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


# Run in a child process: the new class is mapped on the real `Base`, so `derived_models()` finds
# it there, while this test process's registry stays exactly as the application defines it.
PROBE = '''
import json, sys
from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column
from camroll.db.engine import get_engine, session_scope
from camroll.db.models import Base, Derived, derived_models, new_id

class ColourSwatch(Derived, Base):
    """The dominant colours found in a photo."""

    __tablename__ = "test_colour_swatches"
    __category__ = "colours"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    colour: Mapped[str] = mapped_column(String(20))
    palette: Mapped[bytes | None] = mapped_column(LargeBinary)

assert ColourSwatch in derived_models()
ColourSwatch.__table__.create(get_engine())
from camroll.privacy.report import build_report

ours, theirs = json.loads(sys.argv[1])
with session_scope() as s:
    for asset, colour, palette in [(ours, "teal", b"\\0" * 16), (ours, "amber", None)]:
        s.add(ColourSwatch(user_id=asset[0], asset_id=asset[1], scope="content",
                           model="swatcher", model_version="0.3", colour=colour, palette=palette))
    s.add(ColourSwatch(user_id=theirs[0], asset_id=theirs[1], scope="content",
                       model="swatcher", model_version="0.4", colour="red"))
with session_scope() as s:
    print(json.dumps([build_report(s, ours[0]), build_report(s, theirs[0])], default=str))
'''


def test_a_new_derived_table_appears_in_the_report_by_itself(env: dict) -> None:
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, User

    owners = []
    emails = ("mine@example.org", "yours@example.org")
    for email in emails:
        make_user(email)
    with session_scope() as s:
        for email in emails:
            user = s.scalars(select(User).where(User.email == email)).one()
            asset = Asset(user_id=user.id, checksum="0" * 64, size=1, filename=f"{email}.jpg")
            s.add(asset)
            s.flush()
            owners.append((user.id, asset.id))
    before = {category_key(m) for m in derived_models()}
    r = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(owners)],
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    mine, yours = json.loads(r.stdout)
    assert "colours" not in before  # nothing in the application knows this category

    colours = mine["categories"]["colours"]
    assert colours["table"] == "test_colour_swatches"
    assert colours["description"] == "The dominant colours found in a photo."
    assert (colours["count"], colours["assets"]) == (2, 1)
    assert colours["scopes"] == [
        {"scope": "content", "title": "Recognise what is in photos", "count": 2}
    ]
    assert [(m["model"], m["version"], m["count"]) for m in colours["made_by"]] == [
        ("swatcher", "0.3", 2)
    ]
    assert field_counts(colours) == {"colour": 1, "palette": 1}  # provenance is not a field
    (item,) = mine["assets"]["items"]
    rows = item["derived"]["colours"]
    assert sorted(r["fields"]["colour"] for r in rows) == ["amber", "teal"]
    assert {r["fields"].get("palette") for r in rows} == {"<16 bytes>", None}

    # Scoped like everything else: the other owner sees their own row only.
    theirs = yours["categories"]["colours"]
    assert theirs["count"] == 1 and theirs["made_by"][0]["version"] == "0.4"
    (their_item,) = yours["assets"]["items"]
    assert their_item["id"] == owners[1][1]
    assert [r["fields"]["colour"] for r in their_item["derived"]["colours"]] == ["red"]


def test_report_code_names_no_derived_table() -> None:
    """The report must find derived tables through `derived_models()`, never by name."""
    path = Path(report_module.__file__)
    source = path.read_text()
    for model in derived_models():
        assert model.__name__ not in source, model
        assert model.__tablename__ not in source, model  # type: ignore[attr-defined]
        assert f'"{model.__category__}"' not in source, model
    imported = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "camroll.db.models"
        for alias in node.names
    }
    assert not imported & {m.__name__ for m in derived_models()}
