"""merge suggestions the owner rejected: person_rejections (a cannot-link between two people)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_rejections",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("person_a", sa.String(length=32), nullable=False),
        sa.Column("person_b", sa.String(length=32), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_a"], ["people.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_b"], ["people.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("person_a", "person_b"),
    )
    with op.batch_alter_table("person_rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_person_rejections_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_person_rejections_person_b"), ["person_b"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("person_rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_person_rejections_person_b"))
        batch_op.drop_index(batch_op.f("ix_person_rejections_user_id"))
    op.drop_table("person_rejections")
