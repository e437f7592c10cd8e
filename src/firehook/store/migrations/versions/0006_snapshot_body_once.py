"""a snapshot may leave its body to the activity's document while that has not changed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00

``snapshots.body`` becomes nullable: NULL is the activity's current ``doc`` (the newest state's
snapshot of an activity that has not changed since, and that no run delivers), so intake
writes a 20 KB document once instead of twice. Existing rows keep their bodies: nothing is
rewritten, every read returns what it returned before.

On SQLite the column's constraint changes by rebuilding the table (batch mode), which must not
cascade: ``runs`` refer to snapshots, and dropping the old table with foreign keys enforced
would delete them. env.py runs SQLite migrations with ``PRAGMA foreign_keys=OFF``; this one
checks, before it commits, that every reference still holds.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _require_references_unenforced()
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=True)
    _check_references()


def downgrade() -> None:
    _require_references_unenforced()
    # The bodies left to their activity are written out first: the column holds them all again.
    op.execute(sa.text("UPDATE snapshots SET body = (SELECT a.doc FROM activities a "
                       "WHERE a.pk = snapshots.activity_pk) WHERE body IS NULL"))
    with op.batch_alter_table("snapshots", schema=None) as batch_op:
        batch_op.alter_column("body", existing_type=sa.Text(), nullable=False)
    _check_references()


def _require_references_unenforced() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("rebuilding snapshots with foreign keys enforced would delete every run: "
                           "run the migration through firehook (db:upgrade), which turns them off")


def _check_references() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"rebuilding snapshots broke {len(broken)} references (table {broken[0][0]})")
