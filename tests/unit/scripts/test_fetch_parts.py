"""Pure parts of fetch: URL checks, method normalisation, request parsing."""

from __future__ import annotations

import json

import pytest

from firehook.scripts import fetch, host


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/a/b?x=1", ("https", "hooks.example.com", 443, "/a/b?x=1")),
        ("http://example.com", ("http", "example.com", 80, "/")),
        ("HTTP://Example.com:8080/p", ("http", "example.com", 8080, "/p")),
        ("http://[::1]:9/x", ("http", "::1", 9, "/x")),
    ],
)
def test_target(url: str, expected: tuple[str, str, int, str]) -> None:
    assert fetch._target(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "not a url",
        "http://",
        "http://u:p@h/",
        "http://example.com:99999/",
    ],
)
def test_target_refuses(url: str) -> None:
    with pytest.raises(fetch.NetworkError):
        fetch._target(url)


def test_method_normalisation_follows_whatwg() -> None:
    assert [fetch.normalise_method(m) for m in ("get", "post", "Delete", "patch", "PATCH")] == [
        "GET",
        "POST",
        "DELETE",
        "patch",
        "PATCH",
    ]


def test_host_header_keeps_non_default_ports() -> None:
    assert fetch._host_header("https", "example.com", 443) == "example.com"
    assert fetch._host_header("http", "example.com", 8080) == "example.com:8080"
    assert fetch._host_header("http", "::1", 80) == "[::1]"


def test_parse_request() -> None:
    request = host._parse_request(
        json.dumps(
            {
                "url": "https://x.test/",
                "method": "post",
                "redirect": "follow",
                "headers": [["X-A", "1"]],
                "body": "héllo",
                "binary": False,
            }
        )
    )
    assert request == fetch.FetchRequest(
        "https://x.test/", "POST", [("X-A", "1")], "héllo".encode(), "follow"
    )
    binary = host._parse_request(
        json.dumps(
            {
                "url": "https://x.test/",
                "method": "PUT",
                "redirect": "manual",
                "headers": [],
                "body": "\u00ff\u0000",
                "binary": True,
            }
        )
    )
    assert binary.body == b"\xff\x00"


@pytest.mark.parametrize(
    "headers",
    [[["Bad\r\nName", "v"]], [["X", "line\nbreak"]], [["", "v"]], [["X", 1]]],
)
def test_parse_request_refuses_bad_headers(headers: list[list[object]]) -> None:
    with pytest.raises((TypeError, ValueError)):
        host._parse_request(
            json.dumps(
                {
                    "url": "https://x.test/",
                    "method": "GET",
                    "redirect": "follow",
                    "headers": headers,
                }
            )
        )


def test_fetcher_refuses_unknown_redirect_modes_and_bodies_on_get() -> None:
    fetcher = fetch.Fetcher(allow=(), timeout=1, max_bytes=10, time_left=lambda: 1.0)
    with pytest.raises(fetch.NetworkError, match="invalid redirect mode"):
        fetcher.fetch(fetch.FetchRequest("https://x.test/", redirect="sometimes"))
    with pytest.raises(fetch.NetworkError, match="cannot have a body"):
        fetcher.fetch(fetch.FetchRequest("https://x.test/", body=b"x"))


def test_fetcher_out_of_time_before_connecting() -> None:
    fetcher = fetch.Fetcher(allow=("127.0.0.1/32",), timeout=1, max_bytes=10, time_left=lambda: 0.0)
    with pytest.raises(fetch.OutOfTime):
        fetcher.fetch(fetch.FetchRequest("http://127.0.0.1:9/"))


def test_slow_name_lookups_wait_at_most_the_fetch_timeout_or_the_time_left() -> None:
    import time

    def slow_resolve(host: str, port: int) -> list[str]:
        time.sleep(1.0)
        return ["203.0.113.1"]

    fetcher = fetch.Fetcher(allow=(), timeout=0.1, max_bytes=10, time_left=lambda: 30.0)
    fetcher._guard.resolve = slow_resolve  # type: ignore[method-assign]
    started = time.monotonic()
    with pytest.raises(fetch.NetworkError, match="timed out resolving slow.test"):
        fetcher.fetch(fetch.FetchRequest("https://slow.test/"))
    assert time.monotonic() - started < 0.8

    deadline = time.monotonic() + 0.1
    out_of_time = fetch.Fetcher(
        allow=(), timeout=30, max_bytes=10, time_left=lambda: deadline - time.monotonic()
    )
    out_of_time._guard.resolve = slow_resolve  # type: ignore[method-assign]
    with pytest.raises(fetch.OutOfTime):
        out_of_time.fetch(fetch.FetchRequest("https://slow.test/"))


def test_target_percent_encodes_what_cannot_go_in_a_request_line() -> None:
    assert fetch._target("http://h/a b/é?q=1 2&x=\"<>`{}|\\^[]#frag")[3] == (
        "/a%20b/%C3%A9?q=1%202&x=%22%3C%3E%60%7B%7D%7C%5C%5E%5B%5D"
    )
    assert fetch._target("http://h/already%20encoded?a=%2F&b=c/d?e")[3] == "/already%20encoded?a=%2F&b=c/d?e"


def test_target_encodes_international_host_names() -> None:
    assert fetch._target("https://bücher.example/")[1] == "xn--bcher-kva.example"


def test_methods_must_be_tokens() -> None:
    fetcher = fetch.Fetcher(allow=(), timeout=1, max_bytes=10, time_left=lambda: 1.0)
    for method in ("GE T", "GET\r\nX: 1", "", "PO(ST"):
        with pytest.raises(fetch.NetworkError, match="invalid method"):
            fetcher.fetch(fetch.FetchRequest("https://x.test/", method=method))


def test_header_values_past_latin1_are_refused() -> None:
    assert fetch.checked_headers([("X-A", "é")], None) == [("X-A", "é")]
    with pytest.raises(fetch.NetworkError, match="not a Latin-1 character"):
        fetch.checked_headers([("X-A", "✓")], None)


def test_request_bytes() -> None:
    head = fetch._request_bytes("GET", "/p?q", "h:8080", [("host", "evil"), ("X-A", "1")], None)
    assert head == (
        b"GET /p?q HTTP/1.1\r\nHost: h:8080\r\nX-A: 1\r\nUser-Agent: firehook/" + fetch.__version__.encode()
        + b"\r\nAccept: */*\r\nAccept-Encoding: identity\r\n\r\n"
    )
    post = fetch._request_bytes(
        "POST", "/", "h", [("content-type", "application/json"), ("Accept", "x/y"), ("User-Agent", "me")], b"{}"
    )
    assert post == (
        b"POST / HTTP/1.1\r\nHost: h\r\ncontent-type: application/json\r\nAccept: x/y\r\nUser-Agent: me\r\n"
        b"Accept-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}"
    )
    # No body: a POST says so with Content-Length 0 (as urllib3 did), a DELETE says nothing;
    # a string body without a type is text.
    assert b"\r\nContent-Length: 0\r\n" in fetch._request_bytes("POST", "/", "h", [], None)
    assert b"Content-Length" not in fetch._request_bytes("DELETE", "/", "h", [], None)
    assert b"\r\nContent-Type: text/plain;charset=UTF-8\r\n" in fetch._request_bytes("PUT", "/", "h", [], b"")
