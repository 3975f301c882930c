"""Alembic environment: migrations run on the same engine setup as the app (WAL on SQLite)."""

from alembic import context

from camroll.db.engine import make_engine
from camroll.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url

engine = make_engine(url)
with engine.connect() as connection:
    if url.startswith("sqlite"):
        # Batch mode rebuilds a table with DROP TABLE; with foreign keys on, that DROP would
        # cascade-delete every child row (all of an asset's metadata, faces, places...). The
        # pragma only takes effect outside a transaction, so it is set (and committed) first.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    # batch mode lets later migrations alter SQLite tables.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if url.startswith("sqlite"):
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        assert not broken, f"migration left rows whose parents are gone: {broken[:5]}"
engine.dispose()
