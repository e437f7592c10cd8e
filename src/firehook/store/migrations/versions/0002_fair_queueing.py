"""fair queueing across projects

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fair_tag", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.create_index("ix_jobs_fair", ["fair_tag", "pk"], unique=False)
    op.create_table(
        "project_clocks",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("last_tag", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id"),
    )


def downgrade() -> None:
    op.drop_table("project_clocks")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_fair")
        batch_op.drop_column("fair_tag")
