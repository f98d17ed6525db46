"""Who is asking, and how often: the client address per-client caps count against, and a
token bucket per client (``node.api.server.guard`` answers 429 when it is empty)."""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from node.protocol import limits


def client_of(request: web.Request, trust_forwarded_for: bool) -> str:
    """Who is asking, for per-client caps: the peer address, or the last address of
    ``X-Forwarded-For`` when the node sits behind a proxy it trusts (the one that proxy
    appended; those before it are whatever the client wrote). One client per IPv4
    address and per IPv6 /64 (what one subscriber is routed), IPv4-mapped as IPv4."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.split(",")[-1].strip()
        if last:
            return _client_address(last)
    return _client_address(request.remote or "unknown")


def _client_address(text: str) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text[: limits.ADDRESS_CHARS_MAX]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def served_over_tls(request: web.Request, trust_forwarded_for: bool) -> bool:
    """Whether the client reached us over TLS: directly, or through a trusted proxy
    that says so (``X-Forwarded-Proto: https``)."""
    if request.secure:
        return True
    if trust_forwarded_for:
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https"
    return False


class RateLimiter:
    """A token bucket per client, bounded in clients (the least recent is forgotten)."""

    def __init__(self, per_s: float, burst: int, clock_ms: Callable[[], int]) -> None:
        self._per_ms = per_s / 1000
        self._burst = float(burst)
        self._clock_ms = clock_ms
        self._buckets: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def allow(self, client: str) -> bool:
        now = self._clock_ms()
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + max(0, now - last) * self._per_ms)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > limits.HTTP_RATE_CLIENTS_MAX:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after_s(self) -> int:
        return max(1, int(1 / self._per_ms / 1000) if self._per_ms > 0 else 1)
