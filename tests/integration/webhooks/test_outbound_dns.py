"""The guard with the system resolver: names that resolve to refused addresses."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from firehook import errors, outbound


def system_addresses(name: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        pytest.skip(f"{name} does not resolve here")
    return sorted({str(info[4][0]).split("%")[0] for info in infos})


def test_own_host_name_is_refused_when_it_resolves_to_a_refused_address() -> None:
    name = socket.gethostname()
    addresses = system_addresses(name)
    refused = [a for a in addresses if outbound.why_refused(ipaddress.ip_address(a))]
    if refused != addresses:
        pytest.skip(f"{name} resolves to a global address here: {addresses}")
    with pytest.raises(errors.OutboundBlocked, match="FIREHOOK_OUTBOUND_ALLOW"):
        outbound.Guard().resolve(name, 80)
    with pytest.raises(errors.OutboundBlocked) as caught:
        outbound.Guard().check_url(f"https://{name}/hook")
    assert caught.value.detail == {"url": caught.value.message}
    # Allowed by name, or by the addresses it resolves to.
    assert outbound.Guard([name]).resolve(name, 80)
    assert outbound.Guard([f"{a}/128" if ":" in a else f"{a}/32" for a in addresses]).resolve(
        name, 80
    )


def test_unresolvable_name() -> None:
    with pytest.raises(OSError, match="cannot resolve"):
        outbound.Guard().resolve("no-such-host.invalid", 80)
    with pytest.raises(errors.InvalidInput, match="cannot resolve") as caught:
        outbound.Guard().check_url("http://no-such-host.invalid/hook")
    assert set(caught.value.detail) == {"url"}
