"""The secrets scan that ends the reliability tier (issue 13): once every other test of the
tier has run (this file's name sorts last), the log of every server the tier started — on
PostgreSQL and on SQLite — is read whole, and must hold none of the secrets the tests planted
(sensitive variable values, shared keys, relay keys), none of the servers' own admin tokens,
and no statement parameters or SQL (what SQLAlchemy appends to a driver error's text).

Run alone, it has nothing to scan and says so; `make test` and `PYTEST_ARGS=tests/reliability`
run it last.
"""

from __future__ import annotations

import pytest

from tests.reliability import test_access
from tests.reliability.helpers import PLANTED, SERVER_LOGS

FORBIDDEN = ("[parameters:", "[SQL:")


def test_no_server_log_of_the_tier_holds_a_secret() -> None:
    if not SERVER_LOGS:
        pytest.skip("no server of the reliability tier ran in this session: run the whole tier")
    kinds = {kind for _, kind in SERVER_LOGS}
    assert "postgres" in kinds, f"no server of the tier ran on PostgreSQL: {kinds}"
    secrets = set(PLANTED) | set(test_access.PLANTS)
    found: list[str] = []
    scanned = 0
    for path, kind in SERVER_LOGS:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        scanned += 1
        admin_token = path.parent / "admin.token"
        own = {admin_token.read_text().strip()} if admin_token.exists() else set()
        for secret in secrets | own:
            if secret and secret in text:
                found.append(f"{path} ({kind}): holds {secret[:6]}…")
        for marker in FORBIDDEN:
            if marker in text:
                found.append(f"{path} ({kind}): holds {marker!r}")
    assert scanned >= 3, scanned
    assert not found, "\n".join(found)
