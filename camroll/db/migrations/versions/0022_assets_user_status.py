"""assets (user_id, status): an owner's photos in one state (the trash, the ready library) are
read from the index. The people refresh after each batch excludes the owner's trashed photos per
person, which scanned every photo of the owner without it (issue 14 part 1).

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index("ix_assets_user_status", ["user_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_user_status")
