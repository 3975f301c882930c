"""What every entry point (the server, the worker, the CLI's commands) does to the database on
start: bring the schema up to date (camroll.db.migrate), then fill in what a revision leaves to
code. It sits above db and search, so the schema package needs nothing of the search index."""

from __future__ import annotations

from camroll.config import get_settings
from camroll.db.migrate import current_revision, upgrade

# The revision that made the search index: a database upgraded across it indexes its library.
SEARCH_INDEX_REVISION = "0012"


def prepare_database() -> None:
    """Upgrade the configured database; safe to call on every start."""
    # The embedded SQLite file lives in the data folder: on a first start neither exists yet.
    get_settings().data_dir.mkdir(parents=True, exist_ok=True)
    before = current_revision()
    upgrade()
    if before is not None and before < SEARCH_INDEX_REVISION:
        from camroll.search.index import index_everyone

        index_everyone()
