"""Recaps through the API and the ideas page, on real files from the shared road trip: POST
/api/ideas makes a square recap set to the owner's own uploaded track (the music heard is
that song, at -16 LUFS), with a caption where the place changes; the ideas page's form makes
it again in 16:9, reusing the moment's analysis (no clip is analysed again). Refused: audio
that does not decode, a file with no sound, a format the product does not make, a regenerate
without a change, another owner's recap or track, a deleted track. The export holds the
owner's tracks; revoking `creations` deletes the tracks and analyses with the recaps."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from tests.conftest import ROLL, make_user
from tests.test_api import auth
from tests.test_recap import _ebur128
from tests.test_trash_api import ingest

DEMO = ROLL / "pigallery2" / "demo"
VIDEO = ROLL / "pigallery2" / "test-assets" / "video.mp4"  # three scenes, with sound
DAMAGED = ROLL / "exiftool-t" / "QuickTime.m4a"  # says 29 s of AAC, holds 5 KB of header
# Yosemite Valley (12 June), Moab (29 June), Williams (3 July): the place changes twice.
TRIP = ("IMG_6263.jpg", "IMG_8751.jpg", "wild-2.jpg")


def _probe(data: bytes, tmp: Path) -> tuple[int, int, str, float, np.ndarray]:
    path = tmp / "recap.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        shape = (v.width, v.height, c.streams.audio[0].codec_context.name, c.duration / 1e6)
    return (*shape, _sound(path, 4.0))


def _sound(path: Path, seconds: float) -> np.ndarray:
    """The first `seconds` of a file's sound, mono, at 48 kHz."""
    from camroll.create.soundtrack import clip_audio

    pcm = clip_audio(path, 0.0, seconds)
    assert pcm is not None
    return pcm.mean(axis=1)


def _song(path: Path, seconds: float) -> Path:
    """The owner's track: a real AAC .m4a, a party score played by FluidSynth (not the sound
    the moment's own mood would get)."""
    from camroll.create.soundtrack import MOODS, RATE, render_score

    pcm = render_score(MOODS["party"], seconds, seed=11)
    with av.open(str(path), "w", format="mp4") as c:
        stream = c.add_stream("aac", rate=RATE, layout="stereo")
        for i in range(0, len(pcm), 1024):
            chunk = np.ascontiguousarray(pcm[i : i + 1024].T)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = RATE, i
            c.mux(stream.encode(frame))
        c.mux(stream.encode(None))
    return path


def _likeness(recap: np.ndarray, song: np.ndarray) -> float:
    """How much of the recap's opening (after its fade-in) is the song: the best normalised
    correlation over small shifts (AAC's priming delay)."""
    a = recap[int(0.8 * 48000) : int(2.3 * 48000)]
    best = 0.0
    for lag in range(-4096, 4097, 8):
        b = song[int(0.8 * 48000) + lag : int(2.3 * 48000) + lag]
        best = max(best, float(np.corrcoef(a, b)[0, 1]))
    return best


