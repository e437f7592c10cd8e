"""The outbound guard (SPEC §5.4): address classification, host spellings, allow-list, URLs."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from firehook import errors, outbound, outbound_aiohttp

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private or reserved"),  # carrier-grade NAT
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("168.63.129.16", "metadata"),  # Azure WireServer: a public address
    ("100.100.100.200", "metadata"),
    ("192.0.0.192", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%2", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "private"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("198.18.0.1", "private"),
    ("192.0.2.1", "private"),  # documentation
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::1", "NAT64"),  # local-use NAT64
    ("2002:7f00:1::1", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:a00:1::1", "private"),  # 6to4 of 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo, client 192.0.2.45
    ("::7f00:1", "reserved"),  # deprecated IPv4-compatible
]

ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize(("text", "reason"), REFUSED)
def test_refused_addresses(text: str, reason: str) -> None:
    address = ipaddress.ip_address(text)
    found = outbound.why_refused(address)
    assert found is not None and reason in found
    with pytest.raises(errors.OutboundBlocked) as caught:
        outbound.Guard().check_address(text, address)
    message = str(caught.value)
    assert str(address) in message and "FIREHOOK_OUTBOUND_ALLOW" in message


@pytest.mark.parametrize("text", ALLOWED)
def test_global_addresses_pass(text: str) -> None:
    assert outbound.why_refused(ipaddress.ip_address(text)) is None
    outbound.Guard().check_address(text, ipaddress.ip_address(text))


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1"),
        ("2852039166", "169.254.169.254"),
    ],
)
def test_literal_spellings(host: str, address: str) -> None:
    assert outbound.parse_ip_literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "0x7g.0.0.1", "1.2.3.4.5", "a.1"])
def test_names_are_not_literals(host: str) -> None:
    assert outbound.parse_ip_literal(host) is None


@pytest.mark.parametrize("host", ["256.0.0.1", "1.2.3.256", "1.16777216", "4294967296", "09.0.0.1"])
def test_out_of_range_numbers_are_invalid(host: str) -> None:
    if host == "09.0.0.1":  # 09 is not octal: a name as far as resolvers go
        assert outbound.parse_ip_literal(host) is None
        return
    with pytest.raises(errors.InvalidInput):
        outbound.parse_ip_literal(host)
    # resolve() keeps its contract for callers such as script fetch: OSError, not resolvable.
    with pytest.raises(OSError, match="not a valid IPv4"):
        outbound.Guard().resolve(host, 80)


# Every form from the SPEC and the issue, as a URL host, through resolve().
FORMS = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "[::1]",
    "169.254.169.254",
    "10.0.0.1",
    "[::ffff:127.0.0.1]",
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "0",
]


@pytest.mark.parametrize("host", FORMS)
def test_every_form_is_refused_by_default(host: str) -> None:
    with pytest.raises(errors.OutboundBlocked, match="FIREHOOK_OUTBOUND_ALLOW"):
        outbound.Guard().resolve(host, 80)
    with pytest.raises(errors.OutboundBlocked):
        outbound.Guard().check_url(f"http://{host}:8080/hook")


@pytest.mark.parametrize("host", FORMS)
def test_every_form_passes_when_allowed(host: str) -> None:
    guard = outbound.Guard(["127.0.0.0/8", "::1", "169.254.169.254/32", "10.0.0.0/8", "0.0.0.0/32"])
    assert guard.resolve(host, 80)


def test_loopback_allowed_by_cidr() -> None:
    guard = outbound.Guard(["127.0.0.1/32"])
    assert guard.resolve("127.0.0.1", 80) == ["127.0.0.1"]
    assert guard.resolve("2130706433", 80) == ["127.0.0.1"]
    assert guard.resolve("[::ffff:127.0.0.1]", 80) == ["::ffff:7f00:1"]  # same target
    # localhost is 127.0.0.1 and ::1: only the allowed address is kept (and pinned).
    assert guard.resolve("localhost", 80) == ["127.0.0.1"]
    with pytest.raises(errors.OutboundBlocked, match="::1"):
        guard.resolve("[::1]", 80)
    with pytest.raises(errors.OutboundBlocked, match="127.0.0.2"):
        guard.resolve("127.0.0.2", 80)


def test_allowed_by_host_name_and_suffix() -> None:
    guard = outbound.Guard(["localhost", "*.internal.test"])
    assert guard.resolve("localhost", 80) == ["127.0.0.1", "::1"]
    assert guard.resolve("LocalHost.", 80) == ["127.0.0.1", "::1"]
    guard.check_address("hooks.internal.test", ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(errors.OutboundBlocked):
        guard.check_address("internal.test.evil", ipaddress.ip_address("10.1.2.3"))
    with pytest.raises(errors.OutboundBlocked):
        guard.resolve("127.0.0.1", 80)  # the name is allowed, not the address


def test_message_names_address_host_and_setting() -> None:
    with pytest.raises(errors.OutboundBlocked) as caught:
        outbound.Guard().resolve("localhost", 80)
    assert str(caught.value) == (
        "outbound request to localhost blocked: 127.0.0.1 is a loopback address; "
        "to allow it, add 127.0.0.1 (or localhost) to the server's allow-list: --outbound-allow 127.0.0.1 "
        "(firehook serve or worker), FIREHOOK_OUTBOUND_ALLOW=127.0.0.1, or make run ARGS=\"--outbound-allow 127.0.0.1\""
    )


@pytest.mark.parametrize(
    ("url", "error", "words"),
    [
        ("ftp://example.com/", errors.InvalidInput, "http or https"),
        ("file:///etc/passwd", errors.InvalidInput, "http or https"),
        ("http:///path", errors.InvalidInput, "no host"),
        ("", errors.InvalidInput, "required"),
        ("http://example.com:99999/", errors.InvalidInput, "not a valid URL"),
        ("http://256.1.1.1/", errors.InvalidInput, "not a valid IPv4"),
        ("http://134744072/", errors.InvalidInput, "as 8.8.8.8"),  # allowed, but unsendable
        ("http://169.254.169.254/latest/meta-data/", errors.OutboundBlocked, "metadata"),
        ("https://[::ffff:10.0.0.1]/", errors.OutboundBlocked, "10.0.0.1"),
    ],
)
def test_check_url_refusals(url: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words) as caught:
        outbound.Guard().check_url(url)
    assert isinstance(caught.value, errors.FirehookError)
    assert set(caught.value.detail) == {"url"}


def test_check_url_accepts_allowed_and_global_literals() -> None:
    outbound.Guard().check_url("https://8.8.8.8/hook")
    outbound.Guard(["127.0.0.1/32"]).check_url("http://127.0.0.1:9/hook")
    outbound.Guard(["127.0.0.1/32"]).check_url("http://localhost:9/hook")


def test_guarded_resolver_returns_only_checked_addresses() -> None:
    async def resolve(guard: outbound.Guard, host: str, family: int = 0) -> list[str]:
        resolver = outbound_aiohttp.GuardedResolver(guard)
        results = await resolver.resolve(host, 443, family=socket.AddressFamily(family))
        await resolver.close()
        assert all(r["hostname"] == host and r["port"] == 443 for r in results)
        return [r["host"] for r in results]

    allow_v4 = outbound.Guard(["127.0.0.1/32"])
    assert asyncio.run(resolve(allow_v4, "localhost")) == ["127.0.0.1"]
    assert asyncio.run(resolve(allow_v4, "0x7f.1", socket.AF_INET)) == ["127.0.0.1"]
    with pytest.raises(errors.OutboundBlocked):
        asyncio.run(resolve(outbound.Guard(), "localhost"))
    with pytest.raises(OSError, match="family"):
        asyncio.run(resolve(allow_v4, "localhost", socket.AF_INET6))



@pytest.mark.parametrize("text", ["2002:7f00:2::", "2002:7f00:2::1", "64:ff9b::7f00:2"])
def test_an_ipv4_entry_admits_its_mapped_form_only(text: str) -> None:
    """127.0.0.2/32 on the allow-list admits ::ffff:127.0.0.2 (the same IPv4 socket), not the
    6to4 or NAT64 forms that embed it: those are networks reached through a relay or a
    translator, refused for what they embed (issue 13, item 8)."""
    import ipaddress

    guard = outbound.Guard(["127.0.0.2/32"])
    guard.check_address("127.0.0.2", ipaddress.ip_address("::ffff:127.0.0.2"))
    with pytest.raises(errors.OutboundBlocked, match="embedded in an IPv6 address"):
        guard.check_address("target", ipaddress.ip_address(text))
