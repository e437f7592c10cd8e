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
| token | `FIREHOOK_TOKEN`, else `<data dir>/admin.token` (written by the first `firehook serve`) | |
| data directory | `--data-dir DIR` or `FIREHOOK_DATA_DIR` | `~/.local/share/firehook` |
| project | `-p PROJECT` or `FIREHOOK_PROJECT` | |

The integration commands (`integration:*`) follow the Upsun CLI: the same names, options,
messages, table columns and exit codes, so scripts written for `upsun integration:*` work with
`firehook integration:*`. Aliases: `integrations` (`integration:list`) and
`integration:activities` (`integration:activity:list`).

Conventions:

- Values of list options (`--events`, `--states`, `--environments`, `--type`…) split on commas
  and spaces: `--events 'environment.push, environment.deploy'`.
- Every listing takes `--format table|csv|tsv|plain|json` and `--no-header`. `table` is an
  ASCII table, `csv`/`tsv` are RFC 4180 with LF line ends, `plain` is tab-separated lines, and
  `json` prints the server's objects as they are.
- Messages for people go to stderr; the data goes to stdout, so `--format csv > file` and
  `$(firehook token:create)` hold only the data.
- An error prints `Error: …` with what to do next (start the server, create the project, fix
  the token…), never a traceback; `firehook -v …` shows the traceback.
- Slow things show progress on a terminal: following a run's log, replaying several
  activities, sending a batch of activities.

Exit codes:

| code | meaning |
|---|---|
| 0 | success |
| 1 | an error (the message says what to do); also Upsun's "nothing found" for an empty listing |
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
