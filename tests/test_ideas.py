"""Ideas through the real server: the 2015 road trip of the shared roll becomes a recap and a
collage with reasons; accept, dismiss, make your own (a restyle labelled as AI-made), export,
and revoking `creations` deletes them all."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import av
import httpx
import pytest
from PIL import Image
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from camroll.db.engine import session_scope
from camroll.db.models import Idea
from tests.conftest import ROLL, Server, make_user
from tests.test_analysis_e2e import ANALYSIS, _user_id
from tests.test_export import _wait_ready
from tests.test_sync_e2e import all_assets, sync

pytestmark = pytest.mark.backends("sqlite")
DEMO = ROLL / "pigallery2" / "demo"


@pytest.fixture(scope="module")
def trip(
    module_server: Server, module_env: dict, tmp_path_factory: pytest.TempPathFactory
) -> tuple[httpx.Client, list[dict]]:
    """The road trip synced, analysed and made into ideas once for this module (a minute of
    work): the restyle test runs last, as it ends by revoking `creations`."""
    roll = tmp_path_factory.mktemp("roll")
    for p in DEMO.glob("*.jpg"):
        shutil.copy(p, roll / p.name)
    token = make_user("ideas@example.org")
    client = module_server.client(token)
    client.put("/api/consent", json={"scopes": {**ANALYSIS, "creations": True}})
    result = sync(module_server, token, module_env, roll)
    assert result["failed"] == [] and result["jobs"]["failed"] == 0, result
    # `sync --wait` waited for the ideas too.
    return client, client.get("/api/ideas").json()


def test_the_road_trip_becomes_a_recap_and_a_collage(trip: tuple, tmp_path: Path) -> None:
    client, ideas = trip
    by_kind = {i["kind"]: i for i in ideas if i["title"].startswith("Road trip")}
    assert set(by_kind) >= {"recap", "collage"}, [(i["kind"], i["title"]) for i in ideas]
    for idea in by_kind.values():
        assert "Yosemite" in idea["title"] and idea["reason"] and idea["media_url"]
        assert len(idea["asset_ids"]) >= 4 and idea["cover_url"]

    # A painted version of the best landscape is suggested too, labelled as AI-made.
    from camroll.create.ai_label import read_ai_labels

    painted = next(i for i in ideas if i["kind"] == "restyle")
    assert "bold expressionist" in painted["reason"] and "style-" not in painted["reason"]
    assert read_ai_labels(client.get(painted["media_url"]).content).c2pa_valid

    mp4 = tmp_path / "recap.mp4"
    r = client.get(by_kind["recap"]["media_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    mp4.write_bytes(r.content)
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (1080, 1920)  # phone portrait by default
        audio = container.streams.audio[0]  # the soundtrack, in the moment's mood
        assert audio.codec_context.name == "aac" and audio.sample_rate == 48000
        frames = sum(1 for _ in container.decode(stream))
        declared = float(container.duration / 1_000_000)
    assert 15 <= declared <= 60 and abs(frames / 30 - declared) < 0.1

    # Each idea names each scope it drew on once (the report lists them).
    with session_scope() as s:
        for scope in s.scalars(select(Idea.scope).where(Idea.user_id == _user_id(client))):
            assert len(scope.split("+")) == len(set(scope.split("+"))), scope

    r = client.get(by_kind["collage"]["media_url"])
    assert r.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(r.content)).size) == 2048

    # Dismissed: gone from the feed and never made again, even after a new pass.
    dismissed = client.post(f"/api/ideas/{by_kind['collage']['id']}/dismiss").json()
    assert dismissed["state"] == "dismissed" and dismissed["media_url"] is None
    from camroll.ideas.generate import refresh_ideas

    refresh_ideas(_user_id(client))
    titles = [(i["kind"], i["title"]) for i in client.get("/api/ideas").json()]
    assert ("collage", by_kind["collage"]["title"]) not in titles

    # Accepted: kept, and in the export as a creation.
    accepted = client.post(f"/api/ideas/{by_kind['recap']['id']}/accept").json()
    assert accepted["state"] == "accepted"
    started = client.post("/api/me/export").json()
    zf = zipfile.ZipFile(io.BytesIO(_wait_ready(client, started["url"], timeout=120).content))
    assert any(n.startswith("creations/Road trip") and n.endswith(".mp4") for n in zf.namelist())


def test_an_idea_made_while_a_scope_it_draws_on_is_switched_off_is_not_kept(
    trip: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idea's media takes seconds to make (a recap's encode). If the owner switches off a
    scope it draws on meanwhile, the pass must not write it after the revocation deleted the
    rest: the revocation would have nothing left to delete. Runs before the restyle test,
    which revokes `creations` at its end."""
    from camroll.consent_change import change_scopes
    from camroll.db.models import User
    from camroll.ideas import generate, media
    from camroll.ideas.generate import refresh_ideas

    client, _ = trip
    user_id = _user_id(client)
    with session_scope() as s:  # the pass makes again what is missing: the suggestions
        s.execute(delete(Idea).where(Idea.user_id == user_id, Idea.state == "suggested"))
    render = media.render_collage_for
    switched: list[str] = []

    def render_while_places_go_off(*args: object, **kwargs: object) -> bytes:
        if not switched:  # the owner switches places off as the first collage renders
            with session_scope() as s:
                switched.extend(change_scopes(s, s.get(User, user_id), {"places": False}, "t"))
        return render(*args, **kwargs)

    monkeypatch.setattr(media, "render_collage_for", render_while_places_go_off)
    refresh_ideas(user_id, full=True)
    assert switched == ["places"]
    with session_scope() as s:
        scopes = s.scalars(select(Idea.scope).where(Idea.user_id == user_id)).all()
    assert scopes, "ideas that do not draw on places are still made"
    assert [scope for scope in scopes if "places" in scope.split("+")] == []

    # Later passes do not even draw them: a trip's recap, encoded daily and dropped.
    written: list[str] = []
    keep = generate.still_consented

    def asked(session: Session, owner: str, scopes: list[str]) -> bool:
        written.extend(scopes)
        return keep(session, owner, scopes)

    monkeypatch.setattr(generate, "still_consented", asked)
    with session_scope() as s:
        s.execute(delete(Idea).where(Idea.user_id == user_id, Idea.state == "suggested"))
    refresh_ideas(user_id, full=True)
    assert written and "places" not in written


