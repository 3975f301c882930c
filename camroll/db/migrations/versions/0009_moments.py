"""home periods: where the owner lived when (derived location data, `places` scope)

Moments (events and trips) are not stored: they are recomputed from the library on every call.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "home_periods",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("asset_id", sa.String(length=32), nullable=True),
        sa.Column("latitude", sa.LargeBinary(), nullable=False),
        sa.Column("longitude", sa.LargeBinary(), nullable=False),
        sa.Column("label", sa.LargeBinary(), nullable=True),
        sa.Column("start_date", sa.String(length=10), nullable=False),
        sa.Column("end_date", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=60), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("home_periods", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_home_periods_asset_id"), ["asset_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_home_periods_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("home_periods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_home_periods_user_id"))
        batch_op.drop_index(batch_op.f("ix_home_periods_asset_id"))
    op.drop_table("home_periods")
