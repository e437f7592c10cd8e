"""The schema, as SQLAlchemy Core tables. Migrations in ``migrations/`` create and change it."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL wants BIGINT for big queues.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.String(40)  # timefmt's one format; sorts as text

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),  # the project object scripts see, JSON
    sa.Column("relay_key", sa.Text),  # never returned
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
)

integrations = sa.Table(
    "integrations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("config", sa.Text, nullable=False),  # JSON of the non-secret fields
    sa.Column("shared_key", sa.Text),
    sa.Column("previous_shared_key", sa.Text),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.Index("ix_integrations_project", "project_id", "created_at"),
)

variables = sa.Table(
    "variables",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column(
        "integration_id", sa.String(64), sa.ForeignKey("integrations.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("is_json", sa.Boolean, nullable=False),
    sa.Column("is_sensitive", sa.Boolean, nullable=False),
    sa.Column("attributes", sa.Text, nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.UniqueConstraint("integration_id", "name", name="uq_variables_name"),
)

activities = sa.Table(
    "activities",
    metadata,
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("result", sa.String(16)),
    sa.Column("environments", sa.Text, nullable=False),  # JSON list, for filtering
    sa.Column("integration_id", sa.String(64)),  # runs only; no FK: runs outlive their integration
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.UniqueConstraint("project_id", "id", name="uq_activities_id"),
    sa.Index("ix_activities_project", "project_id", "pk"),
    sa.Index("ix_activities_integration", "integration_id", "pk"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("activity_pk", BigId, sa.ForeignKey("activities.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    # The exact JSON scripts and webhooks get. NULL: the same text as the activity's current
    # ``doc`` (a document is stored once while it has not changed since this state); written
    # out, in the transaction that changes the activity's document, before it changes. A
    # snapshot any run delivers always holds its body (the worker reads it alone).
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("reached_at", Stamp, nullable=False),
    sa.UniqueConstraint("activity_pk", "state", name="uq_snapshots_state"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("pk", BigId, sa.ForeignKey("activities.pk", ondelete="CASCADE"), primary_key=True),
    sa.Column("integration_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("snapshot_pk", BigId, sa.ForeignKey("snapshots.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("source_pk", BigId, sa.ForeignKey("activities.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("queued_at", sa.Float, nullable=False),  # epoch seconds, for the `wait` timing
    sa.Column("started_at", sa.Float),
    sa.Column("finished", sa.Boolean, nullable=False, default=False),
    sa.Index("ix_runs_source", "source_pk"),
)

# The predicates of the jobs' partial indexes; the queries in store/jobs.py repeat them word
# for word (SQLite uses a partial index only when the query's WHERE contains its predicate).
_ready = sa.text("NOT parked")
_parked = sa.text("parked")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_pk", BigId, sa.ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False, unique=True),
    sa.Column("project_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ordering_key", sa.String(300), nullable=False),
    sa.Column("run_at", sa.Float, nullable=False),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_expires_at", sa.Float),
    # Fair-queueing tag: claims go in tag order, and a project's consecutive jobs get
    # consecutive tags starting at the queue's head, so projects interleave (queue.py).
    sa.Column("fair_tag", sa.BigInteger, nullable=False, server_default="0"),
    # Waiting for a later attempt (run_at in the future): out of the claim and head indexes,
    # so a backlog of retries with old tags is not walked past by every claim (store/jobs.py).
    sa.Column("parked", sa.Boolean, nullable=False, server_default=sa.false()),
    # The claim walks this in claim order for one kind and stops after its limit.
    sa.Index("ix_jobs_claim", "kind", "fair_tag", "pk", sqlite_where=_ready, postgresql_where=_ready),
    # The queue's head (lowest tag of the jobs due) for the fair clock: one index step.
    sa.Index("ix_jobs_head", "fair_tag", sqlite_where=_ready, postgresql_where=_ready),
    # The parked jobs by due time, woken at the start of a claim.
    sa.Index("ix_jobs_wake", "run_at", sqlite_where=_parked, postgresql_where=_parked),
    # Is there an earlier job of this ordering key: one probe per row the claim walks.
    sa.Index("ix_jobs_order", "ordering_key", "pk"),
)

# The worker whose turn it is to run an integration's scripts (runs of one script integration
# never overlap): held while that worker holds any run of it, expiring like a job's lease.
integration_leases = sa.Table(
    "integration_leases",
    metadata,
    sa.Column("integration_id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

project_clocks = sa.Table(
    "project_clocks",
    metadata,
    sa.Column("project_id", sa.String(64), primary_key=True),
    sa.Column("last_tag", sa.BigInteger, nullable=False),
)

run_logs = sa.Table(
    "run_logs",
    metadata,
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_pk", BigId, sa.ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("timestamp", Stamp, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_run_logs_run", "run_pk", "n"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("pk", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_pk", BigId, sa.ForeignKey("runs.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("started_at", Stamp, nullable=False),
    sa.Column("duration_ms", sa.Float, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("response", sa.Text),
    sa.Column("error", sa.Text),
    sa.Index("ix_attempts_run", "run_pk", "number"),
)

script_storage = sa.Table(
    "script_storage",
    metadata,
    sa.Column(
        "integration_id", sa.String(64), sa.ForeignKey("integrations.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON encoding of a typed value
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("project_id", sa.String(64)),
    sa.Column("read_only", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("revoked_at", Stamp),
)

# UI sign-in sessions: only a hash of the cookie's secret is kept; a session opens pages while
# it has not expired and its token is not revoked (SPEC §8, the UI).
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(64), sa.ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("expires_at", Stamp, nullable=False),
    sa.Index("ix_ui_sessions_token", "token_id"),
)
