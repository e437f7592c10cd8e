"""Fixtures for the script runtime's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.scripts.helpers import Server, start_server


@pytest.fixture()
def server() -> Iterator[Server]:
    state, httpd = start_server()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
