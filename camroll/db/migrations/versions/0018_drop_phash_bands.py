"""asset_quality loses the pHash band columns of 0014: near-duplicate lookups go through a hash
array per owner (camroll.analyze.similar.HashIndex), measured two to four orders of magnitude
faster than the band index at the 10-bit radius (bench/scale.py --only index)

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        for k in range(4):
            batch_op.drop_index(f"ix_asset_quality_band{k}")
        for k in range(4):
            batch_op.drop_column(f"phash_b{k}")


def downgrade() -> None:
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        for k in range(4):
            batch_op.add_column(sa.Column(f"phash_b{k}", sa.Integer(), nullable=True))
        for k in range(4):
            batch_op.create_index(
                f"ix_asset_quality_band{k}", ["user_id", f"phash_b{k}"], unique=False
            )
