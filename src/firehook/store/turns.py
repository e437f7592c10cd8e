"""The SQL of integration turns (:mod:`firehook.turns`): one lease row per script integration
that a worker is running, on the DB-API of the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from firehook.store import raw

# Taken when free, expired, or already ours (then extended); RETURNING says which were taken.
_TAKE_CONFLICT = (
    " ON CONFLICT (integration_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at"
    " WHERE integration_leases.owner = excluded.owner OR integration_leases.expires_at < ?"
    " RETURNING integration_id"
)


def integrations_of(conn: sa.Connection, run_pks: Collection[int]) -> dict[int, str]:
    """The integration of each run."""
    if not run_pks:
        return {}
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "pk", sorted(run_pks), "bigint")
    cur.execute(f"SELECT pk, integration_id FROM runs WHERE {among}", params)
    return {int(pk): str(integration) for pk, integration in cur.fetchall()}


def take(conn: sa.Connection, owner: str, integration_ids: Sequence[str], now: float, until: float) -> set[str]:
    """Take (or extend) the leases of ``integration_ids`` that nobody else holds; returns them."""
    if not integration_ids:
        return set()
    values = ", ".join(["(?, ?, ?)"] * len(integration_ids))  # one statement for the claim round
    params = [v for integration_id in integration_ids for v in (integration_id, owner, until)]
    cur = raw.cursor(conn).execute(
        f"INSERT INTO integration_leases (integration_id, owner, expires_at) VALUES {values}" + _TAKE_CONFLICT,
        (*params, now))
    return {str(row[0]) for row in cur.fetchall()}


def give_back(conn: sa.Connection, owner: str, integration_ids: Collection[str]) -> None:
    if not integration_ids:
        return
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "integration_id", sorted(integration_ids), "text")
    cur.execute(f"DELETE FROM integration_leases WHERE owner = ? AND {among}", (owner, *params))


def renew(conn: sa.Connection, owner: str, integration_ids: Collection[str], until: float) -> set[str]:
    """Extend ``owner``'s leases of ``integration_ids``; returns those it still held."""
    if not integration_ids:
        return set()
    cur = raw.cursor(conn)
    among, params = raw.among(cur.dialect, "integration_id", sorted(integration_ids), "text")
    cur.execute(f"UPDATE integration_leases SET expires_at = ? WHERE owner = ? AND {among} RETURNING integration_id",
                (until, owner, *params))
    return {str(row[0]) for row in cur.fetchall()}


def give_back_all(conn: sa.Connection, owner: str) -> None:
    raw.cursor(conn).execute("DELETE FROM integration_leases WHERE owner = ?", (owner,))
