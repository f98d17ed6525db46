"""The fault proxy, in process: whole units forwarded, delayed, cut, dropped, doubled,
reordered, per direction of traffic, and the first two units of a direction never mangled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from node.p2p.handshake import HELLO_BYTES
from tools.faults.proxy import CALM, CUT, Fault, ProxyNet

HOST = "127.0.0.1"


def _frame(n: int) -> bytes:
    body = f"frame-{n:04d}".encode() + bytes(16)  # as long as an AEAD tag at least
    return len(body).to_bytes(4, "big") + body


def _units(data: bytes) -> list[bytes]:
    """Split a received stream back into its hello and frames."""
    units, rest = [data[:HELLO_BYTES]], data[HELLO_BYTES:]
    while rest:
        length = int.from_bytes(rest[:4], "big")
        units.append(rest[: 4 + length])
        rest = rest[4 + length :]
    return units


class Sink:
    """A server that records what reaches it, with arrival times."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.times: list[float] = []
        self.peer: asyncio.StreamWriter | None = None

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peer = writer
        while chunk := await reader.read(65536):
            self.received += chunk
            self.times.append(time.monotonic())
        writer.close()


@asynccontextmanager
async def pair(net: ProxyNet) -> AsyncIterator[tuple[Sink, asyncio.StreamWriter]]:
    """Node 0 dials node 1 through proxy (0, 1): the client writer, and node 1's sink."""
    sink = Sink()
    server = await asyncio.start_server(sink.on_client, HOST, 0)
    port = await net.start(0, 1, server.sockets[0].getsockname()[1])
    _, writer = await asyncio.open_connection(HOST, port)
    try:
        yield sink, writer
    finally:
        writer.close()
        await net.close()
        server.close()
        await server.wait_closed()


async def send(writer: asyncio.StreamWriter, frames: range) -> list[bytes]:
    sent = [b"H" * HELLO_BYTES, *(_frame(n) for n in frames)]
    for unit in sent:
        writer.write(unit)
    await writer.drain()
    return sent


async def settle(sink: Sink, expected_bytes: int, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while len(sink.received) < expected_bytes:
            await asyncio.sleep(0.01)


def test_a_calm_link_forwards_every_unit_in_order() -> None:
    async def main() -> None:
        net = ProxyNet(seed=1)
        async with pair(net) as (sink, writer):
            sent = await send(writer, range(50))
            await settle(sink, sum(map(len, sent)))
            assert _units(bytes(sink.received)) == sent
        stats = net.direction_stats(0, 1)
        assert stats.units == 51 and stats.dropped == stats.cut == 0

    asyncio.run(main())


def test_a_slow_link_delays_and_keeps_the_order() -> None:
    async def main() -> None:
        net = ProxyNet(seed=1)
        net.set_fault(0, 1, Fault(delay_ms=150, jitter_ms=50))
        async with pair(net) as (sink, writer):
            start = time.monotonic()
            sent = await send(writer, range(20))
            await settle(sink, sum(map(len, sent)))
            assert sink.times[0] - start >= 0.14
            assert _units(bytes(sink.received)) == sent

    asyncio.run(main())


def test_dropped_and_duplicated_frames_but_never_the_handshake_units() -> None:
    async def main() -> None:
        net = ProxyNet(seed=1)
        net.set_fault(0, 1, Fault(drop=1.0))
        async with pair(net) as (sink, writer):
            sent = await send(writer, range(10))
            await asyncio.sleep(0.3)
            assert _units(bytes(sink.received)) == sent[:2]  # hello and first frame only
        assert net.direction_stats(0, 1).dropped == 9

        net = ProxyNet(seed=1)
        net.set_fault(0, 1, Fault(duplicate=1.0))
        async with pair(net) as (sink, writer):
            sent = await send(writer, range(4))
            doubled = sent[:2] + [u for u in sent[2:] for _ in range(2)]
            await settle(sink, sum(map(len, doubled)))
            assert _units(bytes(sink.received)) == doubled

    asyncio.run(main())


def test_reordered_frames_are_overtaken_by_later_ones() -> None:
    async def main() -> None:
        net = ProxyNet(seed=3)
        net.set_fault(0, 1, Fault(reorder=0.5, reorder_window_ms=80))
        async with pair(net) as (sink, writer):
            sent = await send(writer, range(30))
            await settle(sink, sum(map(len, sent)))
            got = _units(bytes(sink.received))
            assert sorted(got) == sorted(sent) and got != sent
            assert got[:2] == sent[:2]
        assert net.direction_stats(0, 1).reordered > 0

    asyncio.run(main())


def test_a_cut_direction_is_a_black_hole_until_healed() -> None:
    async def main() -> None:
        net = ProxyNet(seed=1)
        net.set_fault(0, 1, CUT)
        async with pair(net) as (sink, writer):
            await send(writer, range(5))
            await asyncio.sleep(0.3)
            assert sink.received == b""  # the connection is open, nothing gets through
            net.set_fault(0, 1, CALM)
            writer.write(_frame(99))
            await writer.drain()
            await settle(sink, len(_frame(99)))
            assert bytes(sink.received) == _frame(99)
        assert net.direction_stats(0, 1).cut == 6

    asyncio.run(main())


def test_a_fault_holds_for_its_direction_whichever_node_dialed() -> None:
    async def main() -> None:
        net = ProxyNet(seed=1)
        net.set_fault(1, 0, CUT)  # traffic from node 1 to node 0 only
        async with pair(net) as (sink, writer):
            sent = await send(writer, range(3))
            await settle(sink, sum(map(len, sent)))  # 0 -> 1 flows
            assert sink.peer is not None
            sink.peer.write(b"R" * HELLO_BYTES)  # 1 -> 0 over the link node 0 dialed
            await sink.peer.drain()
            await asyncio.sleep(0.2)
        assert net.direction_stats(1, 0).cut == 1
        assert net.direction_stats(0, 1).cut == 0

    asyncio.run(main())