@pytest.mark.backends("sqlite")
def test_recap_with_own_track_captions_and_shared_analysis(
    app_client: httpx.Client, env: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import ExitStack

    import camroll.create.clips as clips
    from camroll.analyze.run import analyze_asset
    from camroll.consent.gate import set_scopes
    from camroll.create.recap import CardSlide
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, RecapAnalysis, RecapTrack, User
    from camroll.ideas.media import plan_recap
    from camroll.pipeline.step import run_steps

    token = make_user("recaps@example.org")
    other = make_user("nosy-recaps@example.org")
    with session_scope() as s:
        for email in ("recaps@example.org", "nosy-recaps@example.org"):
            user_id = s.scalars(select(User.id).where(User.email == email)).one()
            set_scopes(s, user_id, {"creations": True, "places": True}, client="test")
    # Restyles are offered by name, never by id.
    offered = app_client.get("/api/ideas/styles", headers=auth(token)).json()
    assert "Van Gogh-like" in offered and "pencil sketch" in offered
    assert not [name for name in offered if re.search(r"style-?\d", name)]

    ids = [ingest(app_client, token, DEMO / n) for n in TRIP]
    for asset_id in ids:
        assert analyze_asset(asset_id, {"places"}) == "done"
    ids.append(ingest(app_client, token, VIDEO))

    # The owner's own music: bad audio is refused with the reason, nothing kept.
    tracks = "/api/ideas/tracks"
    r = app_client.post(
        f"{tracks}?name=broken.m4a", headers=auth(token), content=DAMAGED.read_bytes()
    )
    assert r.status_code == 422 and "does not decode" in r.json()["detail"]
    photo = (DEMO / TRIP[0]).read_bytes()
    r = app_client.post(f"{tracks}?name=photo.m4a", headers=auth(token), content=photo)
    assert r.status_code == 422 and "no sound" in r.json()["detail"]
    song = _song(tmp_path / "Our song.m4a", 9.0)
    r = app_client.post(
        f"{tracks}?name=Our song.m4a", headers=auth(token), content=song.read_bytes()
    )
    assert r.status_code == 201, r.text
    track = r.json()
    assert (track["name"], track["codec"]) == ("Our song.m4a", "aac")
    assert track["duration_s"] == pytest.approx(9.0, abs=0.1)
    assert [t["id"] for t in app_client.get(tracks, headers=auth(token)).json()] == [track["id"]]
    assert app_client.get(tracks, headers=auth(other)).json() == []
    with session_scope() as s:  # stored encrypted: the blob is not the file
        row = s.get(RecapTrack, track["id"])
        from camroll.storage import get_store

        stored = b"".join(get_store().get(row.blob_key))
        assert stored and song.read_bytes()[:4096] not in stored

    def make(fmt: str, music: str | None) -> httpx.Response:
        body = {"kind": "recap", "asset_ids": ids, "title": "Road trip", "format": fmt}
        return app_client.post("/api/ideas", headers=auth(token), json={**body, "track_id": music})

    assert make("4:3", track["id"]).status_code == 422  # not a format we make
    r = make("1:1", track["id"])
    assert r.status_code == 201, r.text
    idea = r.json()
    media = app_client.get(idea["media_url"], headers=auth(token)).content
    w, h, audio, seconds, heard = _probe(media, tmp_path)
    assert (w, h, audio) == (1080, 1080, "aac") and 15 <= seconds <= 60
    own = _sound(song, 4.0)
    assert _likeness(heard, own) > 0.8  # the music is the owner's song
    assert _ebur128(tmp_path / "recap.mp4") == pytest.approx(-16.0, abs=1.0)  # levelled like ours

    # From here on the moment's analysis is reused: no clip is scored again.
    analysed: list[Path] = []
    real = clips.best_segment
    monkeypatch.setattr(
        clips, "best_segment", lambda p, *a, **k: analysed.append(p) or real(p, *a, **k)
    )

    # The story: photos and the clip in time order, a caption where the place changes.
    class Plan:  # the story as the creation step draws it, faces answered by the runner
        name, scope, uses, reads, writes = "plan", "creations", ("faces",), (), ()
        able_to_run = staticmethod(lambda session, subject: True)
        cleanup = staticmethod(lambda session, subject: None)
        run = staticmethod(lambda session, subject: plan_recap(session, *subject, stack))

    with session_scope() as s, ExitStack() as stack:
        assets = [s.get(Asset, i) for i in ids]
        (done,) = run_steps(s, assets[0].user_id, [Plan()], (assets[:3], assets[3:]))
        plan = done.value
        story = [
            f"card:{x.text}" if isinstance(x, CardSlide) else type(x).__name__ for x in plan.slides
        ]
    assert [x for x in story if x != "ClipSlide"] == [
        "PhotoSlide", "card:Moab", "PhotoSlide", "card:Williams", "PhotoSlide"
    ]  # fmt: skip
    assert story.count("ClipSlide") == 1

    regen = f"/api/ideas/{idea['id']}/regenerate"
    assert app_client.post(regen, headers=auth(token), json={}).status_code == 422
    assert app_client.post(regen, headers=auth(other), json={"format": "16:9"}).status_code == 404
    # The ideas page offers the shape and the music (the owner's track chosen), and its form
    # makes the recap again.
    page = app_client.get("/ideas", headers=auth(token)).text
    assert f'<option value="{track["id"]}" selected>Our song.m4a</option>' in page
    assert '<option value="1:1" selected>Square (1:1)</option>' in page
    r = app_client.post(
        f"/ideas/{idea['id']}/regenerate",
        headers=auth(token),
        data={"format": "16:9", "track": track["id"], "back": "/ideas"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and "done=regenerated" in r.headers["location"], r.text
    media = app_client.get(idea["media_url"], headers=auth(token)).content
    w, h, audio, _, heard = _probe(media, tmp_path)
    assert (w, h, audio) == (1920, 1080, "aac") and _likeness(heard, own) > 0.8
    assert analysed == []
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(RecapAnalysis)) == 1

    # A deleted track cannot be rendered with again; revoking creations deletes the rest.
    assert app_client.delete(f"{tracks}/{track['id']}", headers=auth(other)).status_code == 404
    assert app_client.delete(f"{tracks}/{track['id']}", headers=auth(token)).status_code == 204
    r = app_client.post(regen, headers=auth(token), json={"format": "9:16"})
    assert r.status_code == 422 and "track" in r.json()["detail"]
    r = app_client.post(f"{tracks}?name=again.m4a", headers=auth(token), content=song.read_bytes())
    assert r.status_code == 201
    # The export holds the owner's music as uploaded.
    from camroll.privacy.export import build_export
    from camroll.privacy.exports import new_export
    from camroll.storage.blobs import read_decrypted

    with session_scope() as s:
        owner = s.scalars(select(User.id).where(User.email == "recaps@example.org")).one()
        export_id = new_export(s, owner).id
    key = build_export(export_id, owner)
    assert key is not None
    with session_scope() as s:
        packed = io.BytesIO(b"".join(read_decrypted(s, owner, key)))
    assert zipfile.ZipFile(packed).read("creations/music/again.m4a") == song.read_bytes()
    r = app_client.put("/api/consent", headers=auth(token), json={"scopes": {"creations": False}})
    assert r.status_code == 200, r.text
    with session_scope() as s:
        for model in (RecapTrack, RecapAnalysis):
            assert s.scalar(select(func.count()).select_from(model)) == 0


@pytest.mark.backends("sqlite")
def test_a_recap_looks_for_faces_only_while_faces_is_granted(
    app_client: httpx.Client, env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /api/ideas renders under the step contract (the creation step names `faces` in its
    uses): with faces on, the clip's segment is chosen counting faces in its frames and the
    report says the recap drew on faces; with faces switched off (creations still on), the
    same recap looks at no frame for faces and does not depend on faces."""
    import camroll.analyze.faces as faces

    token = make_user("recap-faces@example.org")
    headers = auth(token)
    scopes = {"creations": True, "faces": True}
    assert app_client.put("/api/consent", headers=headers, json={"scopes": scopes}).is_success
    ids = [ingest(app_client, token, DEMO / n) for n in TRIP[:2]]
    ids.append(ingest(app_client, token, VIDEO))
    looked: list[int] = []
    real = faces.analyze_faces
    monkeypatch.setattr(faces, "analyze_faces", lambda *a, **k: looked.append(1) or real(*a, **k))
    body = {"kind": "recap", "asset_ids": ids, "format": "1:1"}

    def make(title: str) -> list[str]:
        r = app_client.post("/api/ideas", headers=headers, json={**body, "title": title})
        assert r.status_code == 201, r.text
        report = app_client.get("/api/me/report", headers=headers).json()
        return next(c["scopes"] for c in report["creations"] if c["id"] == r.json()["id"])

    assert "faces" in make("Faces on") and looked

    off = {"scopes": {"faces": False}}
    assert app_client.put("/api/consent", headers=headers, json=off).is_success
    looked.clear()
    assert "faces" not in make("Faces off") and looked == []
    titles = [i["title"] for i in app_client.get("/api/ideas", headers=headers).json()]
    assert titles == ["Faces off"]  # the one that drew on faces went with the scope
