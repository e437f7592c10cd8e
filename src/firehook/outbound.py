"""The outbound guard (SPEC §5.4), shared by webhook deliveries and script ``fetch``.

A target host is resolved first, every resolved address is checked, and the caller connects
to a checked address (pinned) rather than resolving again, so DNS rebinding cannot slip a
private address in between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence

from firehook import errors

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("64:ff9b:1::/48"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def why_refused(address: Address) -> str | None:
    """The reason ``address`` may not be reached, or None when it is a global address."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = why_refused(inner)
            return f"{reason} (embedded in {address})" if reason else None
    if any(address in net for net in _METADATA):
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


class Guard:
    """Resolves and checks outbound targets against the operator's allow-list."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allowed_networks: list[Network] = []
        self.allowed_hosts: set[str] = set()
        for item in allow:
            item = item.strip()
            if not item:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.allowed_hosts.add(item.lower().rstrip("."))

    def _allowed(self, host: str, address: Address) -> bool:
        if host.lower().rstrip(".") in self.allowed_hosts:
            return True
        return any(address in net for net in self.allowed_networks)

    def check_address(self, host: str, address: Address) -> None:
        """Raise OutboundBlocked when ``address`` (reached for ``host``) is refused."""
        if self._allowed(host, address):
            return
        reason = why_refused(address)
        if reason is not None:
            raise errors.OutboundBlocked(
                f"outbound request to {host} blocked: {address} is {reason}; "
                f"to allow it, add {address} (or {host}) to FIREHOOK_OUTBOUND_ALLOW"
            )

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return the addresses to connect to, every one checked.

        Raises OutboundBlocked when any resolved address is refused (a name that resolves to
        both a public and a private address is refused as a whole), and OSError when the name
        does not resolve.
        """
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"cannot resolve {bare}: {exc.strerror}") from None
        addresses: list[str] = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            self.check_address(bare, address)
            if text not in addresses:
                addresses.append(text)
        return addresses


def guard_from(allow: Sequence[str]) -> Guard:
    return Guard(allow)
