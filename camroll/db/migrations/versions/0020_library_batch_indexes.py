"""What keeps the library refresh after a batch O(batch · log N) (issue 14 part 1):

- asset_quality (user_id, created_at): the owner's hash index takes only the rows added since it
  was built (without it, every batch scanned all of the owner's quality rows);
- faces (user_id, person_id, asset_id), replacing (user_id, person_id): a person's face count is
  read from the index alone (the trash check needs only asset_id);
- library_state.grown: photos analysed since the last full pass, counted by the batches, so
  deciding whether a full pass is due no longer counts the whole library.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        batch_op.create_index("ix_asset_quality_user_created", ["user_id", "created_at"])
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index("ix_faces_user_person")
        batch_op.create_index("ix_faces_user_person_asset", ["user_id", "person_id", "asset_id"])
    with op.batch_alter_table("library_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grown", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("library_state", schema=None) as batch_op:
        batch_op.drop_column("grown")
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index("ix_faces_user_person_asset")
        batch_op.create_index("ix_faces_user_person", ["user_id", "person_id"])
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_quality_user_created")
