"""Migrations are history: the migrated schema must be exactly what the models declare, on
SQLite and PostgreSQL, so a change to the models without a new revision fails here."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from camroll.db.engine import make_engine
from camroll.db.migrate import MIGRATIONS, upgrade
from camroll.db.models import Base

REPO = Path(__file__).resolve().parents[1]


def _declared(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """The full-text search index exists only in the migration (0012): SQLite's FTS5 virtual
    table (and its shadow tables) and PostgreSQL's expression GIN index; no model declares them."""
    if not reflected:
        return True
    return not (type_ == "table" and (name or "").startswith("search_fts")) and not (
        type_ == "index" and name == "ix_search_terms_tsv"
    )


def test_models_match_the_migrated_schema(env: dict) -> None:
    engine = make_engine(env["CAMROLL_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            opts = {"compare_type": True, "include_object": _declared}
            ctx = MigrationContext.configure(conn, opts=opts)
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; add a new Alembic revision: {diff}"


# Commits whose revision texts differ from today's: a database made there is stamped at a
# revision yet lacks what that revision gained later (issue 14 part 6).
EARLIER_TEXTS = {
    "first-0001": "5e034c8f74407e9cd2e5c4427c3232acf4bb5a6f",
    "first-0002": "9de92a48173c69e9f0889e7c4123653678c48189",
    "0003-0008-reserved-empty": "dad82c98008849ca4f51ff42d37b03cff8aeaf33",
}
PHOTOS = {"a" * 32: ("IMG_0001.JPG", 52.52, 13.405), "b" * 32: ("IMG_0002.HEIC", None, None)}


def _revisions_at(commit: str, dest: Path) -> Path:
    """The migrations folder with that commit's revisions (and today's environment)."""
    (dest / "versions").mkdir(parents=True)
    shutil.copy(MIGRATIONS / "env.py", dest / "env.py")
    shutil.copy(MIGRATIONS / "script.py.mako", dest / "script.py.mako")

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(REPO), *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, f"this test reads the history back to {commit}: {done.stderr}"
        return done.stdout

    for path in git("ls-tree", "--name-only", commit, "camroll/db/migrations/versions/").split():
        if path.endswith(".py"):
            (dest / "versions" / Path(path).name).write_text(git("show", f"{commit}:{path}"))
    return dest


def _alembic(folder: Path, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _fill_early_database(url: str, uid: str) -> None:
    """A user with a data key, two photos (one with GPS, placed) and consent granted through
    the hash chain, written with plain SQL as that day's code would have."""
    from camroll.consent.gate import GENESIS, chain_hash
    from camroll.consent.scopes import POLICY_VERSION, SCOPES
    from camroll.crypto.keys import KEY_BYTES, wrap
    from camroll.db.models import ConsentEvent

    at = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    naive = at.replace(tzinfo=None)
    engine = make_engine(url)
    with engine.begin() as conn:

        def insert(table: str, **values: object) -> None:
            names = ", ".join(values)
            marks = ", ".join(f":{k}" for k in values)
            conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({marks})"), values)

        insert("users", id=uid, email="early@example.org", created_at=naive)
        key = secrets.token_bytes(KEY_BYTES)
        insert("user_keys", user_id=uid, wrapped_key=wrap(key, uid), created_at=naive)
        prev = GENESIS
        for scope in ("cloud_processing", "places"):
            event = ConsentEvent(
                user_id=uid,
                scope=scope,
                granted=True,
                policy_version=POLICY_VERSION,
                policy_sha256=SCOPES[scope].sha256,
                client="sync 0.1",
                at=at,
                prev_hash=prev,
            )
            prev = chain_hash(prev, event)
            values = {c: getattr(event, c) for c in ("user_id", "scope", "granted", "client")}
            values |= {"policy_version": POLICY_VERSION, "policy_sha256": event.policy_sha256}
            insert("consent_events", **values, at=naive, prev_hash=event.prev_hash, hash=prev)
            insert(
                "consent_state",
                user_id=uid,
                scope=scope,
                granted=True,
                changed_at=naive,
                policy_version=POLICY_VERSION,
            )
        users = {c["name"] for c in sa.inspect(conn).get_columns("users")}
        if "ledger_head" in users:  # that day's code kept the chain's head on the user row
            conn.execute(sa.text("UPDATE users SET ledger_head = :h"), {"h": prev})
        placed = sa.inspect(conn).has_table("asset_places")
        for n, (asset_id, (name, lat, lon)) in enumerate(PHOTOS.items()):
            insert(
                "assets",
                id=asset_id,
                user_id=uid,
                checksum=f"{n:064d}",
                size=1000 + n,
                filename=name,
                device_path=f"DCIM/100APPLE/{name}",
                status="ready",
                uploaded_at=naive,
                sort_at=naive,
            )
            if lat is None:
                continue
            provenance = {"scope": "metadata", "model": "exiftool", "model_version": "13"}
            insert(
                "asset_metadata",
                id="m" * 32,
                user_id=uid,
                asset_id=asset_id,
                latitude=lat,
                longitude=lon,
                created_at=naive,
                **provenance,
            )
            if placed:
                provenance = {"scope": "places", "model": "geonames", "model_version": "1"}
                insert(
                    "asset_places",
                    asset_id=asset_id,
                    user_id=uid,
                    city="Berlin",
                    country_code="DE",
                    created_at=naive,
                    **provenance,
                )
    engine.dispose()


@pytest.mark.parametrize(
    "era",
    [
        "first-0001",
        "first-0002",
        # The same repair from a later starting point (0005's encryption replayed): long run.
        pytest.param("0003-0008-reserved-empty", marks=pytest.mark.slow),
    ],
)
def test_a_database_from_earlier_revision_texts_upgrades_with_its_data(
    era: str, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camroll.config import get_settings
    from camroll.consent.gate import is_granted, set_scopes
    from camroll.consent.ledger import verify_ledger
    from camroll.db.engine import _factory, session_scope
    from camroll.db.models import Asset, AssetMetadata, AssetPlace, User

    (tmp_path / "data").mkdir()
    monkeypatch.setenv("CAMROLL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAMROLL_DATABASE_URL", database_url)
    get_settings.cache_clear()
    _factory.cache_clear()
    early = _revisions_at(EARLIER_TEXTS[era], tmp_path / "migrations")
    command.upgrade(_alembic(early, database_url), "head")
    uid = secrets.token_hex(16)  # data keys are cached per user id within the process
    _fill_early_database(database_url, uid)

    upgrade(database_url)  # what `camroll serve` does on start

    test_models_match_the_migrated_schema({"CAMROLL_DATABASE_URL": database_url})
    with session_scope() as s:
        user = s.scalars(sa.select(User)).one()
        assert user.email == "early@example.org"
        assets = {a.id: a for a in s.scalars(sa.select(Asset))}
        assert {i: (a.filename, a.device_path) for i, a in assets.items()} == {
            i: (name, f"DCIM/100APPLE/{name}") for i, (name, _, _) in PHOTOS.items()
        }
        meta = s.scalars(sa.select(AssetMetadata)).one()
        assert (meta.latitude, meta.longitude) == (52.52, 13.405)
        places = [p.city for p in s.scalars(sa.select(AssetPlace))]
        assert places == ([] if era == "first-0001" else ["Berlin"])
        assert is_granted(s, uid, "places") and not is_granted(s, uid, "faces")
        assert verify_ledger(s) == (2, [])
        # The chain goes on from the early records.
        assert set_scopes(s, uid, {"faces": True}, client="test") == ["faces"]
    with session_scope() as s:
        assert verify_ledger(s) == (3, [])
        assert is_granted(s, uid, "faces")
    # Upgrading again finds nothing to do.
    upgrade(database_url)
    test_models_match_the_migrated_schema({"CAMROLL_DATABASE_URL": database_url})


def test_a_landed_revision_is_never_edited() -> None:
    """Every revision after 0009 is in the history once, as it landed: a change to the schema
    is a new revision (0001-0009 were edited before the rule; 0013 repairs what that did)."""
    from camroll.db.edited_revisions import EDITED

    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        cmd = ["git", "-C", str(REPO), "log", "--format=%h", "--follow", "--", str(path)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        commits = done.stdout.split()
        if path.name[:4] not in EDITED:
            assert len(commits) <= 1, (
                f"{path.name} changed after it landed (commits {commits}); "
                "revert it and put the change in a new revision"
            )
