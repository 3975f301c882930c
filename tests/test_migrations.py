"""Migrations are history: the migrated schema must be exactly what the models declare, on
SQLite and PostgreSQL, so a change to the models without a new revision fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from camroll.db.engine import make_engine
from camroll.db.models import Base


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
