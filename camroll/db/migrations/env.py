"""Alembic environment: migrations run on the same engine setup as the app (WAL on SQLite)."""

from alembic import context
from alembic.operations import Operations

from camroll.db.edited_revisions import ENCRYPTION, STAMPED_BEFORE, repair
from camroll.db.engine import make_engine
from camroll.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url


def _repair_before_chain() -> None:
    """A database stamped below 0005 by an earlier text of 0001/0002 lacks tables that 0005
    reads: replay the revisions it is stamped at first (the rest waits for revision 0013)."""
    migration = context.get_context()
    stamped = migration.get_current_revision()
    context.config.attributes[STAMPED_BEFORE] = stamped
    target = context.get_revision_argument()
    upgrading = target in ("head", "heads") or (isinstance(target, str) and target > str(stamped))
    if stamped is not None and stamped < ENCRYPTION and upgrading:
        repair(Operations(migration), context.script, upto=stamped)


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
        _repair_before_chain()
        context.run_migrations()
    if url.startswith("sqlite"):
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        assert not broken, f"migration left rows whose parents are gone: {broken[:5]}"
engine.dispose()
