"""The command line as people type it: inspect, users and tokens, demo, and sync --watch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROLL, Server, free_port, make_user, run_cli
from tests.test_metadata import INSPECT_KEYS
from tests.test_sync_e2e import all_assets


def test_inspect_json_prints_one_object_per_file_in_order(tmp_path: Path) -> None:
    files = [
        ROLL / "exif-samples/jpg/gps/DSCN0010.jpg",
        ROLL / "pigallery2/demo/broken image.JPG",
        tmp_path / "missing.jpg",
    ]
    r = run_cli("inspect", *map(str, files), "--json", env={})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [o["path"] for o in out] == [str(f) for f in files]
    for o in out:
        assert set(o) >= INSPECT_KEYS
    gps = out[0]
    assert gps["mime"] == "image/jpeg" and gps["make"] == "NIKON"
    assert gps["latitude"] == pytest.approx(43.4674, abs=1e-3)
    assert gps["tz_offset"] == "+02:00" and gps["tz_source"] == "gps_position"
    assert out[1]["error"] and out[2]["error"]


def test_inspect_analyze_adds_faces_tags_place_and_quality(tmp_path: Path) -> None:
    faces = ROLL.parent / "faces"
    files = [
        faces / "deepface/couple.jpg",
        ROLL / "pigallery2/demo/IMG_6296.jpg",
        ROLL / "pillow-heif/heif_other/cat.hif",
        faces / "face_recognition/examples/short_hamilton_clip.mp4",
        ROLL / "pigallery2/test-assets/imageSizeError.jpg",
        tmp_path / "missing.jpg",
    ]
    r = run_cli("inspect", *map(str, files), "--json", "--analyze", env={})
    assert r.returncode == 0, r.stderr
    couple, yosemite, cat, clip, broken, missing = json.loads(r.stdout)  # stdout is pure JSON

    assert len(couple["faces"]) == 2
    for face in couple["faces"]:
        assert set(face) >= {"box", "landmarks", "score", "expression", "smile"}
        assert len(face["landmarks"]) == 5 and 0 < face["box"]["w"] < 1
        assert face["expression"] in {
            "happy",
            "neutral",
            "sad",
            "surprise",
            "angry",
            "fear",
            "disgust",
        }
    assert {t["label"] for t in couple["tags"]} >= {"person"}
    assert yosemite["faces"] == [] and yosemite["place"]["region"] == "California"
    assert "mountain" in {t["label"] for t in yosemite["tags"]}
    assert "cat" in {t["label"] for t in cat["tags"]} and cat["place"] is None
    for t in cat["tags"]:
        assert set(t) >= {"label", "score", "sources"} and t["sources"]
    assert clip["faces"] and all(f["at_seconds"] >= 0 for f in clip["faces"])
    for o in (couple, yosemite, cat):
        assert 0 <= o["quality"]["sharpness"] <= 1 and 0 <= o["quality"]["exposure"] <= 1
    assert broken["analysis_error"]["reason"] == "truncated"
    assert missing["error"] and "faces" not in missing


@pytest.mark.backends("sqlite")
def test_user_and_token_commands_give_clear_errors(env: dict) -> None:
    assert run_cli("user", "add", "Cli@Example.org", env=env).returncode == 0
    again = run_cli("user", "add", "cli@example.org", env=env)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = run_cli("user", "add", "not-an-email", env=env)
    assert bad.returncode == 1 and "not an email" in bad.stderr
    missing = run_cli("token", "create", "nobody@example.org", env=env)
    assert missing.returncode == 1 and "camroll user add" in missing.stderr
    token = run_cli("token", "create", "cli@example.org", env=env)
    assert token.returncode == 0 and token.stdout.strip().startswith("crl_")

    # The token works, and the database holds only its hash.
    from camroll.db.engine import session_scope
    from camroll.db.models import ApiToken

    secret = token.stdout.strip()
    with session_scope() as s:
        stored = [t.token_hash for t in s.query(ApiToken).all()]
    assert secret not in stored and all(len(h) == 64 for h in stored)


@pytest.mark.backends("sqlite")
def test_first_command_on_a_new_machine_creates_the_data_folder(tmp_path: Path) -> None:
    # No data folder and no database URL: the embedded default, as after `scripts/setup`.
    data = tmp_path / "fresh" / "camroll-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMROLL_")}
    env |= {"CAMROLL_DATA_DIR": str(data), "XDG_STATE_HOME": str(tmp_path / "state")}
    r = subprocess.run(
        [sys.executable, "-m", "camroll", "user", "add", "first@example.org"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "created user first@example.org" in r.stdout
    assert (data / "camroll.db").is_file()


@pytest.mark.backends("sqlite")
def test_demo_syncs_a_roll_and_prints_url_login_and_summary(env: dict, tmp_path: Path) -> None:
    roll = tmp_path / "roll"
    shutil.copytree(ROLL / "pigallery2" / "demo", roll)
    port = free_port()
    r = run_cli("demo", str(roll), "--port", str(port), "--no-keep-serving", env=env, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout
    assert f"http://127.0.0.1:{port}" in out
    assert "demo@camroll.local" in out and "camroll-demo" in out
    assert "Library by type" in out and "image" in out
    assert "Quarantined" in out and "broken image.JPG" in out and "empty" in out


@pytest.mark.backends("sqlite")
def test_sync_watch_uploads_new_files_as_they_appear(
    server: Server, env: dict, tmp_path: Path
) -> None:
    token = make_user("watch@example.org")
    roll = tmp_path / "DCIM" / "100APPLE"
    roll.mkdir(parents=True)
    shutil.copy(ROLL / "exif-samples/jpg/Canon_40D.jpg", roll)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "camroll",
            "sync",
            str(tmp_path / "DCIM"),
            "--server",
            server.url,
            "--token",
            token,
            "--watch",
            "--interval",
            "0.5",
            "--json",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = server.client(token)
        _wait_for(lambda: len(all_assets(client)) == 1)
        shutil.copy(ROLL / "exif-samples/jpg/Nikon_D70.jpg", roll / "IMG_0002.jpg")
        _wait_for(lambda: len(all_assets(client)) == 2)
        paths = sorted(a["device_path"] for a in all_assets(client))
        assert paths == ["100APPLE/Canon_40D.jpg", "100APPLE/IMG_0002.jpg"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_for(cond, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
