"""When each API token or device app password was last used, written off the request path.

Setting `last_used_at` inside the request's session made the first read after it flush an
UPDATE, so on SQLite every request that did so held the single write lock until it ended (a
whole download or render), and other users' writes failed with "database is locked". Uses are
noted in memory and written by a background thread in one short transaction every
`FLUSH_SECONDS`; the value is only ever read with a minute's precision.
"""

from __future__ import annotations

import atexit
import logging
import threading
from datetime import datetime

from sqlalchemy import update

log = logging.getLogger(__name__)
FLUSH_SECONDS = 20.0

_pending: dict[str, datetime] = {}
_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None


def note(token_id: str, at: datetime) -> None:
    global _thread
    with _lock:
        _pending[token_id] = at
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="camroll-token-usage", daemon=True)
            _thread.start()


def noted(token_id: str) -> datetime | None:
    """A use noted but not yet written (what lists of tokens show until the next flush)."""
    with _lock:
        return _pending.get(token_id)


def flush(at_exit: bool = False) -> int:
    """Write what is pending now; returns how many tokens were updated."""
    from camroll.db.engine import session_scope
    from camroll.db.models import ApiToken

    with _lock:
        items = dict(_pending)
        _pending.clear()
    if not items:
        return 0
    try:
        with session_scope() as s:
            for token_id, at in items.items():
                s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))
    except Exception as exc:  # a busy or gone database: a use time is not worth failing for
        if not at_exit:
            # One line, not a traceback: this runs on a background thread (see privacy/audit.py).
            log.warning("could not record token use times: %s", str(exc).split("\n")[0])
    return len(items)


def _run() -> None:
    while not _wake.wait(FLUSH_SECONDS):
        flush()


atexit.register(flush, at_exit=True)
