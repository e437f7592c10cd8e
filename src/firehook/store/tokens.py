"""API tokens: only a SHA-256 hash of each secret is stored."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

from firehook import model
from firehook.store import raw
from firehook.store.schema import tokens

T = tokens.c


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def model_of(row: Any) -> model.Token:
    return model.Token(id=row["id"], project=row["project_id"], read_only=bool(row["read_only"]),
                       description=row["description"], created_at=row["created_at"],
                       revoked=row["revoked_at"] is not None)


def insert(conn: sa.Connection, token: model.Token, secret: str) -> None:
    conn.execute(tokens.insert().values(
        id=token.id, token_hash=hash_secret(secret), project_id=token.project, read_only=token.read_only,
        description=token.description, created_at=token.created_at,
    ))


def find_by_secret(conn: sa.Connection, secret: str) -> model.Token | None:
    token_hash = hash_secret(secret)
    return find_by_hash(conn, [token_hash]).get(token_hash)


_CHUNK = 500  # hashes per IN (…) list, far below either database's limit on parameters


def find_by_hash(conn: sa.Connection, hashes: list[str]) -> dict[str, model.Token]:
    """The active (unrevoked) tokens among ``hashes``, by hash: one statement per 500 hashes,
    on the DB-API (intake checks the tokens of a whole group with it)."""
    cur = raw.cursor(conn)
    out: dict[str, model.Token] = {}
    unique = list(dict.fromkeys(hashes))
    for start in range(0, len(unique), _CHUNK):
        part = unique[start:start + _CHUNK]
        among, params = raw.among(cur.dialect, "token_hash", part, "text")
        rows = cur.execute(
            "SELECT token_hash, id, project_id, read_only, description, created_at FROM tokens "
            f"WHERE {among} AND revoked_at IS NULL", params).fetchall()
        for token_hash, token_id, project_id, read_only, description, created_at in rows:
            out[token_hash] = model.Token(id=token_id, project=project_id, read_only=bool(read_only),
                                          description=description, created_at=created_at)
    return out


# Any constant of PostgreSQL's advisory-lock space that firehook uses for nothing else.
_BOOTSTRAP_LOCK = 0x66686B01


def lock_bootstrap(conn: sa.Connection) -> None:
    """Until the caller's write transaction ends, no other process runs the first start's
    check-then-create of the admin token (two ``serve`` starting at once on one empty database
    made two). SQLite's write transactions already exclude each other; PostgreSQL takes a
    transaction-level advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK)))


def count_active(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(tokens).where(T.revoked_at.is_(None))).scalar_one())


def list_active(conn: sa.Connection, project: str | None = None) -> list[model.Token]:
    query = sa.select(tokens).where(T.revoked_at.is_(None)).order_by(T.created_at)
    if project is not None:
        query = query.where(T.project_id == project)
    return [model_of(r) for r in conn.execute(query).mappings()]


def revoke(conn: sa.Connection, token_id: str, now: str) -> bool:
    result = conn.execute(tokens.update().where(T.id == token_id, T.revoked_at.is_(None)).values(revoked_at=now))
    return result.rowcount > 0


def get(conn: sa.Connection, token_id: str) -> model.Token | None:
    row = conn.execute(sa.select(tokens).where(T.id == token_id)).mappings().first()
    return model_of(row) if row else None


def revoke_for_project(conn: sa.Connection, project_id: str, now: str) -> int:
    """Revoke every token limited to ``project_id`` (the project is being deleted)."""
    return conn.execute(
        tokens.update().where(T.project_id == project_id, T.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount
