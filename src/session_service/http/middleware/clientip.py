"""The client's address, as far as it can be proven: `X-Forwarded-For` from trusted proxies only.

Rate limits, audit events and logs key on the client IP, so a header any client can send
must not choose it. The header is read only when the direct peer is a configured proxy,
and walked from the right (the hop our proxy appended) towards the left, skipping further
trusted proxies: the first address that is not a trusted proxy is the client. Everything
to its left was written by the client itself and is ignored. A malformed entry stops the
walk; the last address known to be good (a trusted hop) is then the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

FORWARDED_FOR = b"x-forwarded-for"


def parse_address(text: str) -> IPAddress | None:
    """An address from a header entry (`1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]:80`), or None."""
    text = text.strip()
    if text.startswith("["):
        text, closed, _ = text[1:].partition("]")
        if not closed:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The networks whose `X-Forwarded-For` is believed."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks = tuple(networks)
        # Peers repeat (a handful of proxies): remember each verdict.
        self.trusts_peer = lru_cache(maxsize=256)(self._trusts_peer)

    def _trusts_peer(self, peer: str) -> bool:
        address = parse_address(peer)
        return address is not None and self.trusts(address)

    def trusts(self, address: IPAddress) -> bool:
        """Whether `address` is one of the trusted proxies."""
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Sequence[str]) -> str:
        """The client behind `peer`, given the `X-Forwarded-For` header values in order."""
        if not self.trusts_peer(peer):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                break
            client = str(address)
            if not self.trusts(address):
                break
        return client


class ClientAddressMiddleware:
    """Pure ASGI: replaces `scope["client"]` with the proven client address.

    Installed only when `TRUSTED_PROXIES` is set. It runs first, so the access log, the
    rate limits and the audit trail all see the same address.
    """

    def __init__(self, app: ASGIApp, *, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] == "http" and peer:
            forwarded = [
                value.decode("latin-1") for name, value in scope["headers"] if name == FORWARDED_FOR
            ]
            if forwarded:
                client = self.proxies.client(peer[0], forwarded)
                if client != peer[0]:
                    scope["client"] = (client, 0)
        await self.app(scope, receive, send)
