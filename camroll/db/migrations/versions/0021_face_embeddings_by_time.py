"""face_embeddings (user_id, created_at): the owner's face index checks its freshness (row
count and newest row) and reads the rows added since from this index alone, instead of
joining every face of the owner (issue 14 part 2: placing a face at flat cost)

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.create_index("ix_face_embeddings_user_created", ["user_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("face_embeddings", schema=None) as batch_op:
        batch_op.drop_index("ix_face_embeddings_user_created")
