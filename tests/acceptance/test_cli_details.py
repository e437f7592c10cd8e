"""The installed ``firehook`` command against a real ``firehook serve``: the CLI details of
issue 15 (exit codes, commands for what the API can do, storage, hints, warnings)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support
from tests.acceptance.test_cli import Cli, created_id, project, runs_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    proc = support.ServerProcess(tmp_path_factory.mktemp("cli-details"),
                                 env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost"})
    proc.wait_ready()
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="module")
def fh(server: support.ServerProcess) -> Cli:
    return Cli(server)


def test_log_of_a_failed_run_shows_its_result_and_exits_1(fh: Cli, tmp_path: Path) -> None:
    p = project(fh, "failing")
    script = tmp_path / "boom.js"
    script.write_text("console.log('about to fail');\nthrow new Error('boom');\n")
    sid = created_id(fh("integration:add", "--type", "script", "--file", str(script), *p).stderr, "script")
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    [run] = runs_of(fh, p, sid)
    assert run["result"] == "failure"
    log = fh("integration:activity:log", sid, *p, ok=False)
    assert log.returncode == 1, log.stderr
    assert "Result: failure" in log.stderr.splitlines()
    assert "about to fail" in log.stdout
    assert "The run failed" in log.stderr
    script.write_text("console.log('fine');\n")
    fh("integration:update", sid, "--file", str(script), *p)
    fh("activity:emit", "--type", "environment.push", "-e", "main", *p)
    runs = runs_of(fh, p, sid, count=2)
    good = fh("integration:activity:log", sid, runs[0]["id"], *p)
    assert "Result: success" in good.stderr.splitlines() and good.stdout == "fine\n"
