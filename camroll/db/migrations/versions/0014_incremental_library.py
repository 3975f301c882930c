"""incremental library refresh: pHash bands for near-duplicate lookups, the batch watermark

asset_quality gains the pHash's four 16-bit bands (indexed with the owner), filled here from the
stored hashes; library_state remembers how far the refresh and ideas have got per owner;
job_runs gets an index to find what was analysed since.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        for k in range(4):
            batch_op.add_column(sa.Column(f"phash_b{k}", sa.Integer(), nullable=True))
        for k in range(4):
            batch_op.create_index(
                f"ix_asset_quality_band{k}", ["user_id", f"phash_b{k}"], unique=False
            )
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT asset_id, phash FROM asset_quality")).all()
    for asset_id, phash in rows:
        value = int(phash, 16)
        bands = {f"b{k}": (value >> (48 - 16 * k)) & 0xFFFF for k in range(4)}
        bind.execute(
            sa.text(
                "UPDATE asset_quality SET phash_b0 = :b0, phash_b1 = :b1, phash_b2 = :b2, "
                "phash_b3 = :b3 WHERE asset_id = :id"
            ),
            {**bands, "id": asset_id},
        )
    op.create_table(
        "library_state",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("refreshed_until", camroll.db.models.UTCDateTime(), nullable=True),
        sa.Column("full_at", camroll.db.models.UTCDateTime(), nullable=True),
        sa.Column("full_size", sa.Integer(), nullable=False),
        sa.Column("ideas_until", camroll.db.models.UTCDateTime(), nullable=True),
        sa.Column("ideas_full_at", camroll.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_job_runs_user_task_updated", ["user_id", "task", "updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_job_runs_user_task_updated")
    op.drop_table("library_state")
    with op.batch_alter_table("asset_quality", schema=None) as batch_op:
        for k in range(4):
            batch_op.drop_index(f"ix_asset_quality_band{k}")
        for k in range(4):
            batch_op.drop_column(f"phash_b{k}")
