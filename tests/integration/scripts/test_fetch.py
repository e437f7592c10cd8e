"""``fetch`` (SPEC §4.3) against a real loopback HTTP server."""

from __future__ import annotations

import json
import re
import socket

from firehook import scripts
from tests.integration.scripts.helpers import Server, run


def test_get_json_response(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/json')}');"
        "console.log(r.ok, r.status, r.statusText, r.url === variables.url,"
        " r.headers.get('content-type'), r.headers.get('X-CUSTOM'), r.headers.get('missing'));"
        "console.log(r.json().hello, r.body.json().n, r.text() === r.body.text());",
        variables={"url": server.url("/json")},
    )
    assert result.outcome.success, result.log
    assert result.lines[2:] == [
        "true 200 OK true application/json yes null",
        "world 42 true",
    ]
    assert server.requests[0].method == "GET"


def test_each_call_logs_request_and_response_lines(server: Server) -> None:
    result = run(f"fetch('{server.url('/json')}', {{method: 'post', body: 'x'}})")
    assert result.lines[0] == f"HTTP request: POST {server.url('/json')}"
    assert re.fullmatch(r"HTTP response: 200 OK \(\d+ ms\)", result.lines[1])


def test_post_sends_method_headers_and_body(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/echo?q=1')}', {{method: 'POST',"
        " headers: {'Content-Type': 'application/json', 'X-Token': 'abc'},"
        " body: JSON.stringify({a: 1, text: 'héllo'})});"
        "var echo = r.json(); console.log(echo.method, echo.path, echo.headers['x-token'],"
        " echo.headers['content-type'], echo.body)"
    )
    assert result.outcome.success, result.log
    assert result.lines[2] == 'POST /echo?q=1 abc application/json {"a":1,"text":"héllo"}'
    request = server.requests[0]
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert request.headers["user-agent"].startswith("firehook/")
    assert json.loads(request.body) == {"a": 1, "text": "héllo"}


def test_string_body_defaults_to_text_plain_and_headers_as_pairs(server: Server) -> None:
    run(
        f"fetch('{server.url('/echo')}', {{method: 'PUT', body: 'plain',"
        " headers: [['X-A', '1'], ['X-B', '2']]})"
    )
    request = server.requests[0]
    assert request.method == "PUT"
    assert request.headers["content-type"] == "text/plain;charset=UTF-8"
    assert (request.headers["x-a"], request.headers["x-b"]) == ("1", "2")


def test_non_2xx_is_not_ok_and_status_text_is_kept(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/status?code=404&reason=Nope&body=gone')}');"
        "console.log(r.ok, r.status, r.statusText, r.text())"
    )
    assert result.lines[2] == "false 404 Nope gone"
    assert result.lines[1].startswith("HTTP response: 404 Nope (")


def test_repeated_headers_are_joined(server: Server) -> None:
    result = run(f"console.log(fetch('{server.url('/multi')}').headers.get('set-cookie'))")
    assert result.lines[-1] == "a=1, b=2"


def test_text_is_decoded_as_utf8(server: Server) -> None:
    result = run(f"console.log(fetch('{server.url('/utf8')}').text())")
    assert result.lines[-1] == "héllo ✓"


def test_redirects_are_followed_by_default(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/redirect?code=302&to=/json')}');"
        "console.log(r.status, r.redirected, r.url, r.json().hello)"
    )
    assert result.outcome.success, result.log
    assert result.lines[-1] == f"200 true {server.url('/json')} world"
    assert [r.path for r in server.requests] == ["/redirect?code=302&to=/json", "/json"]


def test_303_turns_post_into_get_and_307_keeps_it(server: Server) -> None:
    run(
        f"fetch('{server.url('/redirect?code=303&to=/echo')}', {{method: 'POST', body: 'a'}});"
        f"fetch('{server.url('/redirect?code=307&to=/echo')}', {{method: 'POST', body: 'b'}})"
    )
    methods = [(r.path, r.method, r.body) for r in server.requests]
    assert methods == [
        ("/redirect?code=303&to=/echo", "POST", b"a"),
        ("/echo", "GET", b""),
        ("/redirect?code=307&to=/echo", "POST", b"b"),
        ("/echo", "POST", b"b"),
    ]


def test_redirect_manual_returns_the_redirect(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/redirect?code=301&to=/json')}', {{redirect: 'manual'}});"
        "console.log(r.status, r.headers.get('location'))"
    )
    assert result.lines[-1] == "301 /json"
    assert len(server.requests) == 1


