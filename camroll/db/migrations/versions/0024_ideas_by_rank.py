"""Indexes that let a batch's idea pass read a theme's and the smiles' best rows
instead of all of them (issue 14 part 1):

- asset_tags (user_id, label, score, asset_id) replaces (user_id, label): a theme's size is
  counted in the index alone;
- asset_tags (user_id, asset_id, label, score): a batch's tags by photo (the planner used
  (user_id) and read every tag of the owner: 30 ms at 50k), and "has this theme" per photo;
- asset_quality (user_id, score, asset_id): a theme's best photos walked from the best down;
  partial (score IS NOT NULL), as the next one: SQLite has no statistics here and took a plain
  (user_id, ...) index for other lookups (a batch's duplicate groups: all 50k rows read), so
  only a query that names the predicate can use it;
- face_expressions (user_id, smile, asset_id): the broadest smiles walked from the broadest
  down; (user_id, asset_id): a batch's smiles by photo (the planner read every expression).

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_tags_user_label")
        batch_op.create_index(
            "ix_asset_tags_user_label_score", ["user_id", "label", "score", "asset_id"]
        )
        batch_op.create_index("ix_asset_tags_user_asset", ["user_id", "asset_id", "label", "score"])
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        batch_op.create_index(
            "ix_asset_quality_user_score",
            ["user_id", "score", "asset_id"],
            sqlite_where=sa.text("score IS NOT NULL"),
            postgresql_where=sa.text("score IS NOT NULL"),
        )
    with op.batch_alter_table("face_expressions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_face_expressions_user_smile",
            ["user_id", "smile", "asset_id"],
            sqlite_where=sa.text("smile IS NOT NULL"),
            postgresql_where=sa.text("smile IS NOT NULL"),
        )
        batch_op.create_index("ix_face_expressions_user_asset", ["user_id", "asset_id"])


def downgrade() -> None:
    with op.batch_alter_table("face_expressions", schema=None) as batch_op:
        batch_op.drop_index("ix_face_expressions_user_asset")
        batch_op.drop_index("ix_face_expressions_user_smile")
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_quality_user_score")
    with op.batch_alter_table("asset_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_asset_tags_user_asset")
        batch_op.drop_index("ix_asset_tags_user_label_score")
        batch_op.create_index("ix_asset_tags_user_label", ["user_id", "label"])
