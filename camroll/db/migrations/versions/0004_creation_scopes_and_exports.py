"""creation scopes and export lifecycle

Ideas record the scopes they drew on in their existing composite `scope` ("creations+faces"),
so only the exports table is new.

Revision ID: 0004
Revises: 0003
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

import camroll.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", camroll.db.models.UTCDateTime(), nullable=False),
        sa.Column("blob_key", sa.String(length=200), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exports_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_exports_user_id"), ["user_id"], unique=False)
    _adopt_earlier_exports()


def _adopt_earlier_exports() -> None:
    """Zips made before exports had rows would never expire: give each one, dated from its
    job, so the purge deletes them after the usual seven days."""
    jobs = sa.table(
        "job_runs",
        sa.column("task", sa.String),
        sa.column("subject_id", sa.String),
        sa.column("user_id", sa.String),
        sa.column("updated_at", camroll.db.models.UTCDateTime()),
    )
    exports = sa.table(
        "exports",
        sa.column("id", sa.String),
        sa.column("user_id", sa.String),
        sa.column("created_at", camroll.db.models.UTCDateTime()),
        sa.column("expires_at", camroll.db.models.UTCDateTime()),
        sa.column("blob_key", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(jobs.c.subject_id, jobs.c.user_id, jobs.c.updated_at).where(
            jobs.c.task == "export"
        )
    ).all()
    if rows:
        op.bulk_insert(
            exports,
            [
                {
                    "id": export_id,
                    "user_id": user_id,
                    "created_at": at,
                    "expires_at": at + timedelta(days=7),
                    "blob_key": f"u/{user_id}/exports/{export_id}.zip",
                }
                for export_id, user_id, at in rows
            ],
        )


def downgrade() -> None:
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exports_user_id"))
        batch_op.drop_index(batch_op.f("ix_exports_expires_at"))
    op.drop_table("exports")
