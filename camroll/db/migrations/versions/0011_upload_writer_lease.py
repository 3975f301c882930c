"""upload writer lease: one writer per upload across every API node, through the database

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("writer_gen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("writer_until", camroll.db.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("writer_tag", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("writer_tag")
        batch_op.drop_column("writer_until")
        batch_op.drop_column("writer_gen")
