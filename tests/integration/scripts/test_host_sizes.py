"""Host calls carry strings of any size the limits allow, both ways (issue 12).

Copying a long string out of the guest grows its memory; the host call's bounds checks must
use the size after that, not before (they used to, and these runs failed with HostError).
"""

from __future__ import annotations

import hashlib
import hmac

from tests.integration.scripts.helpers import Server, run


def test_one_long_log_argument() -> None:
    result = run("console.log('x'.repeat(65000))")
    assert result.outcome.success, result.log
    assert result.lines == ["x" * 65000]


def test_two_long_log_arguments() -> None:
    result = run("var a = 'y'.repeat(40000); console.log(a, a.toUpperCase())")
    assert result.outcome.success, result.log
    assert result.lines == ["y" * 40000 + " " + "Y" * 40000]


def test_hmac_over_a_100_kb_body() -> None:
    body = "é" + "z" * 100_000
    result = run(
        "var ts = '1700000000';"
        "console.log(crypto.createHmac('sha256', 'k').update(ts + '.' + activity.body)"
        ".digest('hex'))",
        activity={"body": body},
    )
    assert result.outcome.success, result.log
    expected = hmac.new(b"k", f"1700000000.{body}".encode(), hashlib.sha256).hexdigest()
    assert result.lines == [expected]


def test_many_long_host_calls_in_one_run() -> None:
    # Memory grows several times over the run; every call must still see the right size.
    result = run(
        "for (var i = 1; i <= 12; i++) {"
        "  var s = String.fromCharCode(96 + i).repeat(i * 30000);"
        "  console.log(crypto.createHash('sha1').update(s).digest('hex'));"
        "}"
    )
    assert result.outcome.success, result.log
    assert result.lines == [
        hashlib.sha1((chr(96 + i) * (i * 30000)).encode()).hexdigest() for i in range(1, 13)
    ]


def test_a_long_answer_into_the_guest(server: Server) -> None:
    result = run(
        "var r = fetch(variables.url); console.log(r.text().length)",
        variables={"url": server.url("/big?n=3000000")},
    )
    assert result.outcome.success, result.log
    assert result.lines[-1] == "3000000"
