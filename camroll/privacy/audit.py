"""The access audit log: every read of a user's originals or derived data, whoever reads it.

No write on the read path: `record` notes the event on the request's session, and only when
that session commits (a request that fails leaves no trace) are its events queued in memory.
A background thread writes the queue in one short transaction every `FLUSH_SECONDS`, in the
order the requests committed; the log's readers (`events`) write what is queued first, and the
process writes the rest on its way out. A crash loses at most the last `FLUSH_SECONDS` of
events; a read never holds SQLite's write lock, and a busy writer never delays a read.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from sqlalchemy import Engine, event, insert, select, update
from sqlalchemy.orm import Session

from camroll.db.models import Asset, AuditEvent, Export, Person, User, utcnow

log = logging.getLogger(__name__)
ADMIN_CLI = "admin-cli"
MAX_PAGE = 500
FLUSH_SECONDS = 2.0
MAX_QUEUED = 100_000  # a database gone for long costs the oldest queued events, not memory
_KEY = "camroll.audit"
_BIND = "_bind"
MAX_TRIES = 5  # flushes a batch may fail (a busy database) before it is dropped

_queue: list[dict[str, Any]] = []
_lock = threading.Lock()  # guards _queue
_writing = threading.Lock()  # one flush at a time, so rows keep their commit order
_wake = threading.Event()
_thread: threading.Thread | None = None


def record(session: Session, who: object, action: str, target: str | None = None) -> None:
    """Log that `who` did `action` on `target` (an asset id, or None for a whole-library read).

    `who` is an API `Caller` (its user is the owner, its client the actor), or, for access that
    no caller makes, a `(user_id, actor)` pair such as `(user.id, ADMIN_CLI)`."""
    if isinstance(who, tuple):
        user_id, actor = who
    else:
        user_id, actor = who.user.id, who.client  # type: ignore[attr-defined]
    row = {"user_id": user_id, "actor": actor, "action": action, "target": target, "at": utcnow()}
    session.info.setdefault(_KEY, []).append(row)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    rows = session.info.pop(_KEY, None)
    if rows:
        # Written later to the database that committed them, whatever the settings say then.
        bind = session.get_bind()
        _enqueue([{**r, _BIND: bind} for r in rows])


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_KEY, None)


def _enqueue(rows: list[dict[str, Any]]) -> None:
    global _thread
    with _lock:
        _queue.extend(rows)
        del _queue[:-MAX_QUEUED]
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="camroll-audit", daemon=True)
            _thread.start()


def flush(at_exit: bool = False) -> int:
    """Write the queued events now, one short transaction per database; returns how many
    were written."""
    with _writing:
        with _lock:
            rows = list(_queue)
            _queue.clear()
        written, retry = 0, []
        for bind in dict.fromkeys(r[_BIND] for r in rows):  # databases in first-seen order
            batch = [r for r in rows if r[_BIND] is bind]
            try:
                written += _write(bind, batch)
            except Exception as exc:  # busy or gone: kept, in order, for a few more flushes
                retry += [{**r, "_tries": r.get("_tries", 0) + 1} for r in batch]
                if not at_exit:
                    # One line, not a traceback every FLUSH_SECONDS while the database is away.
                    log.warning(
                        "could not write the access log (%d events kept): %s",
                        len(batch),
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
        if retry:
            with _lock:
                _queue[:0] = [r for r in retry if r["_tries"] < MAX_TRIES]
    return written


def _write(bind: Engine, batch: list[dict[str, Any]]) -> int:
    with Session(bind) as s, s.begin():
        # An account purged meanwhile takes its events with it.
        owners = {r["user_id"] for r in batch}
        alive = set(s.scalars(select(User.id).where(User.id.in_(owners))))
        rows = [
            {k: v for k, v in r.items() if k not in (_BIND, "_tries")}
            for r in batch
            if r["user_id"] in alive
        ]
        if rows:
            s.execute(insert(AuditEvent), rows)
            # A photo erased while its read waited in the queue: the log keeps that something
            # was read, but not which (as erasing does to the rows already written). Asked after
            # the insert, so inside the write: an erase that committed first is seen.
            targets = {r["target"] for r in rows if r["target"]}
            gone = targets - _existing_targets(s, targets)
            if gone:
                s.execute(
                    update(AuditEvent)
                    .where(AuditEvent.user_id.in_(alive), AuditEvent.target.in_(gone))
                    .values(target=None)
                )
    return len(rows)


def _existing_targets(s: Session, targets: set[str]) -> set[str]:
    """The targets that still exist: asset, person or export ids (an idea's read names its
    photo)."""
    found: set[str] = set()
    ids = sorted(targets)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        for model in (Asset, Person, Export):
            found.update(s.scalars(select(model.id).where(model.id.in_(chunk))))
    return found


def _run() -> None:
    while not _wake.wait(FLUSH_SECONDS):
        flush()


atexit.register(flush, at_exit=True)


def events(
    session: Session, user_id: str, limit: int = 100, before: int | None = None
) -> tuple[list[AuditEvent], int | None]:
    """One user's events, newest first; the second value is the `before` of the next page."""
    flush()  # what this reader's own earlier requests did is in the log it reads
    q = select(AuditEvent).where(AuditEvent.user_id == user_id)
    if before is not None:
        q = q.where(AuditEvent.id < before)
    rows = list(session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
