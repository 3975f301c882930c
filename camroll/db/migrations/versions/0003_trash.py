"""trash: assets deleted by the owner wait in the trash; per-photo keys for crypto-shredding

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trashed_at", camroll.db.models.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_assets_trashed_at"), ["trashed_at"], unique=False)

    # Per-photo keys: erasing a photo from the trash crypto-shreds its blobs.
    op.create_table(
        "asset_keys",
        sa.Column("asset_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("asset_id"),
    )
    with op.batch_alter_table("asset_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_asset_keys_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("asset_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_asset_keys_user_id"))
    op.drop_table("asset_keys")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_trashed_at"))
        batch_op.drop_column("trashed_at")
