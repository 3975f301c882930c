"""After a purge: make sure deleted rows leave no readable trace in the database files.

SQLite runs with `secure_delete` (camroll/db/engine.py), so freed pages are zeroed; but the WAL
still holds the page images from before the delete until a checkpoint copies them back and the
WAL is truncated. PostgreSQL keeps dead tuples in place until the table is rewritten:
`VACUUM FULL` rewrites each touched table (a plain VACUUM only marks the space reusable).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

CHECKPOINT_TRIES = 20
# VACUUM FULL needs an exclusive lock; never stall the instance behind a long reader for it.
PG_LOCK_TIMEOUT = "10s"


def scrub(engine: Engine, tables: list[str]) -> dict[str, str]:
    """Checkpoint (SQLite) or rewrite `tables` (PostgreSQL); returns what was done per target."""
    done: dict[str, str] = {}
    if engine.dialect.name == "sqlite":
        done = {"search_fts": _merge_fts(engine), "wal": _checkpoint(engine)}
    elif engine.dialect.name == "postgresql":
        done = _vacuum(engine, tables)
    log.info("after the purge: %s", done)
    return done


def _merge_fts(engine: Engine) -> str:
    """FTS5 deletes are markers over older index segments: merging them all drops the deleted
    rows' (blind, keyed) tokens from the file too."""
    with engine.begin() as conn:
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='search_fts'"
        ).first()
        if found is None:
            return "absent"
        conn.exec_driver_sql("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    return "merged"


def _checkpoint(engine: Engine) -> str:
    """TRUNCATE checkpoint: every WAL frame is written back and the WAL file is emptied.
    Readers still holding old snapshots make it answer busy; wait for them a little."""
    with engine.connect() as conn:
        for _ in range(CHECKPOINT_TRIES):
            busy, _frames, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
            if not busy:
                return "truncated"
            time.sleep(0.25)
    log.warning("WAL checkpoint stayed busy: old page images stay in the WAL until the next")
    return "busy"


def _vacuum(engine: Engine, tables: list[str]) -> dict[str, str]:
    done: dict[str, str] = {}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"SET lock_timeout = '{PG_LOCK_TIMEOUT}'")
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            try:
                conn.execute(text(f"VACUUM FULL {quoted}"))
                done[table] = "rewritten"
            except Exception as e:  # lock timeout: mark the space reusable at least
                log.warning("VACUUM FULL %s: %s; plain VACUUM instead", table, e)
                conn.execute(text(f"VACUUM {quoted}"))
                done[table] = "vacuumed"
    return done
