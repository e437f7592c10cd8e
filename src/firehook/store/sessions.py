"""UI sign-in sessions: only a SHA-256 hash of each cookie's secret is stored."""

from __future__ import annotations

import sqlalchemy as sa

from firehook import model
from firehook.store import tokens as token_store
from firehook.store.schema import tokens, ui_sessions

S = ui_sessions.c
T = tokens.c


def insert(conn: sa.Connection, secret: str, token_id: str, now: str, expires_at: str) -> None:
    conn.execute(ui_sessions.insert().values(id_hash=token_store.hash_secret(secret), token_id=token_id,
                                             created_at=now, expires_at=expires_at))


def token_of(conn: sa.Connection, secret: str, now: str) -> model.Token | None:
    """The token of a live session: not expired, and its token not revoked."""
    row = conn.execute(
        sa.select(tokens).join(ui_sessions, S.token_id == T.id)
        .where(S.id_hash == token_store.hash_secret(secret), S.expires_at > now, T.revoked_at.is_(None))
    ).mappings().first()
    return token_store.model_of(row) if row else None


def delete(conn: sa.Connection, secret: str) -> None:
    conn.execute(ui_sessions.delete().where(S.id_hash == token_store.hash_secret(secret)))


def delete_for_token(conn: sa.Connection, token_id: str) -> None:
    conn.execute(ui_sessions.delete().where(S.token_id == token_id))


def delete_expired(conn: sa.Connection, now: str) -> None:
    conn.execute(ui_sessions.delete().where(S.expires_at <= now))
