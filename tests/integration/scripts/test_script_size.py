"""Compile time counts inside a run's deadline, and a script larger than
FIREHOOK_SCRIPT_MAX_BYTES is refused on save with a 400 naming the field and the limit
(issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firehook import assembly, errors, model, scripts, settings
from firehook.scripts import limits
from firehook.service import integrations, projects
from tests.integration.scripts.helpers import run

ADMIN = model.Token(id="a", project=None, read_only=False, description=None, created_at="")
# 200,000 declarations (~4 MB): compiling them takes seconds, far past a 0.3 s limit.
HUGE = "".join(f"var v{i} = {i};\n" for i in range(200_000))


def test_compiling_counts_inside_the_deadline() -> None:
    result = run(HUGE, limits=scripts.ScriptLimits(timeout=0.3, memory_mb=256))
    assert not result.outcome.success
    assert result.outcome.limit == limits.TIMEOUT
    assert result.outcome.error == "time limit of 0.3 s exceeded"
    assert result.lines == ["time limit of 0.3 s exceeded"]


def test_the_default_limit_is_one_mib() -> None:
    assert settings.load({}, environ={}).script_max_bytes == 1024 * 1024
    assert settings.load({}, environ={"FIREHOOK_SCRIPT_MAX_BYTES": "2048"}).script_max_bytes == 2048


@pytest.fixture
def services(tmp_path: Any, database_url: str) -> Iterator[Any]:
    from tests.conftest import make_settings

    built = assembly.services(make_settings(tmp_path, database_url, script_max_bytes=1000),
                              migrate=True)
    projects.create(built, ADMIN, {"id": "p", "title": "P"})
    yield built
    built.database.dispose()


def test_a_script_over_the_limit_is_a_400_on_create_and_update(services: Any) -> None:
    big = "// " + "é" * 499  # 1,001 bytes of UTF-8 (501 characters)
    with pytest.raises(errors.InvalidInput) as caught:
        integrations.create(services, ADMIN, "p", {"type": "script", "script": big})
    assert caught.value.status == 400
    message = "the script is 1001 bytes; the limit is 1000 bytes (FIREHOOK_SCRIPT_MAX_BYTES)"
    assert caught.value.detail == {"script": message}

    fits = "// " + "x" * 997  # exactly 1,000 bytes
    hook = integrations.create(services, ADMIN, "p", {"type": "script", "script": fits})
    with pytest.raises(errors.InvalidInput) as caught:
        integrations.update(services, ADMIN, "p", hook["id"], {"script": big})
    assert caught.value.detail == {"script": message}
