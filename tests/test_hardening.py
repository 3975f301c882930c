"""Hardening (issue 12): every file ends somewhere, the edge validates, login is throttled,
responses carry security headers. Real ExifTool, the real app, real databases."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.conftest import make_user
from tests.test_api import auth


def _jpeg_with_date(path: Path, date: str, offset: str) -> Path:
    Image.new("RGB", (64, 48), (120, 80, 40)).save(path, "JPEG")
    subprocess.run(
        [
            "exiftool",
            "-q",
            "-overwrite_original",
            f"-DateTimeOriginal={date}",
            f"-OffsetTimeOriginal={offset}",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.mark.parametrize(
    ("date", "offset"),
    [("9999:12:31 23:59:59", "-14:00"), ("0001:01:01 00:00:00", "+14:00")],
)
def test_dates_outside_python_are_unknown_and_flagged(
    tmp_path: Path, date: str, offset: str
) -> None:
    from camroll.media.metadata import read_metadata

    meta = read_metadata([_jpeg_with_date(tmp_path / "x.jpg", date, offset)])[0]
    assert meta.tz_source == "out_of_range"
    assert meta.taken_at_utc is None and meta.taken_at_local is None and meta.tz_offset is None
    assert meta.width == 64 and meta.height == 48  # the rest of the metadata is still read


def test_edge_dates_that_fit_are_kept(tmp_path: Path) -> None:
    from camroll.media.metadata import read_metadata

    meta = read_metadata([_jpeg_with_date(tmp_path / "x.jpg", "9999:12:31 10:00:00", "-01:00")])[0]
    assert meta.taken_at_utc == "9999-12-31T11:00:00Z" and meta.tz_source == "offset_time"
    meta = read_metadata([_jpeg_with_date(tmp_path / "y.jpg", "0001:01:01 00:00:00", "-14:00")])[0]
    assert meta.taken_at_local == "0001-01-01T00:00:00"  # ISO, four-digit year
    assert meta.taken_at_utc == "0001-01-01T14:00:00Z"


@pytest.mark.backends("sqlite")
def test_processing_that_fails_every_try_ends_quarantined_with_a_reason(
    app_client: httpx.Client,
) -> None:
    """An asset whose processing raises on its last try is quarantined, never left pending; one
    that crashed its worker on every try is quarantined when it is requeued once more."""
    from camroll import job_runs
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset, JobRun
    from camroll.jobs.tasks import MAX_PROCESS_ATTEMPTS, process_asset_task

    token = make_user("stuck@example.org", password="stuck-password")
    with session_scope() as s:
        user_id = find_user(s, "stuck@example.org").id
        # Neither an original nor a staged upload: processing raises on every try.
        broken = Asset(user_id=user_id, checksum="a" * 64, size=1, filename="x.jpg")
        crashy = Asset(user_id=user_id, checksum="b" * 64, size=1, filename="y.jpg")
        s.add_all([broken, crashy])
        s.flush()
        broken_id, crashy_id = broken.id, crashy.id
    with pytest.raises(RuntimeError):
        process_asset_task.call_local(broken_id)
    for _ in range(MAX_PROCESS_ATTEMPTS):
        job_runs.mark("process_asset", crashy_id, user_id, "running")  # a worker died here
    assert process_asset_task.call_local(crashy_id) == "quarantined"
    with session_scope() as s:
        for asset_id in (broken_id, crashy_id):
            asset = s.get(Asset, asset_id)
            assert asset.status == "quarantined"
            assert asset.quarantine_reason == "processing_failed"
            assert asset.quarantine_detail and "/" not in asset.quarantine_detail
            run = s.query(JobRun).filter_by(task="process_asset", subject_id=asset_id).one()
            assert run.state == "failed" and run.error
    # /api/jobs counts them as failed and says why.
    jobs = app_client.get("/api/jobs", headers=auth(token)).json()
    assert jobs["failed"] == 2 and jobs["pending"] == jobs["running"] == 0
    reasons = {f["subject_id"]: f["error"] for f in jobs["failures"]}
    assert "RuntimeError" in reasons[broken_id] and "crash" in reasons[crashy_id]
    # ... and so does the web timeline, with the same reasons.
    login = {"email": "stuck@example.org", "password": "stuck-password"}
    assert app_client.post("/login", data=login, follow_redirects=False).status_code == 303
    page = app_client.get("/").text
    assert "Failed jobs" in page and "RuntimeError" in page and "crash" in page
    # The token's use time is written apart from the request, in its own short transaction.
    from camroll import token_usage
    from camroll.db.models import ApiToken

    token_usage.flush()
    with session_scope() as s:
        used = s.query(ApiToken).filter_by(user_id=user_id, name="test").one().last_used_at
    assert used is not None


# -- validate at the edge --------------------------------------------------------------------


def _user_id(email: str) -> str:
    from camroll.accounts import find_user
    from camroll.db.engine import session_scope

    with session_scope() as s:
        return find_user(s, email).id


def test_the_known_server_errors_answer_422(app_client: httpx.Client) -> None:
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope

    token = make_user("edge@example.org")
    with session_scope() as s:
        set_scopes(s, _user_id("edge@example.org"), {"faces": True}, client="test")
    h = auth(token)
    for path in (
        "/api/people?min_faces=9223372036854775808",
        "/api/me/audit?before=99999999999999999999",
        "/api/me/audit?before=-99999999999999999999",
        "/api/assets?from=0001-01-01T00:00:00%2B14:00",
        "/api/assets?from=0001-01-01T00:00:00%2B00:01",
        "/api/assets?to=9999-12-31T23:59:59-01:00",
        "/api/assets?tag=" + "x" * 5000,
    ):
        r = app_client.get(path, headers=h)
        assert r.status_code == 422, (path, r.status_code, r.text[:300])
        assert "x" * 300 not in r.text
    # The edges that do fit still work.
    assert app_client.get("/api/assets?from=0001-01-01T00:00:00Z", headers=h).status_code == 200
    assert app_client.get("/api/assets?to=9999-12-31T23:59:59Z", headers=h).status_code == 200
    assert app_client.get("/api/people?min_faces=0", headers=h).status_code == 200
    assert app_client.get("/api/assets?cursor=bm9wZQ", headers=h).status_code == 400


@pytest.mark.backends("sqlite")
def test_big_bodies_are_refused_and_errors_do_not_echo_them(app_client: httpx.Client) -> None:
    h = auth(make_user("body@example.org"))
    flood = {"scopes": {f"key-{i:07d}-" + "k" * 20: True for i in range(60_000)}}  # ~2.4 MB
    r = app_client.put("/api/consent", json=flood, headers=h)
    assert r.status_code == 413 and "tus" in r.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    r = app_client.put(
        "/api/consent", content=chunks(), headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    many = {"scopes": {f"key-{i:05d}": True for i in range(5_000)}}  # under the size limit
    r = app_client.put("/api/consent", json=many, headers=h)
    assert r.status_code == 422 and len(r.content) < 5_000, len(r.content)
    assert "key-00001" not in r.text
    # The consent itself is unchanged and still answers.
    assert app_client.get("/api/consent", headers=h).json()["scopes"]["cloud_processing"] is True


# -- auth hardening ---------------------------------------------------------------------------


@pytest.mark.backends("sqlite")
def test_every_response_carries_the_security_headers(app_client: httpx.Client) -> None:
    from camroll.api.security import CSP, DOCS_CSP

    for path in ("/api/health", "/login", "/api/assets", "/api/nope", "/api/openapi.json"):
        r = app_client.get(path)
        assert r.headers["content-security-policy"] == CSP, path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "same-origin", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert app_client.get("/api/docs").headers["content-security-policy"] == DOCS_CSP


@pytest.mark.backends("sqlite")
def test_login_is_throttled_per_account_and_per_address(
    app_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.config import get_settings

    monkeypatch.setenv("CAMROLL_LOGIN_MAX_FAILURES_PER_ACCOUNT", "5")
    monkeypatch.setenv("CAMROLL_LOGIN_MAX_FAILURES_PER_ADDRESS", "8")
    get_settings.cache_clear()
    make_user("a@example.org", password="right-password-a")
    make_user("b@example.org", password="right-password-b")

    def login(email: str, password: str) -> httpx.Response:
        return app_client.post(
            "/login", data={"email": email, "password": password}, follow_redirects=False
        )

    for _ in range(5):
        assert login("a@example.org", "wrong").status_code == 401
    r = login("a@example.org", "right-password-a")  # the right one, too late
    assert r.status_code == 429 and 0 < int(r.headers["retry-after"]) <= 900
    assert "Too many failed sign-ins" in r.text
    # Another account from the same address: its own count is fine until the address's fills.
    assert login("b@example.org", "right-password-b").status_code == 303
    for _ in range(3):
        assert login("b@example.org", "wrong").status_code == 401
    assert login("b@example.org", "right-password-b").status_code == 429
    # Once the window has passed, housekeeping forgets the failures and the right one works.
    from camroll.db.engine import session_scope
    from camroll.login_throttle import forget_old

    monkeypatch.setenv("CAMROLL_LOGIN_WINDOW_SECONDS", "0")
    get_settings.cache_clear()
    with session_scope() as s:
        assert forget_old(s) == 5 + 8 + 3  # account a, the address, account b
    assert login("a@example.org", "right-password-a").status_code == 303
    get_settings.cache_clear()


# -- clean names and safe downloads ------------------------------------------------------------


@pytest.mark.backends("sqlite")
def test_hostile_names_are_cleaned_and_quarantined_originals_are_inert(
    app_client: httpx.Client,
) -> None:
    from camroll.ingest.process import process_asset
    from tests.test_api import create, patch

    token = make_user("names@example.org")
    page = b"<html><script>alert(1)</script></html>"
    name = "photo\u202egpj.html\x00\x07"
    r = create(app_client, token, page, name, relativePath="../../etc/\u202e/page.html")
    assert r.status_code == 201, r.text
    r = patch(app_client, token, r.headers["Location"], 0, page)
    asset_id = r.headers["Camroll-Asset-Id"]
    assert process_asset(asset_id) == "quarantined"
    got = app_client.get(f"/api/assets/{asset_id}", headers=auth(token)).json()
    assert got["filename"] == "photogpj.html"
    assert got["device_path"] == "etc/page.html"
    # The name as sent is kept, encrypted, for the owner's report and export only.
    report = app_client.get("/api/me/report", headers=auth(token)).json()
    (item,) = report["assets"]["items"]
    assert base64.b64decode(item["original_name_base64"]) == name.encode()
    assert item["filename"] == "photogpj.html"
    from sqlalchemy import text

    from camroll.db.engine import get_engine

    with get_engine().connect() as conn:
        query = text("SELECT original_name FROM assets WHERE id = :id")
        stored = conn.execute(query, {"id": asset_id}).scalar_one()
    assert stored and b"gpj" not in bytes(stored)  # ciphertext in the database
    r = app_client.get(f"/api/assets/{asset_id}/original", headers=auth(token))
    assert r.status_code == 200 and r.content == page
    assert r.headers["content-type"] == "application/octet-stream"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "photogpj.html.quarantined" in disposition
    assert "\u202e" not in disposition and "%E2%80%AE" not in disposition
    assert r.headers["x-content-type-options"] == "nosniff"


# -- tus strictness ----------------------------------------------------------------------------


@pytest.mark.backends("sqlite")
def test_tus_integers_are_ascii_digits_only(app_client: httpx.Client) -> None:
    from tests.test_api import TUS, meta

    token = make_user("tus@example.org")
    headers = {**auth(token), **TUS, "Upload-Metadata": meta(filename="a.jpg", filetype="x")}
    for bad in (
        "1_000",
        " 1000",
        "+1000",
        "\uff11\uff10\uff10\uff10".encode(),
        "1e3",
        "-1",
        "9" * 20,
        "",
    ):
        r = app_client.post("/api/uploads", headers={**headers, "Upload-Length": bad})
        assert r.status_code == 400, (bad, r.status_code)
        assert "ASCII digits" in r.text
    for meta_value in (b"filename \xff\xfe", ",".join(f"k{i} eA==" for i in range(40)).encode()):
        r = app_client.post(  # non-ASCII base64 (found by fuzz/fuzz_tus.py), too many pairs
            "/api/uploads", headers={**headers, "Upload-Length": "4", "Upload-Metadata": meta_value}
        )
        assert r.status_code == 400, (meta_value[:20], r.status_code)
    r = app_client.post("/api/uploads", headers={**headers, "Upload-Length": "4"})
    assert r.status_code == 201
    url = r.headers["Location"]
    patch_headers = {**auth(token), **TUS, "Content-Type": "application/offset+octet-stream"}
    for bad in ("0_0", "+0", " 0"):
        r = app_client.patch(url, content=b"abcd", headers={**patch_headers, "Upload-Offset": bad})
        assert r.status_code == 400, (bad, r.status_code)
    r = app_client.patch(url, content=b"abcd", headers={**patch_headers, "Upload-Offset": "0"})
    assert r.status_code == 204


# -- idea generators skip what they cannot use -------------------------------------------------


@pytest.mark.backends("sqlite")
def test_an_8x8_image_never_becomes_the_best_shot_to_paint(app_client: httpx.Client) -> None:
    """The report's failure: an 8x8 APNG with the best quality score became the restyle idea's
    "best shot" and failed the ideas job four times. Now it is passed over for a real photo."""
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import AssetQuality, Idea
    from camroll.ideas.generate import refresh_ideas
    from camroll.ingest.process import process_asset
    from tests.conftest import ROLL
    from tests.hostile.make_corpus import _png
    from tests.test_api import create, patch

    token = make_user("painter@example.org")
    user_id = _user_id("painter@example.org")
    ids = []
    for name, data in (
        ("tiny.png", _png(3, (8, 8))),
        ("real.jpg", (ROLL / "pigallery2" / "demo" / "IMG_5910.jpg").read_bytes()),
    ):
        r = create(app_client, token, data, name)
        r = patch(app_client, token, r.headers["Location"], 0, data)
        ids.append(r.headers["Camroll-Asset-Id"])
        assert process_asset(ids[-1]) == "ready"
    tiny, real = ids
    with session_scope() as s:
        set_scopes(s, user_id, {"content": True, "creations": True}, client="test")
        for asset_id, score in ((tiny, 0.99), (real, 0.5)):  # the tiny one scores best
            s.add(
                AssetQuality(
                    user_id=user_id,
                    asset_id=asset_id,
                    scope="content",
                    model="test",
                    model_version="1",
                    sharpness=score,
                    exposure=score,
                    score=score,
                    phash="0" * 16,
                    is_best=True,
                )
            )
    refresh_ideas(user_id)
    with session_scope() as s:
        restyles = [i for i in s.query(Idea).filter_by(user_id=user_id) if i.kind == "restyle"]
        assert [i.asset_id for i in restyles] == [real]
        assert restyles[0].blob_key  # rendered
    jobs = app_client.get("/api/jobs", headers=auth(token)).json()
    assert jobs["failed"] == 0, jobs["failures"]
    # Made by hand (rendered before its row is written): the real photo works, the tiny one
    # is a clear 422 and leaves no idea behind.
    body = {"kind": "restyle", "asset_ids": [real], "style": "pencil sketch", "title": "Mine"}
    r = app_client.post("/api/ideas", json=body, headers=auth(token))
    assert r.status_code == 201, r.text
    assert app_client.get(r.json()["media_url"], headers=auth(token)).status_code == 200
    before = len(app_client.get("/api/ideas?state=accepted", headers=auth(token)).json())
    r = app_client.post("/api/ideas", json={**body, "asset_ids": [tiny]}, headers=auth(token))
    assert r.status_code == 422 and "too small" in r.text
    assert len(app_client.get("/api/ideas?state=accepted", headers=auth(token)).json()) == before


def test_exiftool_past_its_time_limit_is_a_timeout_and_recovers() -> None:
    """What ingest quarantines as too costly (process_asset catches ExifToolTimeout): a read
    that passes the limit kills ExifTool, and the next read works."""
    from camroll.media.exiftool import ExifTool, ExifToolTimeout
    from tests.conftest import ROLL

    photo = ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg"
    tool = ExifTool(timeout_s=0.0001)
    try:
        with pytest.raises(ExifToolTimeout):
            tool.read([photo])
        tool.timeout_s = 60
        assert tool.read([photo])[0]["File:FileType"] == "JPEG"
    finally:
        tool.close()


def test_a_decode_past_its_deadline_is_killed_and_the_next_one_works(tmp_path: Path) -> None:
    """What ingest quarantines as too costly when nothing in the headers gave it away: a scan
    bomb that would keep libjpeg busy for about 30 s is stopped at a 0.5 s deadline."""
    import time

    from camroll.media.deadline import render_within
    from camroll.media.validate import Quarantined
    from tests.conftest import ROLL
    from tests.hostile.make_corpus import _scan_bomb

    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(_scan_bomb(4000, 3000))
    t = time.monotonic()
    with pytest.raises(Quarantined) as stopped:
        render_within(bomb, "image", seconds=0.5)
    assert stopped.value.reason == "too_costly"
    assert "time limit of 0.5 s" in stopped.value.detail
    assert time.monotonic() - t < 10  # not the half minute the decode would take
    made = render_within(ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg", "image")
    assert (made.width, made.height) == (100, 68) and made.preview[:2] == b"\xff\xd8"


def test_a_decode_past_its_memory_limit_is_too_costly_and_the_next_one_works(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The decode helper maps at most CAMROLL_DECODE_MEMORY_MB of data: the hostile corpus's
    36 MP progressive JPEG needs its whole coefficient buffer (72 MB) before the first pixel,
    so under a 100 MiB cap it is refused at once as too costly, not called corrupt; the same
    helper then decodes a photo under the default cap."""
    import time

    from camroll.media.deadline import render_within
    from camroll.media.validate import Quarantined
    from tests.conftest import ROLL
    from tests.hostile.make_corpus import _scan_bomb

    bomb = tmp_path / "scans-36mp.jpg"
    bomb.write_bytes(_scan_bomb(6000, 250))  # as in the corpus (jpeg-scans-250-36mp)
    monkeypatch.setenv("CAMROLL_DECODE_MEMORY_MB", "100")
    t = time.monotonic()
    with pytest.raises(Quarantined) as stopped:
        render_within(bomb, "image", seconds=120)
    assert stopped.value.reason == "too_costly"
    assert "memory limit of 100 MiB" in stopped.value.detail, stopped.value.detail
    assert time.monotonic() - t < 20  # refused at the allocation, not after the scans
    monkeypatch.delenv("CAMROLL_DECODE_MEMORY_MB")
    made = render_within(ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg", "image")
    assert (made.width, made.height) == (100, 68) and made.preview[:2] == b"\xff\xd8"


def test_video_frames_for_faces_share_the_decode_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The faces step's frames come from the decode helper: past CAMROLL_DECODE_SECONDS for
    the whole video the helper is killed and the video is too costly (it no longer holds the
    worker); with the default deadline the same video gives its 8 frames, upright and whole."""
    from camroll.analyze import faces as fa
    from camroll.config import get_settings
    from camroll.media.deadline import frames_within
    from camroll.media.validate import Quarantined
    from tests.conftest import ROLL

    clip = ROLL / "lychee" / "Samples" / "train.mov"
    monkeypatch.setenv("CAMROLL_DECODE_SECONDS", "0.001")
    get_settings.cache_clear()
    try:
        with pytest.raises(Quarantined) as stopped:
            fa.analyze_video_faces(clip)
    finally:
        monkeypatch.delenv("CAMROLL_DECODE_SECONDS")
        get_settings.cache_clear()
    assert stopped.value.reason == "too_costly"
    assert "time limit of 0.001 s" in stopped.value.detail, stopped.value.detail
    frames = list(frames_within(clip, 8))
    assert len(frames) == 8 and all(isinstance(f, Image.Image) for _, f in frames), frames
    assert len({f.size for _, f in frames}) == 1  # type: ignore[union-attr]
    times = [t for t, _ in frames]
    assert times == sorted(times) and times[0] > 0


@pytest.mark.backends("sqlite")
def test_a_video_too_costly_for_faces_is_a_visible_failure_not_retried(
    app_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Analysis of a video whose frames pass the decode deadline ends at once as a failed job
    with the reason in /api/jobs (a retry would only hold a worker as long again)."""
    from camroll.config import get_settings
    from camroll.consent.gate import set_scopes
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset
    from camroll.ingest.process import process_asset
    from camroll.jobs.tasks import analyze_asset_task
    from tests.conftest import ROLL
    from tests.test_api import upload

    token = make_user("video@example.org")
    clip = ROLL / "pigallery2" / "test-assets" / "video.mp4"
    aid = upload(app_client, token, clip.read_bytes(), "video.mp4")
    assert process_asset(aid) == "ready"
    with session_scope() as s:
        set_scopes(s, s.get(Asset, aid).user_id, {"faces": True}, client="test")
    monkeypatch.setenv("CAMROLL_DECODE_SECONDS", "0.001")
    get_settings.cache_clear()
    try:
        assert analyze_asset_task.call_local(aid) == "failed"
    finally:
        monkeypatch.delenv("CAMROLL_DECODE_SECONDS")
        get_settings.cache_clear()
    jobs = app_client.get("/api/jobs", headers=auth(token)).json()
    assert jobs["failed"] == 1, jobs  # once: no retry was queued
    (failure,) = jobs["failures"]
    assert failure["task"] == "analyze" and "time limit of 0.001 s" in failure["error"], failure


@pytest.mark.backends("sqlite")
def test_reads_write_nothing_so_a_held_write_lock_never_stalls_them(
    app_client: httpx.Client,
) -> None:
    """While another writer holds SQLite's write lock, reads still answer: token and device
    use times and access-log rows are written apart, after the requests (a read that wrote
    would wait out the 30 s busy timeout and fail with "database is locked")."""
    import time

    from camroll import token_usage
    from camroll.db.engine import get_engine
    from camroll.ingest.process import process_asset
    from camroll.privacy import audit
    from tests.conftest import ROLL
    from tests.test_api import upload

    token = make_user("reader@example.org")
    aid = upload(app_client, token, (ROLL / "exif-samples" / "jpg" / "Canon_40D.jpg").read_bytes())
    assert process_asset(aid) == "ready"
    device = app_client.post("/api/devices", json={"name": "Pixel"}, headers=auth(token)).json()
    audit.flush()
    token_usage.flush()
    reads = [
        f"/api/assets/{aid}",
        f"/api/assets/{aid}/original",
        f"/api/assets/{aid}/thumbnail",
        "/api/assets",
        "/api/jobs",
        "/api/me/report",
    ]
    with get_engine().connect() as holder:
        holder.exec_driver_sql("BEGIN IMMEDIATE")  # another writer, holding the lock
        t = time.monotonic()
        for path in reads:
            r = app_client.get(path, headers=auth(token))
            assert r.status_code == 200, (path, r.status_code, r.text[:200])
        dav = app_client.request(
            "PROPFIND", "/dav/", headers={"Depth": "1"}, auth=("me", device["password"])
        )
        assert dav.status_code == 207, dav.text[:200]
        waited = time.monotonic() - t
        holder.exec_driver_sql("ROLLBACK")
    assert waited < 15, waited  # one read that wrote would have waited 30 s
    # Nothing was lost: the log holds every read in order, the device shows its use.
    log = app_client.get("/api/me/audit", headers=auth(token)).json()["items"]
    assert [(e["actor"], e["action"], e["target"]) for e in log][::-1] == [
        ("token:test", "asset.read", aid),
        ("token:test", "asset.original", aid),
        ("token:test", "asset.thumbnail", aid),
        ("token:test", "asset.list", None),
        ("token:test", "report.read", None),
        ("device:Pixel", "asset.list", None),
    ]
    (listed,) = app_client.get("/api/devices", headers=auth(token)).json()
    assert listed["last_used_at"] is not None