def test_two_passes_at_once_make_each_idea_once(
    trip: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's ideas pass and the daily full one can run at once for one owner, and both make
    the same new idea. The one that writes second must keep the other's and finish: failing the
    job on the fingerprint's uniqueness made Huey run the whole pass again."""
    from camroll.ideas import generate

    client, _ = trip
    user_id = _user_id(client)
    with session_scope() as s:  # both passes make the themes again (collages: quick to draw)
        s.execute(delete(Idea).where(Idea.user_id == user_id, Idea.kind == "theme"))
    choose = generate.suggestions
    second: list[int] = []

    def chosen_while_another_pass_runs(*args: object, **kwargs: object) -> list:
        found = choose(*args, **kwargs)
        first = next(s for s in found if s.kind == "theme" and s.render)
        render = first.render

        def render_beside_a_second_pass(session: object, assets: list) -> tuple[bytes, str]:
            if not second:  # the other pass starts while this one draws its first idea
                second.append(-1)
                second[0] = generate.refresh_ideas(user_id, full=True)
            return render(session, assets)

        first.render = render_beside_a_second_pass
        return found

    monkeypatch.setattr(generate, "suggestions", chosen_while_another_pass_runs)
    assert generate.refresh_ideas(user_id, full=True) == 0, "the other pass made them all"
    assert second[0] >= 1
    with session_scope() as s:
        made = s.scalars(select(Idea).where(Idea.user_id == user_id, Idea.kind == "theme")).all()
    # Each idea once, with the media of the pass that wrote it.
    assert len([i for i in made if i.blob_key]) == second[0]


def test_make_your_own_restyle_labelled_as_ai_and_bad_requests(
    trip: tuple, module_server: Server, tmp_path: Path
) -> None:
    from camroll.create.ai_label import read_ai_labels

    client, _ = trip
    assets = [a["id"] for a in all_assets(client) if a["status"] == "ready"]
    r = client.post(
        "/api/ideas",
        json={"kind": "restyle", "asset_ids": assets[:1], "style": "bold abstract", "title": "Art"},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "accepted" and made["kind"] == "restyle"
    labelled = client.get(made["media_url"]).content
    labels = read_ai_labels(labelled)
    assert labels.digital_source_type.endswith("/trainedAlgorithmicMedia")
    assert labels.c2pa_valid
    # The original is untouched.
    original = client.get(f"/api/assets/{assets[0]}/original").content
    assert (
        original == (DEMO / client.get(f"/api/assets/{assets[0]}").json()["filename"]).read_bytes()
    )
    # Exiftool reads the label from the file as other tools would.
    out = tmp_path / "restyled.jpg"
    out.write_bytes(labelled)
    read = subprocess.run(
        ["exiftool", "-s3", "-XMP-iptcExt:DigitalSourceType", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip().endswith("trainedAlgorithmicMedia")

    collage = client.post("/api/ideas", json={"kind": "collage", "asset_ids": assets[:3]})
    assert collage.status_code == 422 and "4 to 9" in collage.text
    unknown = client.post(
        "/api/ideas", json={"kind": "restyle", "asset_ids": assets[:1], "style": "x"}
    )
    assert unknown.status_code == 422

    stranger = module_server.client(make_user("stranger-ideas@example.org"))
    stranger.put("/api/consent", json={"scopes": {"creations": True}})
    assert stranger.get(f"/api/ideas/{made['id']}").status_code == 404
    assert stranger.get(f"/api/ideas/{made['id']}/media").status_code == 404
    theirs = stranger.post("/api/ideas", json={"kind": "restyle", "asset_ids": assets[:1]})
    assert theirs.status_code == 404  # someone else's photo

    # Revoking creations deletes every idea and its media.
    user_id = _user_id(client)
    # The first test dismissed an idea (its row stays, its media goes): revoking still works.
    revoked = client.put("/api/consent", json={"scopes": {"creations": False}})
    assert revoked.status_code == 200, revoked.text
    with session_scope() as s:
        assert s.scalar(select(func.count()).where(Idea.user_id == user_id)) == 0
    assert client.get("/api/ideas").status_code == 403
