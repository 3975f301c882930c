"""Crypto-shredding covers the database: revealing fields are ciphertext under the owner's key.

One library per backend (GPS photos from Tuscany and two photos of one woman, analysed for
faces and places by the real server) is shared by the module. The raw database (the SQLite file
and its WAL, or a `pg_dump`) is scanned for what an attacker with a copy would look for: file
names, coordinates as decimal text and as packed doubles, camera models, place names and
people's names. The e-mail stays in the clear until the purge (it is the login), so finding it
before the purge shows the scan does see the data.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN, ROLL, SHARED, Server, drop_test_database, make_user, run_cli
from tests.test_sync_e2e import all_assets, sync

GPS = ROLL / "exif-samples" / "jpg" / "gps"
DEEPFACE = SHARED / "faces" / "deepface"
FILES = {
    "DSCN0010.jpg": GPS / "DSCN0010.jpg",
    "DSCN0025.jpg": GPS / "DSCN0025.jpg",
    "DSCN0042.jpg": GPS / "DSCN0042.jpg",
    "img1.jpg": DEEPFACE / "img1.jpg",  # the same woman twice: one person
    "img2.jpg": DEEPFACE / "img2.jpg",
}
EMAIL = "zelda.fields@example.org"
PASSWORD = "fields-secret-pass"
NAME = "Zelda Quistorp"
BIRTHDAY = "1987-03-14"
SCOPES = {"cloud_processing": True, "faces": True, "places": True}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # One processed library per backend for the whole module (the shared `backend` is per test).
    if "db_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("--backend") or ["sqlite", "postgresql"]
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            chosen = [b for b in chosen if b in only.args] or list(only.args)
        metafunc.parametrize("db_backend", chosen, scope="module")


@dataclass
class Library:
    backend: str
    env: dict
    server: Server
    client: httpx.Client
    user_id: str
    assets: dict[str, dict]
    person_id: str
    data: Path
    secrets: dict[str, list[bytes]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def lib(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Library]:
    from camroll.config import get_settings
    from camroll.db.engine import _factory
    from camroll.db.migrate import upgrade
    from camroll.storage import _cached

    tmp = tmp_path_factory.mktemp(f"fields-{db_backend}")
    data = tmp / "data"
    data.mkdir()
    pg_name = f"camroll_f_{tmp.name[-6:].replace('-', '_')}_{id(tmp) % 10_000}"
    if db_backend == "sqlite":
        url = f"sqlite:///{data / 'camroll.db'}"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
    env = {
        "CAMROLL_DATA_DIR": str(data),
        "CAMROLL_DATABASE_URL": url,
        "XDG_STATE_HOME": str(tmp / "state"),
    }
    roll = tmp / "roll"
    roll.mkdir()
    for name, src in FILES.items():
        shutil.copy(src, roll / name)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for cache in (get_settings, _factory, _cached):
            cache.cache_clear()
        upgrade()
        server = Server(env).start()
        try:
            token = make_user(EMAIL, password=PASSWORD)
            client = server.client(token)
            assert client.put("/api/consent", json={"scopes": SCOPES}).status_code == 200
            result = sync(server, token, env, roll)
            assert result["failed"] == [] and result["jobs"]["failed"] == 0, result
            assets = {
                a["filename"]: client.get(f"/api/assets/{a['id']}").json()
                for a in all_assets(client)
            }
            assert set(assets) == set(FILES)
            person = assets["img1.jpg"]["faces"][0]["person_id"]
            assert person == assets["img2.jpg"]["faces"][0]["person_id"]
            r = client.patch(f"/api/people/{person}", json={"name": NAME, "birthday": BIRTHDAY})
            assert r.status_code == 200, r.text
            user_id = client.get("/api/me/report", params={"asset_limit": 1}).json()["user_id"]
            yield Library(db_backend, env, server, client, user_id, assets, person, data)
        finally:
            server.stop()
            for cache in (get_settings, _factory, _cached):
                cache.cache_clear()
            if db_backend == "postgresql":
                drop_test_database(pg_name)


@pytest.fixture
def in_env(lib: Library, monkeypatch: pytest.MonkeyPatch) -> Library:
    """This process pointed at the library's database (for direct reads)."""
    from camroll.config import get_settings
    from camroll.db.engine import _factory

    for k, v in lib.env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    _factory.cache_clear()
    return lib


