"""``delivery_http.parse_target``: the request line, Host and where to connect, from a URL."""

from __future__ import annotations

import asyncio
import base64

import pytest

from firehook import delivery_http, errors, outbound


@pytest.mark.parametrize(
    ("url", "key", "start"),
    [
        ("http://Example.COM/hook", ("http", "example.com", 80), "POST /hook HTTP/1.1\r\nHost: example.com\r\n"),
        ("https://example.com:443", ("https", "example.com", 443), "POST / HTTP/1.1\r\nHost: example.com\r\n"),
        ("http://example.com:8080/a?b=1#frag", ("http", "example.com", 8080),
         "POST /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\n"),
        ("https://example.com:80/", ("https", "example.com", 80), "POST / HTTP/1.1\r\nHost: example.com:80\r\n"),
        ("http://[2001:db8::1]:9000/x", ("http", "2001:db8::1", 9000),
         "POST /x HTTP/1.1\r\nHost: [2001:db8::1]:9000\r\n"),
        ("https://[2001:db8::1]/x", ("https", "2001:db8::1", 443), "POST /x HTTP/1.1\r\nHost: [2001:db8::1]\r\n"),
        ("http://example.com/in box/é?q=a b&x=%2F", ("http", "example.com", 80),
         "POST /in%20box/%C3%A9?q=a%20b&x=%2F HTTP/1.1\r\nHost: example.com\r\n"),
        ("http://bücher.example/", ("http", "xn--bcher-kva.example", 80),
         "POST / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n"),
    ],
)
def test_request_start_and_pool_key(url: str, key: tuple[str, str, int], start: str) -> None:
    target = delivery_http.parse_target(url)
    assert target.key == key
    assert (target.host, target.port, target.tls) == (key[1], key[2], key[0] == "https")
    assert target.start == start


def test_credentials_in_the_url_become_basic_authentication() -> None:
    target = delivery_http.parse_target("https://hook%20user:s%3Acret@example.com/in")
    assert target.start.startswith("POST /in HTTP/1.1\r\nHost: example.com\r\n")
    expected = base64.b64encode(b"hook user:s:cret").decode()
    assert target.start.endswith(f"Authorization: Basic {expected}\r\n")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://user:topsecret@example.com/", "the scheme must be http or https"),
        ("http:///nohost", "no host"),
        ("http://user:topsecret@example.com:99999/", "Port out of range"),
        ("http://exa mple.com/", "not a valid host name"),
        ("", "the scheme must be http or https"),
    ],
)
def test_invalid_urls_are_final_and_never_echo_the_url(url: str, words: str) -> None:
    with pytest.raises(delivery_http.InvalidURL) as caught:
        delivery_http.parse_target(url)
    assert caught.value.final
    assert str(caught.value).startswith("invalid URL: ") and words in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def scenario() -> None:
        client = delivery_http.Client(outbound.Guard(["127.0.0.1/32"]), 1)
        try:
            for bad in ({"X-Evil": "a\r\nInjected: 1"}, {"X-Evil\n": "a"}, {"X-Evil": "a\0"}):
                with pytest.raises(delivery_http.InvalidRequest, match="line break or NUL"):
                    await client.post("http://127.0.0.1:9/hook", b"{}", bad, 5)
            assert client.opened == 0
        finally:
            await client.close()

    asyncio.run(scenario())


def test_a_malformed_numeric_host_is_refused_by_the_guard_as_invalid_input() -> None:
    async def scenario() -> None:
        client = delivery_http.Client(outbound.Guard(), 1)
        try:
            with pytest.raises(errors.InvalidInput, match="not a valid IPv4 address"):
                await client.post("http://256.1.1.1/hook", b"{}", {}, 5)
        finally:
            await client.close()

    asyncio.run(scenario())
