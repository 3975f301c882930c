"""original file names: the name exactly as sent (UTF-8 bytes), kept encrypted beside the
cleaned one that every page, download and zip shows

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("uploads", "assets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("original_name", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in ("assets", "uploads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("original_name")
