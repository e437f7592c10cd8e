"""UI sign-in sessions (server-side records): started by signing in with a token, ended by
signing out, by revoking the token, or when they expire — the server decides, not the browser.

The cookie carries a random session secret that is no token: holding an API token does not
let anyone mint a session cookie, and a cookie captured before sign-out opens nothing after.
"""

from __future__ import annotations

import datetime as dt
import secrets

from firehook import errors, model, timefmt
from firehook.service import tokens as token_service
from firehook.service.core import Services
from firehook.store import sessions as store

MAX_AGE = 12 * 3600  # seconds a session lasts after sign-in


def start(services: Services, token_secret: str) -> str:
    """Sign in with ``token_secret``: a new session's secret (the cookie's value), or Unauthorized."""
    secret = "fs_" + secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.timezone.utc)
    with services.database.write() as conn:
        token = token_service.authenticate_on(conn, "Bearer " + token_secret)
        store.delete_expired(conn, timefmt.format_ts(now))
        store.insert(conn, secret, token.id, timefmt.format_ts(now),
                     timefmt.format_ts(now + dt.timedelta(seconds=MAX_AGE)))
    return secret


def principal(services: Services, secret: str) -> model.Token:
    """The token of the live session ``secret``, or Unauthorized."""
    if not secret:
        raise errors.Unauthorized("not signed in")
    with services.database.read() as conn:
        token = store.token_of(conn, secret, timefmt.now_ts())
    if token is None:
        raise errors.Unauthorized("the session has ended: sign in again")
    return token


def end(services: Services, secret: str) -> None:
    """Sign out: the session opens nothing from now on."""
    if secret:
        with services.database.write() as conn:
            store.delete(conn, secret)
