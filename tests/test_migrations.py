"""Migrations are history: the migrated schema must be exactly what the models declare, on
SQLite and PostgreSQL, so a change to the models without a new revision fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from camroll.db.engine import make_engine
from camroll.db.models import Base


def test_models_match_the_migrated_schema(env: dict) -> None:
    engine = make_engine(env["CAMROLL_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree; add a new Alembic revision: {diff}"
