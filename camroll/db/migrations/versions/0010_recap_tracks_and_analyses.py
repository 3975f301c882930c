"""recap tracks (the owner's own music) and recap analyses (shared by every format of a moment)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _provenance() -> list[sa.Column]:
    return [
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    ]


def upgrade() -> None:
    op.create_table(
        "recap_tracks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=True),
        sa.Column("name", sa.LargeBinary(), nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=False),
        sa.Column("codec", sa.String(length=40), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        *_provenance(),
    )
    op.create_table(
        "recap_analyses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=True),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        *_provenance(),
        sa.UniqueConstraint("user_id", "key", name="uq_recap_analyses_user_key"),
    )
    for table in ("recap_tracks", "recap_analyses"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_asset_id"), ["asset_id"], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    for table in ("recap_analyses", "recap_tracks"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_user_id"))
            batch_op.drop_index(batch_op.f(f"ix_{table}_asset_id"))
        op.drop_table(table)
