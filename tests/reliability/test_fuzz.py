"""Schemathesis against the ``/openapi.json`` of a live `firehook serve`, every operation, with
an admin token: no answer is a 5xx, and every answer conforms to the schema its operation
declares for it (where it declares one).

Each operation is fuzzed three ways: random path ids, the ids of real resources (so that the
fuzzer reaches past the 404 of an unknown project into the handlers themselves), and invalid
data (schemathesis' negative mode), which must get a 4xx, never a 5xx.

The operations are driven with ``APIOperation.as_strategy`` and Hypothesis directly rather
than through schemathesis' pytest plugin, whose lazy loader (4.32) does not work with pytest 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis import checks as st_checks  # noqa: E402
from schemathesis.specs.openapi import checks as oa_checks  # noqa: E402

from tests import support  # noqa: E402
from tests.receivers import Receiver  # noqa: E402
from tests.reliability.helpers import Api, start_server  # noqa: E402

MAX_EXAMPLES = 12

# The batch endpoint takes NDJSON, declared as a string: send it as text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


class Live:
    server: support.ServerProcess
    token: str
    known: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    receiver = Receiver().start()
    server = start_server(tmp_path_factory.mktemp("fuzz"), env={
        "FIREHOOK_RETRY_SCHEDULE": "0.2", "FIREHOOK_WEBHOOK_TIMEOUT": "2", "FIREHOOK_SCRIPT_TIMEOUT": "2"})
    admin = Api(server.base_url, server.token)
    try:
        admin.ok("POST", "/api/projects", {"id": "fz", "title": "Fuzzed"})
        hook = admin.ok("POST", "/api/projects/fz/integrations",
                        {"type": "webhook", "url": receiver.url("/fz"), "shared_key": "k"})["_embedded"]["entity"]
        admin.ok("POST", f"/api/projects/fz/integrations/{hook['id']}/variables", {"name": "V", "value": "1"})
        accepted = admin.ok("POST", "/api/projects/fz/activities",
                            {"type": "environment.push", "environments": ["main"], "state": "complete"})
        live = Live()
        live.server = server
        live.token = server.token
        live.known = {"project": "fz", "integration": hook["id"], "name": "V",
                      "activity": accepted["_embedded"]["entity"]["id"]}
        yield live
    finally:
        admin.close()
        server.stop()
        receiver.stop()


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    return schemathesis.openapi.from_url(f"{live.server.base_url}/openapi.json", timeout=30)


def _variants(operation: Any, known: dict[str, str]) -> list[tuple[str, Any, dict[str, str] | None]]:
    """Random ids, real ids (so the handlers themselves are reached), and invalid data."""
    names = {p.name for p in operation.path_parameters}
    real = {k: v for k, v in known.items() if k in names}
    out: list[tuple[str, Any, dict[str, str] | None]] = [("positive", GenerationMode.POSITIVE, None)]
    if real and not (operation.method.upper() == "DELETE" and operation.path == "/api/projects/{project}"):
        out.append(("positive, real ids", GenerationMode.POSITIVE, real))
        out.append(("negative, real ids", GenerationMode.NEGATIVE, real))
    elif operation.path_parameters or operation.body or operation.query:
        out.append(("negative", GenerationMode.NEGATIVE, None))
    return out


def test_api_never_answers_5xx_and_keeps_to_its_schema(live: Live, api_schema: Any) -> None:
    failures: list[str] = []
    operations = 0
    calls = 0
    headers = {"Authorization": f"Bearer {live.token}"}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for label, mode, params in _variants(operation, live.known):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)

            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                      phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def check(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(
                    base_url=live.server.base_url, headers=headers,
                    checks=[st_checks.not_a_server_error, oa_checks.response_schema_conformance],
                    timeout=30,
                )

            try:
                check()
            except Exception as exc:  # a FailureGroup names the case and the check
                failures.append(f"{operation.method.upper()} {operation.path} ({label}): {exc}"[:3000])
    assert operations >= 30, operations
    assert calls >= operations * MAX_EXAMPLES
    assert not failures, "\n\n".join(failures)


def test_server_survived_the_fuzzing(live: Live) -> None:
    admin = Api(live.server.base_url, live.token)
    try:
        assert admin.get("/healthz").json() == {"status": "ok", "database": "ok"}
        assert admin.get("/api/projects").status_code == 200
    finally:
        admin.close()
    log = Path(live.server.log_path).read_text(errors="replace")
    assert "event=api.unexpected_error" not in log, log[-4000:]
