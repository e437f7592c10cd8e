"""The outbound guard as an aiohttp resolver, for code that sends with aiohttp.

firehook's own deliveries go through ``delivery_http``; this is for the benchmark's aiohttp
baseline and anyone embedding the guard in an aiohttp client.
"""

from __future__ import annotations

import socket

import aiohttp.abc

from firehook.outbound import Guard


class GuardedResolver(aiohttp.abc.AbstractResolver):
    """An aiohttp resolver that answers only with addresses the guard checked.

    aiohttp connects to what the resolver returns, so the checked address is the one used
    (pinned); TLS still verifies the certificate against the URL's host name. aiohttp skips
    resolvers for IP literals: pair this with :meth:`Guard.check_literal` before the request.
    """

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        addresses = await self.guard.resolve_async(host, port)
        results: list[aiohttp.abc.ResolveResult] = []
        for text in addresses:
            found = socket.AF_INET6 if ":" in text else socket.AF_INET
            if family and family != found:
                continue
            results.append(
                {
                    "hostname": host,
                    "host": text,
                    "port": port,
                    "family": found,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
            )
        if not results:
            raise OSError(f"cannot resolve {host}: no address of the requested family")
        return results

    async def close(self) -> None:
        """Nothing to release: resolution goes through the event loop's getaddrinfo."""
