"""The host functions of a run, driven directly (no engine, no network: dry fetch)."""

from __future__ import annotations

import json

from firehook.scripts.host import HostSession
from firehook.scripts.limits import RunLog, ScriptLimits
from firehook.scripts.storage import MemoryStorage


def _session(**overrides: object) -> tuple[HostSession, list[str], MemoryStorage]:
    lines: list[str] = []
    store = MemoryStorage()
    limits = overrides.pop("limits", ScriptLimits(fetch_limit=2))
    session = HostSession(
        source="console.log(1)",
        activity_json='{"type":"x","t":"✓😀"}',
        project={"id": "p"},
        variables={"v": 1},
        storage=store,
        script_limits=limits,  # type: ignore[arg-type]
        log=RunLog(lines.append, 1000),
        dry_fetch=True,
    )
    return session, lines, store


def test_input_carries_lengths_in_utf16_units() -> None:
    session, _, _ = _session()
    text = session.dispatch("input", "")
    header, rest = text.split("\n", 1)
    context_len, activity_len = (int(n) for n in header.split(","))
    utf16 = rest.encode("utf-16-le")
    context = utf16[: context_len * 2].decode("utf-16-le")
    activity = utf16[context_len * 2 : (context_len + activity_len) * 2].decode("utf-16-le")
    source = utf16[(context_len + activity_len) * 2 :].decode("utf-16-le")
    assert json.loads(context)["project"] == {"id": "p"}
    assert json.loads(context)["variables"] == {"v": 1}
    assert len(json.loads(context)["seed"]) == 4
    assert json.loads(activity) == {"type": "x", "t": "✓😀"}
    assert source == "console.log(1)"


def test_storage_operations_answer_envelopes() -> None:
    session, _, store = _session()
    assert session.dispatch("storage.set", json.dumps(["k", "3"])) == '{"v":null}'
    assert json.loads(session.dispatch("storage.get", "k")) == {"v": "3"}
    assert json.loads(session.dispatch("storage.get", "missing")) == {"v": None}
    bad = json.loads(session.dispatch("storage.set", json.dumps(["k", '{"a":1}'])))
    assert bad["e"][0] == "TypeError" and "JSON.stringify" in bad["e"][1]
    assert store.items() == {"k": "3"}


def test_unknown_operations_and_bad_arguments_never_raise() -> None:
    session, _, _ = _session()
    assert json.loads(session.dispatch("nope", ""))["e"][0] == "Error"
    assert json.loads(session.dispatch("storage.set", "not json"))["e"][0] == "TypeError"
    assert json.loads(session.dispatch("hmac", "[1]"))["e"][0] == "TypeError"
    assert json.loads(session.dispatch(42, None))["e"][0] == "Error"


def test_fetch_limit_ends_the_run_and_later_calls_are_refused() -> None:
    session, lines, _ = _session()
    request = json.dumps(
        {
            "url": "https://x.test/",
            "method": "GET",
            "redirect": "follow",
            "headers": [],
            "body": None,
        }
    )
    assert json.loads(session.dispatch("fetch", request))["v"]["status"] == 200
    assert json.loads(session.dispatch("fetch", request))["v"]["body"] == "{}"
    assert not session.should_interrupt()
    third = json.loads(session.dispatch("fetch", request))
    assert third["e"] == ["Error", "fetch limit of 2 calls per run exceeded"]
    assert session.abort is not None and session.abort.limit == "fetch_limit"
    assert session.should_interrupt()
    assert "e" in json.loads(session.dispatch("storage.get", "k"))
    assert lines[0] == "HTTP request: GET https://x.test/"


def test_log_reports_when_the_log_is_cut_and_replaces_lone_surrogates() -> None:
    lines: list[str] = []
    session = HostSession(
        source="",
        activity_json="{}",
        project={},
        variables={},
        storage=MemoryStorage(),
        script_limits=ScriptLimits(),
        log=RunLog(lines.append, 5),
    )
    assert session.dispatch("log", "a\ud800") != "cut"
    assert session.dispatch("log", "123456") == "cut"
    assert lines[0] == "a?"


def test_a_failing_backend_is_reported_as_firehooks_fault() -> None:
    class Broken(MemoryStorage):
        def get(self, key: str) -> str | None:
            raise ConnectionError("database is gone")

    lines: list[str] = []
    session = HostSession(
        source="",
        activity_json="{}",
        project={},
        variables={},
        storage=Broken(),
        script_limits=ScriptLimits(),
        log=RunLog(lines.append, 1000),
    )
    answer = json.loads(session.dispatch("storage.get", "k"))
    assert answer == {"e": ["Error", "internal error in firehook while handling storage.get"]}
    assert lines == ["Internal error in firehook while handling storage.get: ConnectionError"]
    assert isinstance(session.internal_error, ConnectionError)
