"""trash: assets deleted by the owner wait in the trash

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


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assets_trashed_at"))
        batch_op.drop_column("trashed_at")