def raw_database(lib: Library) -> bytes:
    """What a copy of the database holds: the SQLite file and its WAL, or a full `pg_dump`."""
    if lib.backend == "sqlite":
        db = lib.data / "camroll.db"
        wal = db.with_name("camroll.db-wal")
        return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    url = lib.env["CAMROLL_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    out = subprocess.run(["pg_dump", "--no-owner", url], capture_output=True, check=True)
    return out.stdout


def needles(lib: Library) -> dict[str, list[bytes]]:
    """Byte patterns that would betray each secret; bytea in a dump is hex, so hex too."""
    found: dict[str, list[bytes]] = {"file names": [], "coordinates": [], "names": []}
    for name, a in lib.assets.items():
        found["file names"].append(name.encode())
        if a["latitude"] is not None:
            for v in (a["latitude"], a["longitude"]):
                found["coordinates"] += [struct.pack("<d", v), struct.pack(">d", v)]
                # As text inside a bytea value, which a dump shows as hex.
                found["coordinates"].append(f"{v:.4f}".encode().hex().encode())
    place = lib.assets["DSCN0010.jpg"]["place"]
    found["names"] += [NAME.encode(), b"COOLPIX", place["city"].encode()]
    for key in list(found):
        found[key] += [n.hex().encode() for n in found[key] if len(n) >= 4]
    return found


def leaks(raw: bytes, lib: Library) -> dict[str, list[bytes]]:
    out = {k: [n for n in ns if n in raw] for k, ns in needles(lib).items()}
    # Any coordinate as text ("43.4674"): the photos' own and any near them (homes are averages
    # of them), but not a timestamp's seconds ("12:57:43.4676") or the tail of a longer number.
    for a in lib.assets.values():
        if a["latitude"] is not None:
            for v in (a["latitude"], a["longitude"]):
                near = re.escape(f"{v:.2f}".encode()) + rb"\d\d"
                out["coordinates"] += re.findall(rb"(?<![\d:.])" + near, raw)
    return {k: v for k, v in out.items() if v}


def test_pages_and_queries_decrypt_per_user(lib: Library) -> None:
    client, a = lib.client, lib.assets["DSCN0010.jpg"]
    assert a["device_path"] and a["device_path"].endswith("DSCN0010.jpg")
    assert a["latitude"] == pytest.approx(43.46745, abs=1e-4)
    assert a["make"] == "NIKON" and "COOLPIX" in a["model"]
    city = a["place"]["city"]
    # The place filter matches the decrypted names in memory.
    by_place = {x["filename"] for x in all_assets(client, place=city.upper())}
    assert by_place == {n for n, x in lib.assets.items() if x["place"]}
    assert all_assets(client, place="Atlantis") == []
    people = client.get("/api/people").json()
    assert people[0]["name"] == NAME and people[0]["birthday"] == BIRTHDAY


@pytest.mark.backends("sqlite")  # the same Python code on both; the text model costs ~15 s
def test_search_finds_names_and_places_decrypted_in_memory(lib: Library) -> None:
    hits = lib.client.get("/api/search", params={"q": "Zelda"}).json()["items"]
    assert {h["asset"]["filename"] for h in hits} == {"img1.jpg", "img2.jpg"}
    city = lib.assets["DSCN0010.jpg"]["place"]["city"]
    hits = lib.client.get("/api/search", params={"q": city}).json()["items"]
    assert {h["asset"]["filename"] for h in hits} >= {"DSCN0010.jpg", "DSCN0042.jpg"}


def test_report_says_what_is_encrypted_and_what_stays_in_the_clear(lib: Library) -> None:
    storage = lib.client.get("/api/me/report", params={"asset_limit": 1}).json()["storage"]
    encrypted = set(storage["encrypted_with_your_key"])
    assert {"assets.filename", "people.name", "asset_metadata.latitude"} <= encrypted
    assert {"asset_places.city", "face_embeddings.vector", "ideas.title"} <= encrypted
    assert any("e-mail" in c["what"] for c in storage["stored_in_the_clear"])
    with httpx.Client(base_url=lib.server.url, timeout=60) as web:
        r = web.post("/login", data={"email": EMAIL, "password": PASSWORD})
        assert r.status_code in (200, 303), r.text
        page = web.get("/report")
        assert page.status_code == 200
        assert "Stored in the clear" in page.text and "<code>people.name</code>" in page.text


def test_database_copy_holds_no_plaintext_while_the_account_lives(lib: Library) -> None:
    raw = raw_database(lib)
    assert EMAIL.encode() in raw  # the login stays in the clear: the scan does see the data
    assert leaks(raw, lib) == {}
    # The job queue's database beside it holds task arguments: ids only.
    queue = b"".join(p.read_bytes() for p in lib.data.glob("queue.db*"))
    assert queue and leaks(queue, lib) == {}


def test_encrypted_columns_refuse_sql_comparisons(in_env: Library) -> None:
    from sqlalchemy import select
    from sqlalchemy.exc import StatementError

    from camroll.crypto.fields import FieldEncryptionError
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset

    with session_scope() as s, pytest.raises(StatementError) as e:
        s.scalars(select(Asset).where(Asset.filename == "DSCN0010.jpg")).all()
    assert isinstance(e.value.orig, FieldEncryptionError)


def test_demo_summary_counts_places_after_decrypting(
    in_env: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    """`camroll demo` prints the commonest places: counted in memory, since each stored
    name is a different ciphertext (GROUP BY would count every photo once)."""
    from camroll.cli import _analysis_summary

    _analysis_summary(EMAIL)
    out = " ".join(capsys.readouterr().out.split())
    city = in_env.assets["DSCN0010.jpg"]["place"]["city"]
    located = sum(1 for a in in_env.assets.values() if a["place"])
    assert located == 3 and re.search(rf"{re.escape(city)}[^;(]*\({located}\)", out), out


def test_a_failed_write_leaves_plain_values_behind(in_env: Library) -> None:
    """A duplicate upload fails on the unique checksum; the object must still read plainly."""
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm import Session

    from camroll.db.engine import get_engine
    from camroll.db.models import Asset

    checksum = in_env.assets["img1.jpg"]["checksum"]
    dup = Asset(user_id=in_env.user_id, checksum=checksum, size=1, filename="again.jpg")
    with Session(get_engine()) as s:
        s.add(dup)
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()
    assert dup.filename == "again.jpg" and type(dup.filename) is str


def test_a_name_that_is_not_utf8_round_trips(in_env: Library) -> None:
    """File names arrive as bytes; ones that are not UTF-8 are kept with surrogate escapes."""
    from camroll.db.engine import session_scope
    from camroll.db.models import Asset

    name = b"IMG_\xff\xfe.JPG".decode("utf-8", "surrogateescape")
    with session_scope() as s:
        asset = Asset(user_id=in_env.user_id, checksum="f" * 64, size=1, filename=name)
        s.add(asset)
    with session_scope() as s:
        again = s.get(Asset, asset.id)
        assert again is not None and again.filename == name
        s.delete(again)


def test_purge_shreds_the_backup_and_leaves_no_trace(in_env: Library, tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from sqlalchemy import text

    from camroll.crypto import fields
    from camroll.crypto.keys import KeyDestroyed
    from camroll.db.engine import session_scope

    lib = in_env
    # A backup taken before the purge: the stored form of every file name.
    with session_scope() as s:
        stored = [
            bytes(v)
            for v in s.scalars(
                text("SELECT filename FROM assets WHERE user_id = :u"), {"u": lib.user_id}
            )
        ]
    assert len(stored) == len(FILES) and not any(b"DSCN" in v or b"img" in v for v in stored)
    assert {fields.open_sealed("str", v) for v in stored} == set(FILES)  # readable until now
    touched = ("users", "assets", "asset_metadata", "people", "face_embeddings")
    files_before = _pg_filenodes(touched) if lib.backend == "postgresql" else {}

    r = lib.client.delete("/api/me")
    assert r.status_code in (200, 202), r.text
    due = datetime.fromisoformat(r.json()["deletion_due_at"])
    out = run_cli("purge", "--as-of", (due + timedelta(seconds=1)).isoformat(), env=lib.env)
    assert out.returncode == 0 and "1 account(s) purged" in out.stdout, out.stderr

    raw = raw_database(lib)
    assert EMAIL.encode() not in raw and EMAIL.encode().hex().encode() not in raw
    assert leaks(raw, lib) == {}
    if lib.backend == "sqlite":
        wal = lib.data / "camroll.db-wal"
        assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated
    else:
        # VACUUM FULL wrote each touched table to a new file: the old pages are gone with it.
        after = _pg_filenodes(touched)
        assert all(after[t] != files_before[t] for t in touched), (files_before, after)

    # The backup's ciphertext is unreadable: this process cached the key when it made the
    # user; a fresh reader (as after a restore) has only the database, and the key is gone.
    fields.forget(lib.user_id)
    for v in stored:
        with pytest.raises(KeyDestroyed):
            fields.open_sealed("str", v)


def _pg_filenodes(tables: tuple[str, ...]) -> dict[str, int]:
    from sqlalchemy import text

    from camroll.db.engine import session_scope

    with session_scope() as s:
        return {t: s.scalar(text("SELECT pg_relation_filenode(:t)"), {"t": t}) for t in tables}


def test_rows_stored_before_encryption_are_encrypted_by_the_migration(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before revision 0005, with plaintext rows, comes out encrypted and
    reads the same through the models; downgrading gives the plaintext back."""
    import secrets

    from alembic import command
    from sqlalchemy import text

    from camroll.config import get_settings
    from camroll.crypto.keys import wrap
    from camroll.db.engine import _factory, make_engine, session_scope
    from camroll.db.migrate import alembic_config
    from camroll.db.models import Asset, AssetMetadata, AssetPlace, Person

    (tmp_path / "data").mkdir()  # where database_url puts SQLite
    monkeypatch.setenv("CAMROLL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAMROLL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    _factory.cache_clear()
    cfg = alembic_config(database_url)
    command.upgrade(cfg, "0004")
    engine = make_engine(database_url)
    now = "CURRENT_TIMESTAMP"
    uid = secrets.token_hex(16)  # keys are cached per user id in this process: a fresh one
    prov = f"'places', 'm', '1', {now}"
    with engine.begin() as c:
        c.execute(
            text(f"INSERT INTO users (id, email, created_at) VALUES ('{uid}', 'a@b.c', {now})")
        )
        c.execute(
            text(f"INSERT INTO user_keys VALUES ('{uid}', :w, {now})"),
            {"w": wrap(secrets.token_bytes(32), uid)},
        )
        c.execute(
            text(
                "INSERT INTO assets (id, user_id, checksum, size, filename, device_path, status,"
                f" uploaded_at, sort_at) VALUES ('a1', '{uid}', 'c', 1, 'DSCN0010.jpg',"
                f" 'DCIM/DSCN0010.jpg', 'ready', {now}, {now})"
            )
        )
        c.execute(
            text(
                "INSERT INTO asset_metadata (id, user_id, asset_id, latitude, longitude, make,"
                f" scope, model, model_version, created_at) VALUES ('m1', '{uid}', 'a1',"
                f" 43.4674483, 11.8851267, 'NIKON', {prov})"
            )
        )
        c.execute(
            text(
                "INSERT INTO asset_places (asset_id, user_id, city, country_code, scope, model,"
                f" model_version, created_at) VALUES ('a1', '{uid}', 'Arezzo', 'IT', {prov})"
            )
        )
        c.execute(
            text(
                "INSERT INTO people (id, user_id, name, birthday, hidden, face_count, scope,"
                f" model, model_version, created_at) VALUES ('p1', '{uid}', 'Zelda Quistorp',"
                f" '1987-03-14', false, 1, {prov})"
            )
        )
    command.upgrade(cfg, "head")
    with engine.connect() as c:
        raw = c.execute(text("SELECT filename FROM assets")).scalar()
        lat = c.execute(text("SELECT latitude FROM asset_metadata")).scalar()
    assert b"DSCN" not in bytes(raw) and struct.pack("<d", 43.4674483) not in bytes(lat)
    with session_scope() as s:
        asset, meta = s.get(Asset, "a1"), s.get(AssetMetadata, "m1")
        assert (asset.filename, asset.device_path) == ("DSCN0010.jpg", "DCIM/DSCN0010.jpg")
        assert (meta.latitude, meta.longitude, meta.make) == (43.4674483, 11.8851267, "NIKON")
        assert s.get(AssetPlace, "a1").city == "Arezzo"
        assert (s.get(Person, "p1").name, s.get(Person, "p1").birthday) == (
            "Zelda Quistorp",
            "1987-03-14",
        )
    command.downgrade(cfg, "0004")
    with engine.connect() as c:
        assert c.execute(text("SELECT filename FROM assets")).scalar() == "DSCN0010.jpg"
        assert c.execute(text("SELECT name FROM people")).scalar() == "Zelda Quistorp"
    engine.dispose()
    get_settings.cache_clear()
    _factory.cache_clear()
