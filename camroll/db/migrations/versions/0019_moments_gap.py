"""library_state.moments_gap_s: the event gap threshold the last full ideas pass fitted on the
whole library, so a batch can find its trips in a time window around it (events split there
exactly as the full pass splits them) instead of reloading the library

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("library_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moments_gap_s", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("library_state", schema=None) as batch_op:
        batch_op.drop_column("moments_gap_s")
