"""Issue 14, on a terminal: the installed ``firehook`` in a real pseudo-terminal (Python's
``pty``) against a real ``firehook serve`` — Upsun's questions of ``integration:add``, the
numbered choice of an integration, and confirmations typed by a person."""

from __future__ import annotations

import os
import pty
import select
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import support
from tests.acceptance.test_cli import Cli, created_id

WAIT = 30.0  # a bound for a failing test, never a condition for a passing one


class Terminal:
    """``firehook ARGS`` with a pseudo-terminal as its stdin, stdout and stderr."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.execve(support.firehook_command()[0], ["firehook", *args], {**env, "TERM": "dumb", "COLUMNS": "200"})
        self.seen = ""

    def expect(self, text: str) -> str:
        """Read until ``text`` has appeared; everything read so far."""
        deadline = time.monotonic() + WAIT
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen in:\n{self.seen}"
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child ended: EIO on Linux
                    chunk = b""
                assert chunk, f"the command ended before {text!r}:\n{self.seen}"
                self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return self.seen

    def answer(self, prompt: str, line: str) -> None:
        self.expect(prompt)
        self.seen = self.seen[self.seen.index(prompt) + len(prompt):]  # the next prompt is a new one
        os.write(self.fd, line.encode() + b"\n")

    def finish(self) -> tuple[int, str]:
        """The exit code and the rest of the output."""
        while True:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status), self.seen


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[support.ServerProcess]:
    yield from support.running_server(tmp_path_factory.mktemp("cli-terminal"),
                                      env={"FIREHOOK_OUTBOUND_ALLOW": "127.0.0.1/32,localhost"})


@pytest.fixture(scope="module")
def fh(server: support.ServerProcess) -> Cli:
    return Cli(server)


def terminal(fh: Cli, *args: str) -> Terminal:
    return Terminal(fh.env, *args)


def integration(server: support.ServerProcess, project: str, ident: str) -> dict[str, object]:
    answer = httpx.get(f"{server.base_url}/api/projects/{project}/integrations/{ident}",
                       headers={"Authorization": f"Bearer {server.token}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_integration_add_asks_upsuns_questions(fh: Cli, server: support.ServerProcess, tmp_path: Path) -> None:
    fh("project:create", "--id", "asked", "--title", "Asked")
    term = terminal(fh, "integration:add", "-p", "asked")
    term.answer("* Integration type (--type)\nEnter a number to choose: \n  [0] script\n  [1] webhook\n> ", "7")
    term.answer('Value "7" is invalid\n', "1")  # wrong, asked again; then by number
    term.answer("* URL (--url)\nThe URL or API endpoint for the integration\n> ", "not a url")
    term.answer("Invalid URL: not a url\n", "http://127.0.0.1:9/asked")
    term.answer("Shared key (--shared-key)\n"
                "Optionally, enter a JWS shared secret key, for validating webhook requests\n> ", "")
    term.answer("Events (--events)\nA list of events to act on, e.g. environment.push\nDefault: *\n"
                "Enter comma-separated values (or leave this blank)\n> ", "environment.push, environment.deploy")
    term.answer("States (--states)\nA list of states to act on, e.g. pending, in_progress, complete\n"
                "Default: complete\nEnter comma-separated values (or leave this blank)\n> ", "")
    term.answer("Included environments (--environments)\nThe environment IDs to include\nDefault: *\n"
                "Enter comma-separated values (or leave this blank)\n> ", "main staging")
    term.answer("Excluded environments (--excluded-environments)\nThe environment IDs to exclude\n"
                "Enter comma-separated values (or leave this blank)\n> ", "")
    code, rest = term.finish()
    assert code == 0, rest
    made = integration(server, "asked", created_id(rest, "webhook"))
    assert made["url"] == "http://127.0.0.1:9/asked" and made["shared_key"] is None
    assert made["events"] == ["environment.push", "environment.deploy"] and made["states"] == ["complete"]
    assert made["environments"] == ["main", "staging"] and made["excluded_environments"] == []

    # What the options give is not asked; a script's questions are the script's.
    script = tmp_path / "asked.js"
    script.write_text("console.log('asked');")
    term = terminal(fh, "integration:add", "--type", "script", "--states", "*", "-p", "asked")
    term.answer("* Script file (--file)\nThe name of a local file that contains the script to upload\n> ",
                str(tmp_path / "missing.js"))
    term.answer(f"The script file does not exist: {tmp_path / 'missing.js'}\n", str(script))
    term.answer("Events (--events)", "")
    term.answer("Included environments (--environments)", "")
    code, rest = term.finish()
    assert code == 0, rest
    assert "States (--states)" not in rest and "Excluded environments" not in rest
    made = integration(server, "asked", created_id(rest, "script"))
    assert made["script"] == "console.log('asked');" and made["events"] == ["*"] and made["states"] == ["*"]


def test_choose_an_integration_and_confirm_on_a_terminal(fh: Cli, server: support.ServerProcess,
                                                         tmp_path: Path) -> None:
    fh("project:create", "--id", "chosen", "--title", "Chosen")
    script = tmp_path / "chosen.js"
    script.write_text("console.log('chosen');")
    first = created_id(fh("integration:add", "--type", "script", "--file", str(script), "-p", "chosen").stderr,
                       "script")
    second = created_id(fh("integration:add", "--type", "webhook", "--url", "http://127.0.0.1:9/c",
                           "-p", "chosen").stderr, "webhook")
    choice = f"Enter a number to choose an integration:\n  [0] {first} (script)\n  [1] {second} (webhook)\n > "
    term = terminal(fh, "integration:get", "-P", "type", "-p", "chosen")
    term.answer(choice, "1")
    code, rest = term.finish()
    assert code == 0 and rest.strip().endswith("webhook"), rest

    term = terminal(fh, "integration:delete", "-p", "chosen")
    term.answer(choice, "0")
    term.answer(f"Delete the integration {first} (type: script)? [Y/n] ", "n")
    code, rest = term.finish()
    assert code == 1, rest
    integration(server, "chosen", first)  # kept

    term = terminal(fh, "integration:delete", second, "-p", "chosen")
    term.answer(f"Delete the integration {second} (type: webhook)? [Y/n] ", "")  # the default: yes
    code, rest = term.finish()
    assert code == 0 and f"Deleted integration {second}" in rest, rest
    # One integration left: a terminal needs no choice, as Upsun skips a choice of one.
    term = terminal(fh, "integration:get", "-P", "id", "-p", "chosen")
    code, rest = term.finish()
    assert code == 0 and rest.strip() == first, rest
    # -y on a terminal: nothing asked.
    term = terminal(fh, "integration:delete", first, "-y", "-p", "chosen")
    code, rest = term.finish()
    assert code == 0 and f"[Y/n] y\nDeleted integration {first}" in rest, rest
