"""search index: blind tokens per asset (search_terms) with a full-text index over them

SQLite: an external-content FTS5 table kept in step by triggers (they also fire for the
foreign-key cascades of a purge). PostgreSQL: a GIN index over to_tsvector('simple', tokens).
Both index keyed hashes only, never plaintext (camroll/search/blind.py).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_SQLITE = [
    "CREATE VIRTUAL TABLE search_fts USING fts5("
    "tokens, content='search_terms', content_rowid='id', detail='none')",
    "CREATE TRIGGER search_terms_ai AFTER INSERT ON search_terms BEGIN "
    "INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
    "CREATE TRIGGER search_terms_ad AFTER DELETE ON search_terms BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END",
    "CREATE TRIGGER search_terms_au AFTER UPDATE ON search_terms BEGIN "
    "INSERT INTO search_fts(search_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); "
    "INSERT INTO search_fts(rowid, tokens) VALUES (new.id, new.tokens); END",
]


def upgrade() -> None:
    op.create_table(
        "search_terms",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("tokens", sa.Text(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=True),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_search_terms_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_search_terms_user_id"), ["user_id"], unique=False)
        batch_op.create_index("ix_search_terms_user_day", ["user_id", "day"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for stmt in _SQLITE:
            op.execute(stmt)
    elif dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_search_terms_tsv ON search_terms "
            "USING gin (to_tsvector('simple', tokens))"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("search_terms_au", "search_terms_ad", "search_terms_ai"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_terms_tsv")
    with op.batch_alter_table("search_terms", schema=None) as batch_op:
        batch_op.drop_index("ix_search_terms_user_day")
        batch_op.drop_index(batch_op.f("ix_search_terms_user_id"))
        batch_op.drop_index(batch_op.f("ix_search_terms_asset_id"))
    op.drop_table("search_terms")
