"""the claim walks an index; parked retries; lz4 for documents on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:50:00
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("firehook.migrations")

# The document columns: two copies of every activity (its object and the snapshot of each
# state), most of what PostgreSQL compresses. lz4 costs a fraction of pglz's CPU per write.
_DOCUMENTS = (("activities", "doc"), ("snapshots", "body"))
_READY = sa.text("NOT parked")
_PARKED = sa.text("parked")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Jobs already waiting for a later attempt leave the claim index like those retry_at parks.
    op.execute(sa.text("UPDATE jobs SET parked = true WHERE run_at > :now").bindparams(now=time.time()))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        # (kind, run_at) let the planner pick every due job and sort them; (fair_tag, pk)
        # walked all kinds and every parked job. The partial indexes below replace both.
        batch_op.drop_index("ix_jobs_ready")
        batch_op.drop_index("ix_jobs_fair")
        batch_op.create_index("ix_jobs_claim", ["kind", "fair_tag", "pk"], unique=False,
                              sqlite_where=_READY, postgresql_where=_READY)
        batch_op.create_index("ix_jobs_head", ["fair_tag"], unique=False,
                              sqlite_where=_READY, postgresql_where=_READY)
        batch_op.create_index("ix_jobs_wake", ["run_at"], unique=False,
                              sqlite_where=_PARKED, postgresql_where=_PARKED)
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("default")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_wake")
        batch_op.drop_index("ix_jobs_head")
        batch_op.drop_index("ix_jobs_claim")
        batch_op.create_index("ix_jobs_fair", ["fair_tag", "pk"], unique=False)
        batch_op.create_index("ix_jobs_ready", ["kind", "run_at"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("parked")


def _lz4_available(bind: sa.Connection) -> bool:
    # PostgreSQL 14 added per-column compression; lz4 is there only when the server was built
    # with it, which its setting's allowed values say (no row at all before 14).
    found = bind.execute(sa.text(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")).scalar()
    return bool(found)


def _set_compression(method: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _lz4_available(bind):
        return
    for table, column in _DOCUMENTS:
        try:
            # In a savepoint: a server that refuses (a managed service, a permission) leaves
            # the migration's transaction usable, and the column keeps pglz.
            with bind.begin_nested():
                bind.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}"))
        except sa.exc.DBAPIError as exc:
            log.warning("event=migration.compression table=%s column=%s result=skipped reason=%s",
                        table, column, str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__)
