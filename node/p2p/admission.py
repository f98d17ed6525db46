"""Who may start a handshake, and how refusals are logged.

Owns the accounting of inbound connections that are not yet authenticated
(issue 15, finding 5). Before its handshake ends, a connection is known only
by its remote IP address, so:

- an address that is a configured peer's (its host in the peer list,
  resolved, or the address a peer key was last authenticated from) has its
  own slots, ``P2P_HANDSHAKES_PER_PEER_MAX`` for each peer known there
  (a devnet runs every node on one address), outside the shared pool:
  strangers cannot take them;
- any other address takes slots from a shared pool of
  ``P2P_HANDSHAKES_PENDING_MAX``, at most ``P2P_HANDSHAKES_PER_ADDRESS_MAX``
  at once from one address.

Reserved slots are bounded too: the peer addresses are at most
``P2P_PEER_ADDRESSES_PER_HOST_MAX`` per configured host plus one per allowed
key. A stranger sharing a peer's address (the same NAT) competes with that
peer for its slots; filtering at the network edge is the answer there.

``RefusalLog`` logs the first refusal of a quiet period in full, then counts
the others and logs one summary line per interval, so a flood of refused
connections cannot flood the log.

May import the pure leaves (``node.protocol.limits``, ``node.protocol.crypto``) only.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from node.protocol.crypto import PublicKey
from node.protocol.limits import (
    P2P_HANDSHAKES_PENDING_MAX,
    P2P_HANDSHAKES_PER_ADDRESS_MAX,
    P2P_HANDSHAKES_PER_PEER_MAX,
    P2P_REFUSAL_LOG_ADDRESSES_MAX,
    P2P_REFUSAL_LOG_INTERVAL_S,
)


class SlotRefusal(enum.Enum):
    """Why an inbound connection got no handshake slot. Stable numbered codes."""

    TOO_MANY_FROM_ADDRESS = 1
    TOO_MANY_PENDING = 2


@dataclass(frozen=True, slots=True)
class Slot:
    """One pending handshake: where from, and whether it holds a peer's reserved slot."""

    address: str
    reserved: bool


def address_of(peername: object) -> str:
    """The remote IP of a socket's ``peername``, one spelling per address (IPv4 for mapped)."""
    if not isinstance(peername, tuple) or not peername:
        return "unknown"
    return normalize_address(str(peername[0]))


def normalize_address(host: str) -> str:
    """``host`` as the canonical text of its IP address, or unchanged if it is not one."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class HandshakeSlots:
    """Counts pending inbound handshakes per address; see the module docstring."""

    __slots__ = (
        "_by_address",
        "_configured",
        "_learned",
        "_peers_at",
        "_pending_max",
        "_per_address_max",
        "_per_peer_max",
        "_shared",
    )

    def __init__(
        self,
        pending_max: int = P2P_HANDSHAKES_PENDING_MAX,
        per_address_max: int = P2P_HANDSHAKES_PER_ADDRESS_MAX,
        per_peer_max: int = P2P_HANDSHAKES_PER_PEER_MAX,
    ) -> None:
        if not 1 <= per_address_max <= pending_max or per_peer_max < 1:
            raise ValueError("handshake caps need 1 <= per address <= pending, per peer >= 1")
        self._pending_max = pending_max
        self._per_address_max = per_address_max
        self._per_peer_max = per_peer_max
        self._by_address: collections.Counter[str] = collections.Counter()
        self._shared = 0  # pending handshakes from addresses that are no peer's
        self._configured: collections.Counter[str] = collections.Counter()
        self._learned: dict[PublicKey, str] = {}
        self._peers_at: collections.Counter[str] = collections.Counter()  # address -> peers

    @property
    def pending(self) -> int:
        return self._by_address.total()

    def add_configured(self, addresses: Iterable[str]) -> None:
        """Addresses of configured peers, one entry per peer (from the peer list, resolved)."""
        self._configured.update(normalize_address(a) for a in addresses)
        self._refresh()

    def learn(self, key: PublicKey, address: str) -> None:
        """``key`` was authenticated from ``address``: keep slots for it there."""
        if address != "unknown" and self._learned.get(key) != address:
            self._learned[key] = address
            self._refresh()

    def take(self, address: str) -> Slot | SlotRefusal:
        """A slot for a new inbound connection from ``address``, or why there is none."""
        count = self._by_address[address]
        peers = self._peers_at.get(address, 0)
        if peers:
            if count >= self._per_peer_max * peers:
                return SlotRefusal.TOO_MANY_FROM_ADDRESS
            slot = Slot(address, reserved=True)
        else:
            if count >= self._per_address_max:
                return SlotRefusal.TOO_MANY_FROM_ADDRESS
            if self._shared >= self._pending_max:
                return SlotRefusal.TOO_MANY_PENDING
            self._shared += 1
            slot = Slot(address, reserved=False)
        self._by_address[address] = count + 1
        return slot

    def release(self, slot: Slot) -> None:
        left = self._by_address[slot.address] - 1
        if left > 0:
            self._by_address[slot.address] = left
        else:
            del self._by_address[slot.address]
        if not slot.reserved:
            self._shared -= 1

    def _refresh(self) -> None:
        self._peers_at = self._configured + collections.Counter(self._learned.values())


class RefusalLog:
    """Rate-limited warnings for refused inbound connections; see the module docstring."""

    __slots__ = ("_addresses", "_interval_s", "_logger", "_reasons", "_timer", "_window_start")

    def __init__(
        self, logger: logging.Logger, interval_s: float = P2P_REFUSAL_LOG_INTERVAL_S
    ) -> None:
        if interval_s <= 0:
            raise ValueError("the refusal log interval must be positive")
        self._logger = logger
        self._interval_s = interval_s
        self._window_start: float | None = None  # None: quiet, the next one is logged in full
        self._reasons: collections.Counter[str] = collections.Counter()
        self._addresses: collections.Counter[str] = collections.Counter()
        self._timer: asyncio.TimerHandle | None = None

    def refused(self, reason: str, address: str, line: str) -> None:
        """One refusal: ``line`` is logged if it opens an interval, otherwise counted."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._window_start is None or now - self._window_start >= self._interval_s:
            self._flush()
            self._window_start = now
            self._logger.warning("%s", line)
            return
        self._reasons[reason] += 1
        if address in self._addresses or len(self._addresses) < P2P_REFUSAL_LOG_ADDRESSES_MAX:
            self._addresses[address] += 1
        if self._timer is None:
            delay_s = self._window_start + self._interval_s - now
            self._timer = loop.call_later(delay_s, self._on_timer)

    def close(self) -> None:
        """Log what is still counted (at shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()
        # Refusals kept coming: the next interval opens now and is summarised too.
        self._window_start = asyncio.get_running_loop().time()

    def _flush(self) -> None:
        total = self._reasons.total()
        if total == 0:
            return
        reasons = ", ".join(f"{name} {count}" for name, count in self._reasons.most_common())
        top, top_count = self._addresses.most_common(1)[0]
        distinct = len(self._addresses)
        more = "+" if distinct >= P2P_REFUSAL_LOG_ADDRESSES_MAX else ""
        self._logger.warning(
            "%d more inbound connections refused in the last %.0f s (%s), "
            "from %d%s addresses, most from %s (%d)",
            total,
            self._interval_s,
            reasons,
            distinct,
            more,
            top,
            top_count,
        )
        self._reasons.clear()
        self._addresses.clear()
