"""Repair for databases migrated with an earlier text of a revision that was edited after it
landed (0001-0009, before the rule that a landed revision is never edited again).

Such a database is stamped at the revision but lacks what the revision gained later, and Alembic
never runs a revision twice. So the repair replays today's text of each edited revision with
operations that create only what is absent (a table, a column, an index), checked one by one
against the live schema. The revisions are frozen now, so replaying them replays history.

Two callers: the migration environment, before a chain starts at one of them (revision 0005
reads tables that 0002 gained after it landed), and revision 0013 at the end of the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.script import ScriptDirectory

# The revisions that were edited after they landed, in chain order.
EDITED = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009")
# 0005 encrypts values and changes column types: a data migration, replayed only for tables whose
# columns are still plain.
ENCRYPTION = "0005"
# Indexes that an earlier revision creates and a later one drops: never recreated by a replay.
DROPPED_LATER = {"ix_asset_places_user_city"}  # dropped by 0005 (it ordered ciphertext)
# Where the migration environment notes the revision a database was at before the upgrade.
STAMPED_BEFORE = "camroll.stamped_before"


class _Batch:
    """Collects a batch_alter_table block so the absent parts can be applied afterwards."""

    def __init__(self, ops: Operations) -> None:
        self._ops = ops
        self.columns: list[sa.Column[Any]] = []
        self.indexes: list[tuple[str, list[str], dict[str, Any]]] = []

    def f(self, name: str) -> Any:
        return self._ops.f(name)

    def add_column(self, column: sa.Column[Any], **kw: Any) -> None:
        self.columns.append(column)

    def create_index(self, name: str, columns: list[str], **kw: Any) -> None:
        self.indexes.append((str(name), columns, kw))

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"the schema repair cannot replay batch_op.{name}")


class _IfAbsent:
    """Stands in for `alembic.op` while a revision is replayed: creates only what is missing."""

    def __init__(self, ops: Operations) -> None:
        self._ops = ops
        self.created_tables: set[str] = set()
        self.added_columns: set[tuple[str, str]] = set()

    def _inspect(self) -> sa.Inspector:
        return sa.inspect(self._ops.get_bind())  # fresh: an inspector caches what it saw

    def get_bind(self) -> sa.Connection:
        return self._ops.get_bind()

    def f(self, name: str) -> Any:
        return self._ops.f(name)

    def create_table(self, name: str, *items: Any, **kw: Any) -> None:
        inspector = self._inspect()
        if not inspector.has_table(name):
            self._ops.create_table(name, *items, **kw)
            self.created_tables.add(name)
            return
        # The table is there from the earlier text: add the columns it gained since.
        have = {c["name"] for c in inspector.get_columns(name)}
        missing = [c for c in items if isinstance(c, sa.Column) and c.name not in have]
        if missing:
            with self._ops.batch_alter_table(name) as real:
                for column in missing:
                    real.add_column(column)  # never attached: create_table was skipped
                    self.added_columns.add((name, column.name))

    @contextmanager
    def batch_alter_table(self, table: str, **kw: Any) -> Iterator[_Batch]:
        batch = _Batch(self._ops)
        yield batch
        inspector = self._inspect()
        have_columns = {c["name"] for c in inspector.get_columns(table)}
        have_indexes = {i["name"] for i in inspector.get_indexes(table)}
        columns = [c for c in batch.columns if c.name not in have_columns]
        indexes = [
            i for i in batch.indexes if i[0] not in have_indexes and i[0] not in DROPPED_LATER
        ]
        if not columns and not indexes:
            return
        with self._ops.batch_alter_table(table, **kw) as real:
            for column in columns:
                real.add_column(column)
                self.added_columns.add((table, column.name))
            for name, cols, options in indexes:
                real.create_index(name, cols, **options)

    def bulk_insert(self, table: sa.Table, rows: list[dict[str, Any]], **kw: Any) -> None:
        # Data a revision writes into a table it creates belongs with that table only.
        if table.name in self.created_tables:
            self._ops.bulk_insert(table, rows, **kw)

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"the schema repair cannot replay op.{name}")


@contextmanager
def _with_op(module: ModuleType, op: Any) -> Iterator[None]:
    saved = getattr(module, "op", None)
    if saved is None:  # a revision with nothing to do (0008)
        yield
        return
    module.op = op
    try:
        yield
    finally:
        module.op = saved


def _binary(inspector: sa.Inspector, table: str, column: str) -> bool:
    types = {c["name"]: c["type"] for c in inspector.get_columns(table)}
    return isinstance(types[column], sa.LargeBinary)


def _replay_encryption(module: ModuleType, ops: Operations) -> None:
    """0005 for the tables it has not reached: those whose first changed column is still plain.
    Tables whose columns were binary already (embeddings) follow the users' table of paths."""
    inspector = sa.inspect(ops.get_bind())
    assets_plain = not _binary(inspector, "assets", "filename")
    pending = {}
    for table, (pk, cols) in module.COLUMNS.items():
        changed = [c for c, kind, *_ in cols if kind != "bytes"]
        plain = not _binary(inspector, table, changed[0]) if changed else assets_plain
        if plain:
            pending[table] = (pk, cols)
    if not pending:
        return
    saved = module.COLUMNS
    module.COLUMNS = pending
    try:
        with _with_op(module, ops):
            module.upgrade()
    finally:
        module.COLUMNS = saved


def _restore_ledger_heads(bind: sa.Connection) -> None:
    """Users made before the head was kept on the user row: the head is their newest record."""
    bind.execute(
        sa.text(
            "UPDATE users SET ledger_head = (SELECT e.hash FROM consent_events e "
            "WHERE e.user_id = users.id ORDER BY e.id DESC LIMIT 1) WHERE ledger_head IS NULL"
        )
    )


def _made_by_this_upgrade(ops: Operations) -> bool:
    """A database that was empty when this upgrade began ran today's text of every revision:
    nothing to repair, and no inspection to pay for (every test makes such a database)."""
    env = ops.migration_context.environment_context
    return env is not None and env.config.attributes.get(STAMPED_BEFORE, "unknown") is None


def repair(ops: Operations, script: ScriptDirectory, upto: str) -> None:
    """Bring a database stamped at `upto` (or past it) to today's text of every edited revision
    up to `upto`."""
    if _made_by_this_upgrade(ops):
        return
    for rev in EDITED:
        if rev > upto:
            break
        module = script.get_revision(rev).module
        if rev == ENCRYPTION:
            _replay_encryption(module, ops)
            continue
        replay = _IfAbsent(ops)
        with _with_op(module, replay):
            module.upgrade()
        if ("users", "ledger_head") in replay.added_columns:
            _restore_ledger_heads(ops.get_bind())
