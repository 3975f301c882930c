"""Alembic, driven from code so `camroll` needs no alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from camroll.config import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url)
    return cfg


def current_revision(url: str | None = None) -> str | None:
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url or get_settings().resolved_database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str | None = None) -> None:
    """Bring the database to the newest schema; safe to call on every start. The entry points
    call camroll.startup.prepare_database, which also fills what a revision leaves to code."""
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
