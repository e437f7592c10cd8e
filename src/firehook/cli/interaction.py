"""The Upsun CLI's global options and its way of asking questions.

Every command takes ``-y/--yes``, ``-n/--no``, ``--no-interaction``, ``-q/--quiet``,
``-v/-vv/-vvv`` (and the hidden ``--ansi``/``--no-ansi``) anywhere on its line, as Upsun's
``Application.php`` defines them:

- ``--yes`` answers yes to confirmations, ``--no`` answers no; both, ``--no-interaction``,
  ``--quiet``, ``FIREHOOK_NO_INTERACTION=1`` and a standard input that is not a terminal turn
  interaction off;
- without interaction a confirmation takes its default (and says so, as Upsun prints the
  question with its answer), a choice or a question without a default fails with Upsun's
  message (exit code 1);
- ``--quiet`` silences the messages for people (stderr), never the data nor an error.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from firehook.cli.client import CliError

NO_INTERACTION_ENV = "FIREHOOK_NO_INTERACTION"
MAX_ATTEMPTS = 5


@dataclasses.dataclass
class State:
    yes: bool = False
    no: bool = False
    no_interaction: bool = False
    quiet: bool = False
    verbosity: int = 0

    @property
    def interactive(self) -> bool:
        if self.yes or self.no or self.no_interaction or self.quiet:
            return False
        if os.environ.get(NO_INTERACTION_ENV, "") not in ("", "0"):
            return False
        return sys.stdin.isatty()


STATE = State()

GLOBAL_OPTIONS: tuple[tuple[Sequence[str], dict[str, Any]], ...] = (
    (("-y", "--yes", "g_yes"), {"is_flag": True,
                                "help": 'Answer "yes" to confirmation questions; accept the default value for '
                                        "other questions; disable interaction."}),
    (("-n", "--no", "g_no"), {"is_flag": True,
                              "help": 'Answer "no" to confirmation questions; accept the default value for '
                                      "other questions; disable interaction."}),
    (("--no-interaction", "g_no_interaction"), {
        "is_flag": True, "help": "Do not ask any interactive questions; accept default values. Equivalent to "
                                 f"the environment variable {NO_INTERACTION_ENV}=1."}),
    (("-q", "--quiet", "g_quiet"), {"is_flag": True,
                                    "help": "Only print necessary output; suppress other messages. This implies "
                                            "--no-interaction."}),
    # Upsun's hidden --ansi/--no-ansi, found in CI scripts: firehook prints no colours anyway.
    (("--ansi", "g_ansi"), {"is_flag": True, "help": "Force ANSI output (firehook: without effect)."}),
    (("--no-ansi", "g_no_ansi"), {"is_flag": True, "help": "Disable ANSI output (firehook: without effect)."}),
    (("-v", "--verbose", "g_verbose"), {"count": True,
                                        "help": "Increase the verbosity of messages (-v, -vv, -vvv); an error "
                                                "shows its traceback."}),
)
GLOBAL_NAMES = tuple(decls[-1] for decls, _ in GLOBAL_OPTIONS)


def add_global_options(command: click.Command) -> None:
    """Give ``command`` the global options (hidden from its own help: ``firehook --help`` and
    docs/cli.md list them once). The values set :data:`STATE` before the command runs."""
    existing = {opt for param in command.params for opt in getattr(param, "opts", ())}
    for decls, attrs in GLOBAL_OPTIONS:
        wanted = [d for d in decls[:-1] if d not in existing]
        command.params.append(click.Option([*wanted, decls[-1]], hidden=True, **attrs))
    callback = command.callback
    if callback is None:  # pragma: no cover - every firehook command has one
        return

    @functools.wraps(callback)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        configure(**{name: kwargs.pop(name) for name in GLOBAL_NAMES})
        return callback(*args, **kwargs)

    command.callback = wrapper


def reset() -> None:
    """A fresh state for one invocation of the command line (tests run several in a process)."""
    global STATE
    STATE = State()


def configure(g_yes: bool = False, g_no: bool = False, g_no_interaction: bool = False, g_quiet: bool = False,
              g_verbose: int = 0, g_ansi: bool = False, g_no_ansi: bool = False) -> None:
    STATE.yes = STATE.yes or g_yes
    STATE.no = STATE.no or g_no
    STATE.no_interaction = STATE.no_interaction or g_no_interaction
    STATE.verbosity = max(STATE.verbosity, g_verbose)
    # As in Upsun, --quiet is ignored in verbose mode.
    STATE.quiet = (STATE.quiet or g_quiet) and STATE.verbosity == 0


def message(text: str = "") -> None:
    """A message for the person (stderr), so stdout stays machine-readable; none with -q."""
    if not STATE.quiet:
        click.echo(text, err=True)


def confirm(question: str, default: bool = True) -> bool:
    """Upsun's confirmation: ``question [Y/n] `` answered by --yes / --no, by the person on a
    terminal, else by its default (printed beside the question, as Upsun prints it)."""
    text = f"{question} {'[Y/n]' if default else '[y/N]'} "
    if STATE.yes and not STATE.no:
        message(text + "y")
        return True
    if STATE.no and not STATE.yes:
        message(text + "n")
        return False
    if not STATE.interactive:
        message(text + ("y" if default else "n"))
        return default
    answer = prompt_line(text).strip().lower()
    # Symfony's ConfirmationQuestion: empty is the default, an answer starting with y is yes,
    # any other is no.
    return default if not answer else answer.startswith("y")


def prompt_line(text: str) -> str:
    """One line typed by the person after ``text`` (on stderr); EOF is an empty answer."""
    click.echo(text, err=True, nl=False)
    line = sys.stdin.readline()
    if not line:
        click.echo("", err=True)
        raise CliError("Aborted: the input ended before an answer was given.")
    return line.rstrip("\r\n")


def ask(text: str, validate: Callable[[str], Any], default: str | None = None) -> Any:
    """Ask ``text`` (a question ending in its prompt) until ``validate`` accepts the answer (it
    raises CliError with the reason otherwise), at most 5 times; an empty answer is
    ``default`` when given."""
    last = CliError("No valid answer given.")
    for _ in range(MAX_ATTEMPTS):
        answer = prompt_line(text)
        if answer == "" and default is not None:
            answer = default
        try:
            return validate(answer)
        except CliError as exc:
            click.echo(exc.message, err=True)
            last = exc
    raise last  # as Symfony's question helper: the last answer's error, once the attempts are spent


def choose(items: Sequence[tuple[str, str]], text: str, prompt: str = " > ") -> str:
    """Upsun's numbered choice: ``text`` then ``  [n] label`` lines from 0 and a `` > `` prompt;
    the answer is a number or a key. Returns the chosen key. Needs a terminal: the caller
    checks :attr:`State.interactive` first."""
    width = len(str(len(items) - 1))
    keys = [key for key, _ in items]

    def pick(answer: str) -> str:
        answer = answer.strip()
        if answer.isdigit() and int(answer) < len(items):
            return keys[int(answer)]
        if answer in keys:
            return answer
        raise CliError(f'Value "{answer}" is invalid')

    lines = [text] + [f"  [{str(n).ljust(width)}] {label}" for n, (_, label) in enumerate(items)]
    click.echo("\n".join(lines), err=True)
    chosen: str = ask(prompt, pick)
    click.echo("", err=True)
    return chosen
