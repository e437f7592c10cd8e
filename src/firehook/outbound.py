"""The outbound guard (SPEC §5.4), shared by webhook deliveries and script ``fetch``.

A target host is resolved first, every resolved address is checked, and the caller connects
to a checked address (pinned) rather than resolving again, so DNS rebinding cannot slip a
private address in between the check and the connection.

What is refused: loopback, private, link-local, multicast, unspecified, reserved and
cloud-metadata addresses, IPv4 and IPv6, including IPv6 forms that carry an IPv4 address
(IPv4-mapped, NAT64, 6to4, Teredo), the legacy numeric IPv4 spellings that resolvers still
accept (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``), and ``localhost`` names
(RFC 6761: ``localhost`` and ``*.localhost`` are loopback whatever DNS says).

The operator's allow-list (``FIREHOOK_OUTBOUND_ALLOW``: CIDRs, addresses, host names, and
``*.example.internal`` suffixes) wins over every rule, metadata included: it is how a private
target is reached on purpose.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from firehook import errors

__all__ = [
    "Address",
    "Guard",
    "parse_ip_literal",
    "why_refused",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "FIREHOOK_OUTBOUND_ALLOW"
ALLOW_FLAG = "--outbound-allow"

# Metadata services answer on these from inside cloud VMs and hand out credentials. Most are
# link-local or private anyway; they are listed so the message says what they are, and for
# the ones that are not (Azure's WireServer sits on a public address, Oracle's on 192.0.0.192).
_METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),  # AWS, GCP, Azure IMDS, OpenStack, DO…
    ipaddress.ip_network("169.254.170.2/32"),  # AWS ECS task metadata
    ipaddress.ip_network("169.254.170.23/32"),  # AWS EKS pod identity
    ipaddress.ip_network("168.63.129.16/32"),  # Azure WireServer
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("192.0.0.192/32"),  # Oracle Cloud
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS IMDS over IPv6
    ipaddress.ip_network("fd00:ec2::23/128"),  # AWS EKS pod identity over IPv6
)
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
# The local-use NAT64 prefix (RFC 8215) embeds IPv4 at an operator-chosen position, so the
# address cannot be recovered reliably: the whole prefix is refused.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

_DECIMAL = re.compile(r"[0-9]+")
_OCTAL = re.compile(r"[0-7]*")
_HEX = re.compile(r"[0-9a-fA-F]*")


def allow_hint(item: str) -> str:
    """How to put ``item`` on the allow-list, in each of the forms a server is started with:
    the flag, the variable and ``make run``'s (which passes flags through ``ARGS``)."""
    return (f"{ALLOW_FLAG} {item} (firehook serve or worker), {ALLOW_SETTING}={item}, "
            f"or make run ARGS=\"{ALLOW_FLAG} {item}\"")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to, when it is a transition form."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def why_refused(address: Address) -> str | None:
    """The reason ``address`` may not be reached, or None when it is a global address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        inner = _embedded_ipv4(address)
        if inner is not None:
            reason = why_refused(inner)
            return f"{reason} ({inner}, embedded in an IPv6 address)" if reason else None
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
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


def _ipv4_number(part: str) -> int | None:
    """One part of a numeric IPv4 host, as inet_aton/WHATWG read it: 0x hex, 0 octal, decimal."""
    if part[:2] in ("0x", "0X"):
        digits, base, pattern = part[2:], 16, _HEX
    elif len(part) > 1 and part[0] == "0":
        digits, base, pattern = part[1:], 8, _OCTAL
    else:
        digits, base, pattern = part, 10, _DECIMAL
    # fullmatch on an explicit alphabet: int() alone would also take "1_0", " 1" or "+1".
    if not pattern.fullmatch(digits):
        return None
    return int(digits, base) if digits else 0


def _parse_ipv4_forms(host: str) -> ipaddress.IPv4Address | None:
    """Read the numeric IPv4 spellings (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``).

    Returns None when ``host`` is not numeric (it is a name). Raises InvalidInput when it is
    numeric but out of range (``256.1.1.1``), which no resolver should be left to interpret.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4 or any(p == "" for p in parts):
        return None
    numbers = [_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        return None
    values = [n for n in numbers if n is not None]
    *head, last = values
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(values)):
        raise errors.InvalidInput.field("url", f"{host} is not a valid IPv4 address")
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> Address | None:
    """The address ``host`` spells, or None when it is a name to resolve.

    Accepts bracketed and bare IPv6 (a zone ``%eth0`` is dropped) and every IPv4 spelling a
    resolver would accept, so that the guard sees the address the connection would reach.
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    bare = bare.split("%", 1)[0] if ":" in bare else bare
    if ":" in bare:
        try:
            return ipaddress.IPv6Address(bare)
        except ValueError:
            raise errors.InvalidInput.field("url", f"{host} is not a valid IPv6 address") from None
    return _parse_ipv4_forms(bare)


def _is_localhost_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _is_name(host: str) -> bool:
    try:
        return parse_ip_literal(host) is None
    except errors.InvalidInput:
        return False


def _normal_host(host: str) -> str:
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bare.lower().rstrip(".")


class Guard:
    """Resolves and checks outbound targets against the operator's allow-list."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allowed_networks: list[Network] = []
        self.allowed_hosts: set[str] = set()
        self.allowed_suffixes: list[str] = []
        for item in allow:
            item = item.strip()
            if not item:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if item.startswith("*."):
                self.allowed_suffixes.append(_normal_host(item[1:]))
            else:
                self.allowed_hosts.add(_normal_host(item))

    def _host_allowed(self, host: str) -> bool:
        name = _normal_host(host)
        return name in self.allowed_hosts or any(name.endswith(s) for s in self.allowed_suffixes)

    def _allowed(self, host: str, address: Address) -> bool:
        if self._host_allowed(host):
            return True
        candidates: list[Address] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            # Allowing 127.0.0.1/32 also allows ::ffff:127.0.0.1: the kernel connects to the same
            # IPv4 socket. The other embedded forms (6to4, Teredo, NAT64) are refused for what
            # they embed, but an IPv4 entry does not admit them: 2002:7f00:2:: is a network
            # reached through a relay, not the host 127.0.0.2 the operator allowed.
            candidates.append(address.ipv4_mapped)
        return any(
            a in net
            for a in candidates
            for net in self.allowed_networks
            if a.version == net.version
        )

    def check_address(self, host: str, address: Address) -> None:
        """Raise OutboundBlocked when ``address`` (reached for ``host``) is refused."""
        if self._allowed(host, address):
            return
        reason = why_refused(address)
        if reason is not None:
            shown = _normal_host(host)
            named = f" (or {shown})" if _is_name(host) else ""
            raise errors.OutboundBlocked(
                f"outbound request to {shown} blocked: {address} is {reason}; "
                f"to allow it, add {address}{named} to the server's allow-list: {allow_hint(str(address))}"
            )

    def _vet(self, host: str, addresses: Sequence[str]) -> list[str]:
        """Keep the addresses that pass, in order; raise for the first refusal when none does.

        A name that resolves to a mix keeps only its allowed addresses: the connection is
        pinned to those, so the refused ones can never be reached (and ``localhost`` still
        works when only 127.0.0.1 is allowed, though it also resolves to ::1).
        """
        kept: list[str] = []
        refusal: errors.OutboundBlocked | None = None
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            try:
                self.check_address(host, address)
            except errors.OutboundBlocked as exc:
                refusal = refusal or exc
                continue
            if text not in kept:
                kept.append(text)
        if not kept:
            if refusal is not None:
                raise refusal
            raise OSError(f"cannot resolve {_normal_host(host)}: no address")
        return kept

    def _before_dns(self, host: str) -> list[str] | None:
        """The addresses for a literal or a localhost name (no DNS asked), else None."""
        literal = parse_ip_literal(host)
        if literal is not None:
            self.check_address(host, literal)
            return [str(literal)]
        if _is_localhost_name(host):
            return self._vet(host, ["127.0.0.1", "::1"])
        return None

    def _known(self, host: str) -> list[str] | None:
        # resolve() keeps its contract (OutboundBlocked or OSError): a numeric host that is
        # out of range does not resolve, as far as its callers are concerned.
        try:
            return self._before_dns(host)
        except errors.InvalidInput as exc:
            why = exc.detail["url"] if isinstance(exc.detail, dict) else exc.message
            raise OSError(f"cannot resolve {host}: {why}") from None

    def check_literal(self, host: str) -> None:
        """Check a host that needs no DNS (an IP literal in any spelling, a localhost name).

        Names are left to :meth:`resolve`; this is for HTTP clients that skip their resolver
        for IP literals.
        """
        self._before_dns(host)

    def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return the addresses to connect to, every one checked.

        Raises OutboundBlocked when no resolved address is allowed (naming the first refused
        one), and OSError when the name does not resolve (a malformed numeric host included).
        """
        known = self._known(host)
        if known is not None:
            return known
        bare = _normal_host(host)
        try:
            infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(
                f"cannot resolve {bare}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        return self._vet(host, [str(info[4][0]) for info in infos])

    async def resolve_async(self, host: str, port: int) -> list[str]:
        """:meth:`resolve` without blocking the event loop (a name lookup runs in a thread)."""
        known = self._known(host)
        if known is not None:
            return known
        return await asyncio.get_running_loop().run_in_executor(None, self.resolve, host, port)

    def check_url(self, url: str) -> None:
        """Save-time validation of a webhook URL: http(s), a host, resolves, not refused.

        Raises InvalidInput (``detail`` ``{"url": …}``) for a malformed URL or a name that
        does not resolve, and OutboundBlocked (same detail shape) naming the address and
        ``FIREHOOK_OUTBOUND_ALLOW`` when the target is refused.
        """
        if not isinstance(url, str) or not url.strip():
            raise errors.InvalidInput.field("url", "a URL is required")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise errors.InvalidInput.field("url", f"{url!r} is not a valid URL: {exc}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise errors.InvalidInput.field("url", f"{url!r}: the scheme must be http or https")
        host = parts.hostname
        if not host:
            raise errors.InvalidInput.field("url", f"{url!r} has no host")
        if port is None:
            port = 443 if parts.scheme.lower() == "https" else 80
        try:
            self.resolve(host, port)
        except errors.OutboundBlocked as exc:
            raise errors.OutboundBlocked(exc.message, {"url": exc.message}) from None
        except OSError as exc:
            raise errors.InvalidInput.field("url", f"{url!r}: {exc}") from None
        literal = parse_ip_literal(host)
        if literal is not None and literal.version == 4 and host.rstrip(".") != str(literal):
            # HTTP clients (aiohttp among them) refuse these spellings at send time.
            raise errors.InvalidInput.field("url", f"write the address {host} as {literal}")

