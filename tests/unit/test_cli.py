"""The command line's pure parts: docs/cli.md in step with the help, every command with an
example, output formats, value splitting."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from firehook.cli import common, docs, output
from firehook.cli.main import cli

REPO = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_generated_from_the_help() -> None:
    expected = docs.render()
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == expected, f"docs/cli.md is out of date with the commands' help; regenerate it with: {docs.REGENERATE}"


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"{name} --help has no example"


def test_aliases_resolve_to_the_upsun_commands() -> None:
    for alias, target in (("integrations", "integration:list"), ("integration:activities", "integration:activity:list")):
        result = CliRunner().invoke(cli, [alias, "--help"], prog_name="firehook")
        assert result.exit_code == 0
        assert f"Usage: firehook {target}" in result.output


def test_split_values_on_commas_and_spaces() -> None:
    assert common.split_values(("environment.push, environment.deploy", "a b,,c")) == [
        "environment.push", "environment.deploy", "a", "b", "c"]
    assert common.split_values(None) == []


def test_formats(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [("a1", "script", "Script:\nvar x = 1;"), ("b2", "webhook", "URL: http://x")]
    output.render(rows, ("ID", "Type", "Summary"), output.Format("csv"))
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed == [["ID", "Type", "Summary"], list(rows[0]), list(rows[1])]
    output.render(rows, ("ID", "Type", "Summary"), output.Format("tsv", no_header=True))
    assert capsys.readouterr().out.splitlines()[0] == 'a1\tscript\t"Script:'
    output.render(rows, ("ID", "Type", "Summary"), output.Format("plain"))
    assert capsys.readouterr().out.splitlines() == ["ID\tType\tSummary", "a1\tscript\tScript: var x = 1;",
                                                     "b2\twebhook\tURL: http://x"]
    output.render(rows, ("ID", "Type", "Summary"), output.Format("table"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("+-") and lines[1].split("|")[1].strip() == "ID"
    assert [c.strip() for c in lines[1].split("|")[1:-1]] == ["ID", "Type", "Summary"]


def test_property_values_like_upsun() -> None:
    assert output.format_value(["environment.push", "*"]) == "- environment.push\n- '*'"
    assert output.format_value(True) == "true"
    assert output.format_value(None) == ""
    assert output.format_value("2025-12-14T15:41:05.821145+00:00", "created_at") == "2025-12-14T15:41:05+00:00"