def test_redirect_error_throws_type_error(server: Server) -> None:
    result = run(
        f"try {{ fetch('{server.url('/redirect?to=/json')}', {{redirect: 'error'}}) }}"
        " catch (e) { console.log(e.name, e.message) }"
    )
    assert result.lines[-1] == (
        "TypeError fetch failed: redirect to /json refused: the redirect mode is 'error'"
    )


def test_each_redirect_hop_is_checked_by_the_outbound_guard(server: Server) -> None:
    # The first hop is allowed (127.0.0.1); the redirect goes to localhost over IPv4, which
    # only the allow-list entry "127.0.0.1/32" does not cover when addressed as 127.0.0.2.
    target = f"http://127.0.0.2:{server.port}/json"
    result = run(
        f"try {{ fetch('{server.url('/redirect?to=' + target)}') }}"
        " catch (e) { console.log(e.name, e.message) }",
        allow=("127.0.0.1/32",),
    )
    assert result.lines[-1].startswith(
        "TypeError fetch failed: outbound request to 127.0.0.2 blocked"
    )
    assert len(server.requests) == 1


def test_private_addresses_are_blocked_without_an_allow_list(server: Server) -> None:
    result = run(
        f"try {{ fetch('{server.url('/json')}') }} catch (e) {{ console.log(e.name, e.message) }}",
        allow=(),
    )
    assert result.outcome.success
    message = result.lines[-1]
    assert message.startswith("TypeError fetch failed: outbound request to 127.0.0.1 blocked")
    assert "FIREHOOK_OUTBOUND_ALLOW" in message
    assert server.requests == []


def test_network_error_is_a_type_error_with_the_reason() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: connection refused.
    result = run(
        f"try {{ fetch('http://127.0.0.1:{port}/') }} catch (e) {{ console.log(e.name, e.message) }}"
    )
    assert result.outcome.success
    assert result.lines[-1].startswith("TypeError fetch failed: cannot connect to 127.0.0.1")
    assert result.lines[1].startswith("HTTP error: cannot connect to 127.0.0.1")


def test_uncaught_network_error_fails_the_run_with_its_position() -> None:
    result = run("\n\nfetch('http://127.0.0.1:9/')")
    assert not result.outcome.success
    assert re.fullmatch(
        r"TypeError: fetch failed: cannot connect to 127\.0\.0\.1.* \(line 3, column \d+\)",
        result.outcome.error or "",
    )
    assert result.lines[-1] == result.outcome.error


def test_invalid_urls_and_schemes_throw_type_error() -> None:
    result = run(
        "['ftp://example.com/', 'not a url', 'file:///etc/passwd', 'http://user:pw@127.0.0.1/']"
        ".forEach(function (u) { try { fetch(u) } catch (e) { console.log(e.name) } })"
    )
    assert [line for line in result.lines if not line.startswith("HTTP")] == ["TypeError"] * 4


def test_get_with_body_is_refused() -> None:
    result = run(
        "try { fetch('http://127.0.0.1:9/', {body: 'x'}) } catch (e) { console.log(e.message) }"
    )
    assert result.lines[-1] == "fetch failed: a GET request cannot have a body"


def test_response_size_limit_ends_the_run(server: Server) -> None:
    limits = scripts.ScriptLimits(timeout=2.0, fetch_max_bytes=1000)
    result = run(
        f"try {{ fetch('{server.url('/big?n=5000')}') }} catch (e) {{ console.log('caught') }}"
        "console.log('still running')",
        limits=limits,
    )
    assert not result.outcome.success
    assert result.outcome.limit == "fetch_max_bytes"
    assert result.outcome.error is not None
    assert result.outcome.error.startswith("fetch response size limit of 1000 bytes exceeded")
    assert result.lines[-1] == result.outcome.error
    small = run(f"console.log(fetch('{server.url('/big?n=1000')}').text().length)", limits=limits)
    assert small.lines[-1] == "1000"


def test_fetch_count_limit_ends_the_run(server: Server) -> None:
    limits = scripts.ScriptLimits(timeout=2.0, fetch_limit=3)
    result = run(
        f"for (var i = 0; i < 10; i++) {{ try {{ fetch('{server.url('/json')}') }} catch (e) {{}} }}",
        limits=limits,
    )
    assert result.outcome.limit == "fetch_limit"
    assert result.outcome.error == "fetch limit of 3 calls per run exceeded"
    assert len(server.requests) == 3


