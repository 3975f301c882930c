"""The whole shared camera roll through `camroll sync` into a real server, as a user runs it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import httpx

from camroll.client.sync import walk
from camroll.storage import get_store
from tests.conftest import ROLL, Server, make_user, run_cli

# Files the shared roll breaks on purpose, and the quarantine reason each must get.
BROKEN = {
    "pigallery2/demo/broken image.JPG": {"empty"},  # 2,380 zero bytes
    "lychee/Samples/sync/test-folder/somefile": {"empty"},  # 0 bytes
    "pigallery2/test-assets/imageSizeError.jpg": {"truncated"},
    "pigallery2/test-assets/edge_case_exif_data/corrupted_city.JPG": {"corrupt"},
    "exiftool-t/QuickTime.heic": {"truncated"},
}
# Broken only for EXIF parsers (odd offsets, looping IFDs); the pictures decode fully, so they
# belong in the owner's timeline, not in quarantine.
ODD_EXIF = [
    "exif-samples/jpg/corrupted.jpg",
    *(
        f"exif-samples/jpg/invalid/{p.name}"
        for p in (ROLL / "exif-samples/jpg/invalid").glob("*.jpg")
    ),
]


# Live Photos: a still and its motion clip, paired by Apple's ContentIdentifier.
LIVE_PAIRS = [
    ("lychee/Samples/train.jpg", "lychee/Samples/train.mov"),
    (
        "pigallery2/test-assets/live_photo/IMG_7943.HEIC",
        "pigallery2/test-assets/live_photo/IMG_7943_HEVC.MOV",
    ),
]
# PostgreSQL stores what SQLite stores; where they differ is the odd text metadata carries (NUL
# bytes, long or badly encoded strings). Its run syncs the files that carry such metadata, the
# broken ones and the Live Photos, not the whole roll again (90 s more of the same decoding).
POSTGRES_PART = [
    "exiftool-t",
    "exif-samples/jpg/corrupted.jpg",
    "exif-samples/jpg/invalid",
    *BROKEN,
    *(path for pair in LIVE_PAIRS for path in pair),
]


def roll_for(backend: str, root: Path) -> Path:
    """The whole shared roll on SQLite; on PostgreSQL, POSTGRES_PART copied under `root` with
    the same paths (the device paths the assertions name)."""
    if backend == "sqlite":
        return ROLL
    for rel in POSTGRES_PART:
        src, dst = ROLL / rel, root / rel
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_assets(client: httpx.Client, **params: str) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.get(
            "/api/assets", params={"limit": 500, **params, **({"cursor": cursor} if cursor else {})}
        ).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def sync(server: Server, token: str, env: dict, folder: Path = ROLL) -> dict:
    r = run_cli(
        "sync", str(folder), "--server", server.url, "--token", token, "--wait", "--json", env=env
    )
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


def test_full_roll_syncs_once_byte_identical_encrypted_and_quarantined(
    server: Server, env: dict, backend: str, tmp_path: Path
) -> None:
    token = make_user("roll@example.org")
    roll = roll_for(backend, tmp_path / "roll")
    files = list(walk(roll))
    local = {f: sha256(f) for f in files}

    first = sync(server, token, env, roll)
    assert first["failed"] == [], first["failed"]
    assert first["jobs"]["pending"] == 0 and first["jobs"]["failed"] == 0
    assert len(first["uploaded"]) == len(set(local.values()))
    assert len(first["uploaded"]) + len(first["skipped"]) == len(files)

    second = sync(server, token, env, roll)
    assert second["counts"]["uploaded"] == 0
    assert second["counts"]["skipped"] == len(files)

    client = server.client(token)
    assets = all_assets(client)
    assert sorted(a["checksum"] for a in assets) == sorted(set(local.values()))
    by_path = {a["device_path"]: a for a in assets}

    # Every broken file is quarantined with its reason; every real photo made it through.
    for rel, reasons in BROKEN.items():
        assert by_path[rel]["status"] == "quarantined"
        assert by_path[rel]["quarantine_reason"] in reasons, by_path[rel]
        assert by_path[rel]["quarantine_detail"]
    for rel in ODD_EXIF:
        assert by_path[rel]["status"] == "ready", by_path[rel]
    for a in assets:
        if a["status"] == "quarantined":
            assert a["quarantine_reason"] and a["quarantine_detail"], a
    quarantined_paths = {q["path"] for q in first["quarantined"]}
    assert set(BROKEN) <= quarantined_paths
    for rel in ["exif-samples/jpg/Canon_40D.jpg", "pigallery2/demo/images/IMG_5910.jpg"]:
        if rel in by_path:
            assert by_path[rel]["status"] == "ready", by_path[rel]
    # Live Photos: the still and its motion clip point at each other (Apple ContentIdentifier).
    for still, motion in LIVE_PAIRS:
        assert by_path[still]["live_pair_id"] == by_path[motion]["id"]
        assert by_path[motion]["live_pair_id"] == by_path[still]["id"]
    ready = [a for a in assets if a["status"] == "ready"]
    kinds = {a["kind"] for a in ready}
    assert {"image", "video"} <= kinds
    assert len(ready) > (250 if roll == ROLL else 60), len(ready)

    # Originals come back byte-identical; previews decrypt to real images.
    for a in assets:
        r = client.get(f"/api/assets/{a['id']}/original")
        assert r.status_code == 200
        assert hashlib.sha256(r.content).hexdigest() == a["checksum"]
    for a in ready[:20]:
        assert client.get(a["thumbnail_url"]).content[8:12] == b"WEBP"
        assert client.get(a["preview_url"]).content[:3] == b"\xff\xd8\xff"

    # No plaintext at rest: no distinctive 64-byte window of any original is in the data dir.
    data_dir = Path(env["CAMROLL_DATA_DIR"])
    blob = b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())
    leaks = []
    for f, digest in local.items():
        raw = f.read_bytes()
        windows = [raw[i : i + 64] for i in range(len(raw) // 2, len(raw) - 64, 4096)][:4]
        # Runs of padding are in every file; only windows with real variety identify content.
        for window in (w for w in windows if len(set(w)) >= 24):
            if window in blob:
                leaks.append((f, digest))
                break
    assert leaks == []
    assert list(get_store().keys("staging/")) == []  # every staged segment went


def test_sync_refuses_without_consent_and_says_how(server: Server, env: dict) -> None:
    token = make_user("noconsent@example.org", consent=False)
    r = run_cli(
        "sync",
        str(ROLL / "exif-samples" / "jpg" / "gps"),
        "--server",
        server.url,
        "--token",
        token,
        env=env,
    )
    assert r.returncode == 3
    assert "not opted in" in r.stderr and "cloud_processing" in r.stderr
    assert all_assets(server.client(token)) == []
