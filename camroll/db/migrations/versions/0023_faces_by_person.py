"""faces (person_id): deleting a person sets its faces' person_id to NULL (ON DELETE SET NULL),
which without an index led by person_id scanned every face (30 ms at 100k faces, each time a
recluster of a component empties a person; issue 14 part 2)

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.create_index("ix_faces_person_id", ["person_id"])


def downgrade() -> None:
    with op.batch_alter_table("faces", schema=None) as batch_op:
        batch_op.drop_index("ix_faces_person_id")
