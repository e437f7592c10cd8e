"""UI sessions are server-side records (issue 13, item 5), on SQLite and PostgreSQL: the
cookie's secret is no token and only its hash is stored; a session ends when signed out, when
its token is revoked, and when it expires — by the server's clock, whatever the browser keeps."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from firehook import errors, model
from firehook.service import sessions, tokens
from firehook.store import schema

ADMIN = model.Token(id="admin", project=None, read_only=False, description=None, created_at="")


def test_a_session_lives_until_sign_out_revocation_or_expiry(services: Any) -> None:
    made = tokens.create(services, ADMIN, {"description": "ui"})
    secret = sessions.start(services, made["token"])
    assert made["token"] not in secret
    assert sessions.principal(services, secret).id == made["id"]
    with services.database.read() as conn:
        stored = conn.execute(sa.select(schema.ui_sessions.c.id_hash)).scalars().all()
    assert stored and secret not in stored  # only a hash of the cookie's secret
    # Sign-out ends it at once; another session of the same token lives on.
    other = sessions.start(services, made["token"])
    sessions.end(services, secret)
    with pytest.raises(errors.Unauthorized):
        sessions.principal(services, secret)
    assert sessions.principal(services, other).id == made["id"]
    # Expiry is the server's: a session past its time opens nothing.
    with services.database.write() as conn:
        conn.execute(schema.ui_sessions.update().values(expires_at="2000-01-01T00:00:00.000000+00:00"))
    with pytest.raises(errors.Unauthorized):
        sessions.principal(services, other)
    # Revoking the token ends its sessions.
    live = sessions.start(services, made["token"])
    tokens.revoke(services, ADMIN, made["id"])
    with pytest.raises(errors.Unauthorized):
        sessions.principal(services, live)
    with pytest.raises(errors.Unauthorized):
        sessions.start(services, made["token"])  # nor can a revoked token sign in
    with pytest.raises(errors.Unauthorized):
        sessions.principal(services, "n0nce." + made["token"])  # the old cookie form opens nothing
