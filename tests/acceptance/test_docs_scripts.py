"""docs/scripts.md stays true: each example marked ``<!-- example: FLAGS -->`` is run with the
installed ``firehook script:run`` against the real push fixture, and every line of the output
block that follows it must be in what the run printed (a line ending in … by its beginning)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests import support

DOC = support.REPO / "docs" / "scripts.md"
EXAMPLE = re.compile(r"<!-- example(?:: (?P<flags>[^>]*?))? -->\n```js\n(?P<script>.*?)```\n"
                     r"(?P<between>.*?)```\n(?P<output>.*?)```", re.S)
VARIABLES = {"SLACK_URL": "https://hooks.slack.example/T000", "CONFIG": {"channel": "#deploys"}}


def examples() -> list[tuple[str, str, list[str]]]:
    found = [(m["flags"] or "", m["script"], m["output"].splitlines()) for m in EXAMPLE.finditer(DOC.read_text())]
    assert len(found) >= 12, "the examples of docs/scripts.md are no longer marked"
    return found


EXAMPLES = examples()


@pytest.mark.parametrize(("flags", "script", "expected"), EXAMPLES,
                         ids=[script.splitlines()[0][:40] for _, script, _ in EXAMPLES])
def test_documented_example_prints_what_the_doc_says(tmp_path: Path, flags: str, script: str,
                                                     expected: list[str]) -> None:
    (tmp_path / "example.js").write_text(script)
    (tmp_path / "vars.json").write_text(json.dumps(VARIABLES))
    twice = flags.endswith(", twice")
    args = flags.removesuffix(", twice").split()
    command = [*support.firehook_command(), "script:run", "example.js",
               "--activity", str(support.shared_dir() / "fixtures" / "upsun" / "push-complete.json"), *args]
    printed: list[str] = []
    for _ in range(2 if twice else 1):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        printed.extend(_timeless(line) for line in done.stdout.splitlines())
    for line in map(_timeless, expected):
        if line.strip() in ("…", ""):
            continue
        if line.endswith("…"):
            assert any(p.startswith(line[:-1]) for p in printed), (line, printed)
        else:
            assert line in printed, (line, printed)


_DURATION = re.compile(r"\(\d+ ms\)")


def _timeless(line: str) -> str:
    """A log line with its durations (``(12 ms)``) left out: how long a call took is the
    machine's business, not the document's."""
    return _DURATION.sub("(… ms)", line)
