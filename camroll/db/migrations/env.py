"""Alembic environment: migrations run on the same engine setup as the app (WAL on SQLite)."""

from alembic import context

from camroll.db.engine import make_engine
from camroll.db.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url

engine = make_engine(url)
with engine.connect() as connection:
    # batch mode lets later migrations alter SQLite tables.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
