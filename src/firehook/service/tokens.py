"""API tokens: authenticate, create, list, revoke; the admin token of a fresh install."""

from __future__ import annotations

import os
import secrets
import threading
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from firehook import errors, ids, model, timefmt
from firehook.service.core import Services, require_admin
from firehook.settings import ADMIN_TOKEN_FILE
from firehook.store import db as dbmod
from firehook.store import projects as project_store
from firehook.store import sessions as session_store
from firehook.store import tokens as store

PREFIX = "fh_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def bearer_secret(header: str | None) -> str:
    """The secret of an ``Authorization: Bearer …`` header, or Unauthorized saying what is wrong."""
    if not header:
        raise errors.Unauthorized("missing Authorization header: send `Authorization: Bearer <token>`")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise errors.Unauthorized("the Authorization header must be `Bearer <token>`")
    return secret.strip()


def authenticate(services: Services, header: str | None) -> model.Token:
    """The token named by an ``Authorization: Bearer …`` header, or Unauthorized."""
    bearer_secret(header)  # a malformed header is refused before touching the database
    with services.database.read() as conn:
        return authenticate_on(conn, header)


def authenticate_on(conn: sa.Connection, header: str | None) -> model.Token:
    """:func:`authenticate` inside the caller's transaction."""
    token = store.find_by_secret(conn, bearer_secret(header))
    if token is None:
        raise invalid_token()
    return token


def invalid_token() -> errors.Unauthorized:
    return errors.Unauthorized("invalid or revoked token")


def header_hash(header: str | None) -> str:
    """The stored hash of a bearer header's secret, or Unauthorized saying what is wrong."""
    return store.hash_secret(bearer_secret(header))


class TokenCache:
    """This process's tokens by the hash of their secret, for intake: a hit costs no SQL.

    Revocation stays immediate: revoking in this process drops the entry, and the intake
    writer checks the tokens of its whole group again, with one statement, in the transaction
    that stores the group — a token revoked by another process is refused at commit, and
    dropped from here then. Misses are not remembered (a guessed secret costs a query, as
    without a cache), and the size is bounded so no client can grow it without limit.
    """

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._by_hash: dict[str, model.Token] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> model.Token | None:
        return self._by_hash.get(token_hash)

    def put(self, token_hash: str, token: model.Token) -> None:
        with self._lock:
            if len(self._by_hash) >= self.MAX_ENTRIES:
                self._by_hash.pop(next(iter(self._by_hash)))  # the oldest entry
            self._by_hash[token_hash] = token

    def drop(self, token_hash: str) -> None:
        with self._lock:
            self._by_hash.pop(token_hash, None)

    def drop_id(self, token_id: str) -> None:
        with self._lock:
            for token_hash in [h for h, t in self._by_hash.items() if t.id == token_id]:
                del self._by_hash[token_hash]


_caches: weakref.WeakKeyDictionary[dbmod.Database, TokenCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def cache_of(services: Services) -> TokenCache:
    """The token cache of this process for ``services``' database."""
    cache = _caches.get(services.database)
    if cache is None:
        with _caches_lock:
            cache = _caches.setdefault(services.database, TokenCache())
    return cache


def authenticate_hash(services: Services, token_hash: str) -> model.Token:
    """The active token of ``token_hash`` — from the cache, or read and cached — or Unauthorized."""
    cache = cache_of(services)
    token = cache.get(token_hash)
    if token is None:
        with services.database.read() as conn:
            token = store.find_by_hash(conn, [token_hash]).get(token_hash)
        if token is None:
            raise invalid_token()
        cache.put(token_hash, token)
    return token


def check_on(services: Services, conn: sa.Connection, hashes: list[str]) -> dict[str, model.Token]:
    """The tokens among ``hashes`` that are still active, read in the caller's (write)
    transaction with one statement; the others are dropped from the cache."""
    if not hashes:
        return {}
    found = store.find_by_hash(conn, hashes)
    cache = cache_of(services)
    for token_hash in hashes:
        if token_hash not in found:
            cache.drop(token_hash)
    return found


def _new_token(project: str | None, read_only: bool, description: str | None) -> tuple[model.Token, str]:
    """A token not stored yet, and its secret."""
    token = model.Token(id=ids.new_id(), project=project, read_only=read_only, description=description,
                        created_at=timefmt.now_ts())
    return token, new_secret()


def _create(services: Services, project: str | None, read_only: bool,
            description: str | None) -> tuple[model.Token, str]:
    token, secret = _new_token(project, read_only, description)
    with services.database.write() as conn:
        if project is not None and not project_store.exists(conn, project):
            raise errors.InvalidInput.field("project", f"project {project} does not exist")
        store.insert(conn, token, secret)
    return token, secret


def create(services: Services, principal: model.Token, body: Any) -> dict[str, Any]:
    require_admin(principal)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise errors.InvalidInput.field("body", "must be a JSON object")
    unknown = set(body) - {"project", "read_only", "description"}
    if unknown:
        name = sorted(unknown)[0]
        raise errors.InvalidInput.field(name, "is not a field of tokens (project, read_only, description)")
    project = body.get("project")
    if project is not None and not isinstance(project, str):
        raise errors.InvalidInput.field("project", "must be a project id")
    read_only = body.get("read_only", False)
    if not isinstance(read_only, bool):
        raise errors.InvalidInput.field("read_only", "must be true or false")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise errors.InvalidInput.field("description", "must be a string")
    token, secret = _create(services, project, read_only, description)
    out = token.public()
    out["token"] = secret
    return out


def list_(services: Services, principal: model.Token) -> list[dict[str, Any]]:
    require_admin(principal)
    with services.database.read() as conn:
        return [t.public() for t in store.list_active(conn)]


def revoke(services: Services, principal: model.Token, token_id: str) -> None:
    require_admin(principal)
    with services.database.write() as conn:
        if not store.revoke(conn, token_id, timefmt.now_ts()):
            raise errors.NotFound(f"token {token_id} not found (or already revoked)")
        session_store.delete_for_token(conn, token_id)  # its UI sessions end with it
    cache_of(services).drop_id(token_id)


def ensure_admin_token(services: Services) -> Path | None:
    """On an empty database, create an admin token and write it, mode 0600, to the data dir.

    Returns the file's path when a token was created. The check and the creation are one
    write transaction, taken in turn by processes starting at once on the same database (one
    of them creates the token, in its own data dir).
    """
    token, secret = _new_token(None, False, "admin token created on first start")
    with services.database.write() as conn:
        store.lock_bootstrap(conn)
        if store.count_active(conn) > 0:
            return None
        store.insert(conn, token, secret)
    path = services.settings.data_path / ADMIN_TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return path
