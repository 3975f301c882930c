"""repair databases migrated with an earlier text of an edited revision (0001-0009)

0001 and 0002 gained tables and columns after they landed, and 0003-0009 were reserved as
empty revisions before they were written. A database made in between is stamped past them
without what they create today. This replays them, creating only what is absent
(camroll/db/edited_revisions.py). On a database made from today's revisions it changes nothing.

Revision ID: 0013
Revises: 0012
"""

from alembic import context, op
from alembic.operations import Operations

from camroll.db.edited_revisions import repair

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    repair(Operations(op.get_context()), context.script, upto="0009")


def downgrade() -> None:
    # What the repair created belongs to the revisions it repaired; their downgrades drop it.
    pass
