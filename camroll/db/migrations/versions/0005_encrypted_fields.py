"""derived fields encrypted under the user's data key

The revealing columns become binary and every existing value is encrypted here, in the
migration, rather than by a pass at startup: a startup pass would leave plaintext in the
database (and in every backup taken meanwhile) until the server next starts, and every reader
would have to cope with both forms. The values are read first, the column types change (on
PostgreSQL through a cast that keeps them, on SQLite by the batch copy), then each value is
replaced by its ciphertext. Downgrade decrypts back.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> (primary key, [(column, kind, type before, nullable)])
COLUMNS: dict[str, tuple[str, list[tuple[str, str, Any, bool]]]] = {
    "uploads": (
        "id",
        [
            ("filename", "str", sa.String(length=1024), False),
            ("device_path", "str", sa.String(length=2048), True),
        ],
    ),
    "assets": (
        "id",
        [
            ("filename", "str", sa.String(length=1024), False),
            ("device_path", "str", sa.String(length=2048), True),
        ],
    ),
    "asset_metadata": (
        "id",
        [
            ("latitude", "float", sa.Float(), True),
            ("longitude", "float", sa.Float(), True),
            ("altitude", "float", sa.Float(), True),
            ("make", "str", sa.String(length=200), True),
            ("model_name", "str", sa.String(length=200), True),
            ("lens", "str", sa.String(length=200), True),
        ],
    ),
    "people": (
        "id",
        [
            ("name", "str", sa.String(length=200), True),
            ("birthday", "str", sa.String(length=10), True),
        ],
    ),
    "face_embeddings": ("face_id", [("vector", "bytes", sa.LargeBinary(), False)]),
    "asset_embeddings": ("asset_id", [("vector", "bytes", sa.LargeBinary(), False)]),
    "asset_places": (
        "asset_id",
        [
            ("city", "str", sa.String(length=200), False),
            ("subregion", "str", sa.String(length=200), True),
            ("region", "str", sa.String(length=200), True),
            ("country", "str", sa.String(length=100), True),
            ("country_code", "str", sa.String(length=2), True),
        ],
    ),
    "home_locations": (
        "id",
        [
            ("latitude", "float", sa.Float(), False),
            ("longitude", "float", sa.Float(), False),
            ("label", "str", sa.String(length=300), True),
        ],
    ),
    "ideas": (
        "id",
        [
            ("title", "str", sa.String(length=200), False),
            ("reason", "str", sa.Text(), False),
        ],
    ),
}


def _read(conn: sa.Connection, table: str) -> list[Any]:
    pk, cols = COLUMNS[table]
    names = ", ".join(c for c, *_ in cols)
    return list(conn.execute(sa.text(f"SELECT {pk}, user_id, {names} FROM {table}")))


def _ciphers(conn: sa.Connection, user_ids: set[str]) -> dict[str, Any]:
    """Each owner's field key; an owner without a data key (made before keys existed) gets one."""
    from camroll.crypto import fields
    from camroll.crypto.keys import KEY_BYTES, unwrap, wrap

    out = {}
    for uid in user_ids:
        wrapped = conn.execute(
            sa.text("SELECT wrapped_key FROM user_keys WHERE user_id = :u"), {"u": uid}
        ).scalar()
        if wrapped is None:
            import secrets

            key = secrets.token_bytes(KEY_BYTES)
            conn.execute(
                sa.text(
                    "INSERT INTO user_keys (user_id, wrapped_key, created_at) "
                    "VALUES (:u, :w, CURRENT_TIMESTAMP)"
                ),
                {"u": uid, "w": wrap(key, uid)},
            )
        else:
            key = unwrap(bytes(wrapped), uid)
        out[uid] = fields.field_key(key)
    return out


def _rewrite(conn: sa.Connection, table: str, rows: list[Any], encrypt: bool) -> None:
    from camroll.crypto import fields

    if not rows:
        return
    pk, cols = COLUMNS[table]
    ciphers = _ciphers(conn, {r[1] for r in rows}) if encrypt else {}
    sets = ", ".join(f"{c} = :{c}" for c, *_ in cols)
    stmt = sa.text(f"UPDATE {table} SET {sets} WHERE {pk} = :pk")
    for row in rows:
        params: dict[str, Any] = {"pk": row[0]}
        for i, (col, kind, *_rest) in enumerate(cols):
            value = row[2 + i]
            if value is None:
                params[col] = None
            elif encrypt:
                if kind == "str" and isinstance(value, bytes | memoryview):
                    value = bytes(value).decode("utf-8")
                params[col] = fields.seal(kind, value, row[1], ciphers[row[1]])
            else:
                params[col] = fields.open_sealed(kind, value)
        conn.execute(stmt, params)


def upgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    for table, (_pk, cols) in COLUMNS.items():
        rows = _read(conn, table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == "asset_places":
                # An index over ciphertext orders nothing useful.
                batch_op.drop_index("ix_asset_places_user_city")
            for col, kind, before, nullable in cols:
                if kind == "bytes":
                    continue  # already binary; only the values change
                batch_op.alter_column(
                    col,
                    existing_type=before,
                    type_=sa.LargeBinary(),
                    existing_nullable=nullable,
                    postgresql_using=f"convert_to({col}::text, 'UTF8')" if pg else None,
                )
        _rewrite(conn, table, rows, encrypt=True)


def downgrade() -> None:
    conn = op.get_bind()
    pg = conn.dialect.name == "postgresql"
    for table, (_pk, cols) in COLUMNS.items():
        rows = _read(conn, table)
        changed = [(c, k, b, n) for c, k, b, n in cols if k != "bytes"]
        # Ciphertext cannot be cast back: blank the columns, then write the plaintext.
        with op.batch_alter_table(table, schema=None) as batch_op:
            for col, _kind, _before, nullable in changed:
                if not nullable:
                    batch_op.alter_column(col, existing_type=sa.LargeBinary(), nullable=True)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for col, _kind, before, _nullable in changed:
                batch_op.alter_column(
                    col,
                    existing_type=sa.LargeBinary(),
                    type_=before,
                    existing_nullable=True,
                    postgresql_using="NULL" if pg else None,
                )
            if table == "asset_places":
                batch_op.create_index("ix_asset_places_user_city", ["user_id", "city"])
        _rewrite(conn, table, rows, encrypt=False)
        with op.batch_alter_table(table, schema=None) as batch_op:
            for col, _kind, before, nullable in changed:
                if not nullable:
                    batch_op.alter_column(col, existing_type=before, nullable=False)