def test_fetch_time_counts_toward_the_run_deadline(server: Server) -> None:
    limits = scripts.ScriptLimits(timeout=0.5, fetch_timeout=30.0)
    result = run(f"fetch('{server.url('/slow?s=3')}'); console.log('not reached')", limits=limits)
    assert result.outcome.limit == "timeout"
    assert re.fullmatch(
        r"time limit of 0\.5 s exceeded \(line 1, column \d+\)", result.outcome.error or ""
    )
    assert result.outcome.duration_ms < 2500
    assert "not reached" not in result.lines


def test_per_call_fetch_timeout_is_a_type_error(server: Server) -> None:
    limits = scripts.ScriptLimits(timeout=5.0, fetch_timeout=0.3)
    result = run(
        f"try {{ fetch('{server.url('/slow?s=2')}') }} catch (e) {{ console.log(e.name, e.message) }}",
        limits=limits,
    )
    assert result.outcome.success, result.log
    assert result.lines[-1] == "TypeError fetch failed: timed out waiting for 127.0.0.1"


def test_dry_fetch_sends_nothing_and_logs_the_request(server: Server) -> None:
    result = run(
        f"var r = fetch('{server.url('/echo')}', {{method: 'POST',"
        " headers: {'X-Token': 'abc'}, body: '{\"a\":1}'});"
        "console.log(r.status, JSON.stringify(r.json()))",
        dry_fetch=True,
    )
    assert result.outcome.success, result.log
    assert server.requests == []
    assert result.lines == [
        f"HTTP request: POST {server.url('/echo')}",
        "  X-Token: abc",
        '  body: {"a":1}',
        "HTTP response: 200 OK (dry run: nothing was sent)",
        "200 {}",
    ]


def test_dry_fetch_still_refuses_invalid_urls() -> None:
    result = run(
        "try { fetch('ftp://example.com/') } catch (e) { console.log(e.name, e.message) }",
        dry_fetch=True,
    )
    assert result.lines[-1].startswith("TypeError fetch failed: invalid URL 'ftp://example.com/'")


def test_host_names_are_resolved_and_checked(server: Server) -> None:
    result = run(f"console.log(fetch('http://localhost:{server.port}/json').json().hello)")
    assert result.outcome.success, result.log
    assert result.lines[-1] == "world"
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"
    blocked = run(
        f"try {{ fetch('http://localhost:{server.port}/json') }} catch (e) {{ console.log(e.message) }}",
        allow=("127.0.0.2/32",),
    )
    assert blocked.lines[-1].startswith("fetch failed: outbound request to localhost blocked")


def test_a_dripping_response_cannot_outlast_the_run(server: Server) -> None:
    limits = scripts.ScriptLimits(timeout=0.6, fetch_timeout=30.0)
    result = run(f"fetch('{server.url('/drip?n=100&gap=0.05')}')", limits=limits)
    assert result.outcome.limit == "timeout"
    assert result.outcome.duration_ms < 2000
    complete = run(f"console.log(fetch('{server.url('/drip?n=5&gap=0.01')}').text())")
    assert complete.lines[-1] == "xxxxx"


def test_headers_are_refused_as_a_browser_refuses_them(server: Server) -> None:
    """Header names must be tokens, values free of control characters (NUL, vertical tab,
    line breaks), and the framing is firehook's: Transfer-Encoding is refused, Content-Length
    must be the body's length — nothing of these reaches the server (issue 13, item 8)."""
    cases = [
        "{'X-A': 'a\\u0000b'}", "{'X-A': 'a\\u000bb'}", "{'X-A': 'a\\r\\nX-Injected: 1'}", "{'Bad Name': 'x'}",
        "{'X:colon': 'x'}", "{'': 'x'}",
        "{'Transfer-Encoding': 'chunked', 'Content-Length': '4'}", "{'Transfer-Encoding': 'chunked'}",
        "{'Content-Length': '99'}",
    ]
    for headers in cases:
        result = run(
            f"try {{ fetch('{server.url('/echo')}', {{method: 'POST', body: 'abcd', headers: {headers}}});"
            " console.log('sent'); } catch (e) { console.log(e.name + ': ' + e.message); }"
        )
        assert result.outcome.success, result.log
        assert result.lines[-1].startswith("TypeError: "), (headers, result.log)
        assert "sent" not in result.lines, headers
    assert server.requests == []
    ok = run(f"var r = fetch('{server.url('/echo')}', {{method: 'POST', body: 'abcd',"
             " headers: {'X-Tab': ' a\\tb ', 'Content-Length': '4'}}); console.log(r.json().headers['x-tab']);")
    assert ok.outcome.success and ok.lines[-1] == "a\tb", ok.log
