"""``docs/cli.md``, generated from the commands' own help so the two never disagree.

Regenerate with::

    .venv/bin/python -m firehook.cli.docs > docs/cli.md
"""

from __future__ import annotations

import click

WIDTH = 100
REGENERATE = ".venv/bin/python -m firehook.cli.docs > docs/cli.md"

INTRO = f"""\
# The `firehook` command line

<!-- Generated from the commands' help by firehook.cli.docs: do not edit by hand.
     Regenerate with: {REGENERATE} -->

`firehook serve`, `worker`, `db:upgrade`, `script:run` and `webhook:verify` run locally. Every
other command talks to a firehook server over HTTP:

| what | how | default |
|---|---|---|
| server | `--server URL` or `FIREHOOK_SERVER` | `http://127.0.0.1:8780` |
| token | `--token TOKEN` or `FIREHOOK_TOKEN`, else `<data dir>/admin.token` (written by the first `firehook serve`) | |
| data directory | `--data-dir DIR` or `FIREHOOK_DATA_DIR` | `~/.local/share/firehook` |
| project | `-p PROJECT` or `FIREHOOK_PROJECT` | |

The integration commands (`integration:*`) follow the Upsun CLI: the same names, options,
messages, questions, table columns and exit codes, so scripts written for `upsun integration:*`
work with `firehook integration:*`. Aliases: `integrations` (`integration:list`),
`integration:activities`, `int:act` and `i:act` (`integration:activity:list`); as in Upsun,
a command name can be abbreviated part by part (`int:get`, `i:a:g`).

Global options, on every command and anywhere on its line (Upsun's `Application.php`):

| option | |
|---|---|
| `-y`, `--yes` | answer "yes" to confirmation questions; disable interaction |
| `-n`, `--no` | answer "no" to confirmation questions; disable interaction (Upsun's `-n` is `--no`) |
| `--no-interaction` | ask nothing, accept default values (also `FIREHOOK_NO_INTERACTION=1`) |
| `-q`, `--quiet` | only print necessary output: the messages on stderr are silenced, the data and errors are not; implies `--no-interaction` |
| `-v`, `-vv`, `-vvv` | increase the verbosity; an error shows its traceback |

`integration:add`, `update` and `delete` also take Upsun's `-W/--no-wait` and `--wait`, which
change nothing: firehook's operations are complete when the server answers.

Interaction, as in Upsun: it is on when standard input is a terminal and none of the options
above turns it off. Without it, a confirmation takes its default and is printed with its
answer (`Delete the integration … (type: script)? [Y/n] y`: `integration:delete` deletes), and
a question without a default fails with Upsun's message and exit code 1 (`--type is required`,
`An integration ID is required.`). On a terminal, `integration:add` asks what its options leave
out with Upsun's questions, and an integration ID left out is chosen from a numbered list
(`Enter a number to choose an integration:`).

Conventions:

- Values of list options (`--events`, `--states`, `--environments`, `--type`…) split on commas
  and spaces: `--events 'environment.push, environment.deploy'`.
- Every listing takes `--format table|csv|tsv|plain|json`, `-c/--columns`, `--no-header` and
  `--date-fmt`. `table` is an ASCII table, `csv`/`tsv` are RFC 4180 with LF line ends, `plain`
  is tab-separated lines, and `json` prints the server's objects as they are. `--columns` takes
  column names in any case, `+` for the default columns (`-c +completed`) and `%` or `*` as
  wildcards (`-c 'time_*'`).
- Dates are shown in the local time zone (`TZ`), in a PHP `date()` format: `--date-fmt`,
  default `c` (`2025-12-14T16:41:05+01:00`), as Upsun shows them; `integration:activity:log -t`
  too. `--start` reads any ISO 8601 date and what people type to PHP's `strtotime`
  (`yesterday`, `-2 hours`, `3 days ago`, `last month`, `yesterday 14:00`, `@1700000000`), in
  the local time zone unless the text has an offset; weekday names (`last monday`) are not read.
- `--type` and `-x/--exclude-type` take Upsun's short forms and wildcards (`script` is
  `integration.script`, `environment.*`); `-i/--incomplete` is `--state in_progress,pending`.
  States are shown as Upsun shows them (`in progress`). `-P` takes dotted paths with list
  indexes (`-P events.0`).
- Messages for people go to stderr; the data goes to stdout, so `--format csv > file` and
  `$(firehook token:create)` hold only the data.
- An error prints `Error: …` with what to do next (start the server, create the project, fix
  the token…), never a traceback; `firehook -v …` shows the traceback.
- Slow things show progress on a terminal: following a run's log, replaying several
  activities, sending a batch of activities.

Where Upsun's behaviour is unknown or does not apply, firehook keeps its own, and says so here:

- Errors are printed as `Error: <message>` (Upsun draws a box around the exception's name);
  Upsun's own refusals (`An integration ID is required.`, `Integration not found: …`) are
  printed as Upsun words them.
- Without a terminal, `integration:activity:list`, `get` and `log` without an integration ID
  use the project's only integration, or the runs of all integrations (Upsun refuses); the
  other commands refuse as Upsun does.
- Following a run's log: a webhook run waiting for an attempt more than a minute away is not
  followed (Upsun has no such waits): the command prints when the next attempt is and ends,
  unless `--follow`.
- The script file's checks (`The script file does not exist: …`) are firehook's words;
  Upsun's are `File not found: …`.
- `DELETE /api/projects/{{p}}/integrations/{{id}}` answers Upsun's accepted body, 202
  `{{"status": "accepted", "code": 202, "_embedded": {{"activities": []}}}}`: the deletion is
  done when it answers, so no activity is pending.

Exit codes:

| code | meaning |
|---|---|
| 0 | success |
| 1 | an error (the message says what to do); also Upsun's "nothing found" for an empty listing, a question without a default and no terminal, a confirmation answered no; `integration:activity:log` of a run whose result is failure (CI fails with the run) |
| 2 | a usage error: a missing or unknown option or argument, no project given |
| 4 | the integration is invalid (`integration:validate`, and `integration:add`/`update` when the server refuses the values, e.g. a script that does not compile) |

Shell completion (bash; add the line to `~/.bashrc` to keep it):

```sh
eval "$(_FIREHOOK_COMPLETE=bash_source firehook)"
```

`firehook completion bash|zsh|fish` prints the same script. Bash treats `:` as a word break,
so completing a name after its colon may need `COMP_WORDBREAKS=${{COMP_WORDBREAKS//:}}`.
"""


def _commands() -> list[tuple[str, click.Command]]:
    from firehook.cli.main import cli

    return sorted(cli.commands.items())


def help_text(name: str) -> str:
    """The ``--help`` of one command, at a fixed width."""
    from firehook.cli.main import cli

    root = click.Context(cli, info_name="firehook", terminal_width=WIDTH, max_content_width=WIDTH)
    command = cli.commands[name]
    ctx = click.Context(command, info_name=name, parent=root, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(ctx)


def render() -> str:
    """The whole of ``docs/cli.md``."""
    parts = [INTRO, "## Commands\n"]
    for name, command in _commands():
        anchor = name.replace(":", "")
        parts.append(f"- [`{name}`](#firehook-{anchor}): {command.get_short_help_str(limit=90)}")
    parts.append("")
    for name, _command in _commands():
        parts.append(f"## `firehook {name}`\n")
        parts.append("```text\n" + help_text(name).rstrip() + "\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
