"""TCP proxies between nodes: one per directed dial, faults set per direction of traffic.

Node ``i`` dials node ``j`` through the proxy ``(i, j)``. A connection carries
traffic both ways, so the fault on traffic ``src -> dst`` applies to the
client-to-server half of proxy ``(src, dst)`` and to the server-to-client
half of proxy ``(dst, src)``: whichever link the two nodes settle on, the
fault holds.

The links are encrypted and framed (``node.p2p``: a 40-byte hello each way,
then frames of a 4-byte length and an AEAD ciphertext whose nonce is a
per-direction counter), so the proxy works on whole units: the hello, then
frames. A delayed unit keeps its order (slow link). A cut direction swallows
every unit (a black hole: the connection stays open, the handshake of a new
one times out). Dropping, duplicating or reordering a frame makes the
receiver's decryption fail and the link close and reconnect: that is what a
corrupting path does to an authenticated link, and it is how "flapping"
links are produced. The first two units of each direction (hello and
authentication frame) are only ever delayed or cut, never mangled, so a link
that is allowed up can come up.

All randomness comes from one ``random.Random`` per proxy half, seeded: the
decisions replay (the timing of real processes does not).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from node.p2p.handshake import HELLO_BYTES
from node.p2p.link import PREFIX_BYTES
from node.protocol.limits import FRAME_BYTES_MAX

HOST: Final = "127.0.0.1"
PROTECTED_UNITS: Final = 2  # hello and authentication frame of each direction
QUEUED_BYTES_MAX: Final = 32 * 1024 * 1024  # per half-connection; beyond, units are dropped
CONNECT_TIMEOUT_S: Final = 5.0
CONNECTIONS_MAX: Final = 64  # per proxy; more are refused


@dataclass(frozen=True, slots=True)
class Fault:
    """What happens to traffic in one direction. ``Fault()`` is a healthy link."""

    cut: bool = False
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    drop: float = 0.0  # probability per frame
    duplicate: float = 0.0
    reorder: float = 0.0  # probability that a frame is held back and overtaken
    reorder_window_ms: float = 60.0

    def __post_init__(self) -> None:
        for p in (self.drop, self.duplicate, self.reorder):
            if not 0.0 <= p <= 1.0:
                raise ValueError("probabilities are within [0, 1]")
        if min(self.delay_ms, self.jitter_ms, self.reorder_window_ms) < 0:
            raise ValueError("delays are >= 0")

    @property
    def mangles(self) -> bool:
        return self.drop > 0 or self.duplicate > 0 or self.reorder > 0


CALM: Final = Fault()
CUT: Final = Fault(cut=True)


@dataclass(slots=True)
class DirectionStats:
    """Counters of one direction of traffic (``src -> dst``), over every connection."""

    units: int = 0
    bytes: int = 0
    cut: int = 0
    dropped: int = 0
    duplicated: int = 0
    reordered: int = 0
    delayed: int = 0
    overflowed: int = 0


@dataclass(slots=True)
class ProxyStats:
    connections: int = 0
    refused: int = 0
    upstream_failures: int = 0


Direction = tuple[int, int]


class ProxyNet:
    """The proxies of one cluster and the faults on its directions. Lives on one loop.

    ``set_fault``/``fault`` may be called from any thread (a dict entry is
    replaced atomically); ``start``, ``reset`` and ``close`` run on the loop.
    """

    def __init__(self, seed: int) -> None:
        self._faults: dict[Direction, Fault] = {}
        self.stats: dict[Direction, DirectionStats] = {}
        self.proxies: dict[Direction, LinkProxy] = {}
        self._seed = seed

    def fault(self, src: int, dst: int) -> Fault:
        return self._faults.get((src, dst), CALM)

    def set_fault(self, src: int, dst: int, fault: Fault) -> None:
        self._faults[(src, dst)] = fault

    def set_faults(self, directions: Iterable[Direction], fault: Fault) -> None:
        for src, dst in directions:
            self.set_fault(src, dst, fault)

    def calm(self) -> None:
        """Every direction healthy again."""
        self._faults.clear()

    def direction_stats(self, src: int, dst: int) -> DirectionStats:
        return self.stats.setdefault((src, dst), DirectionStats())

    async def start(self, dialer: int, target: int, target_port: int, listen_port: int = 0) -> int:
        """A proxy for ``dialer`` dialing ``target``; the port it listens on (0: any free)."""
        proxy = LinkProxy(self, dialer, target, target_port, self._seed)
        await proxy.start(listen_port)
        self.proxies[(dialer, target)] = proxy
        return proxy.port

    async def close(self) -> None:
        for proxy in self.proxies.values():
            await proxy.close()
        self.proxies.clear()

    def totals(self) -> DirectionStats:
        total = DirectionStats()
        for stats in self.stats.values():
            for name in DirectionStats.__dataclass_fields__:
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        return total


class LinkProxy:
    """Listens on 127.0.0.1 (any free port) and forwards to the target node's p2p port."""

    def __init__(self, net: ProxyNet, dialer: int, target: int, target_port: int, seed: int):
        self._net = net
        self.dialer = dialer
        self.target = target
        self._target_port = target_port
        self._rng_up = random.Random(f"{seed}:{dialer}->{target}:up")
        self._rng_down = random.Random(f"{seed}:{dialer}->{target}:down")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = ProxyStats()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, listen_port: int = 0) -> None:
        self._server = await asyncio.start_server(self._on_client, HOST, listen_port)

    def abort_connections(self) -> None:
        for writer in tuple(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.abort_connections()
        tasks = tuple(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= 2 * CONNECTIONS_MAX:
            self.stats.refused += 1
            writer.transport.abort()
            return
        self._writers.add(writer)
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                server_r, server_w = await asyncio.open_connection(HOST, self._target_port)
        except (OSError, TimeoutError):
            self.stats.upstream_failures += 1
            self._writers.discard(client_w)
            client_w.transport.abort()
            return
        self._writers.add(server_w)
        up = _Half(self._net, (self.dialer, self.target), client_r, server_w, self._rng_up)
        down = _Half(self._net, (self.target, self.dialer), server_r, client_w, self._rng_down)
        halves = [asyncio.create_task(up.run()), asyncio.create_task(down.run())]
        try:
            await asyncio.wait(halves, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for writer in (client_w, server_w):
                writer.transport.abort()
                self._writers.discard(writer)
            for task in halves:
                task.cancel()
            await asyncio.gather(*halves, return_exceptions=True)


@dataclass(order=True, slots=True)
class _Queued:
    release: float
    order: int
    data: bytes = field(compare=False)


class _Half:
    """One direction of one connection: read units, apply the fault, write them out."""

    def __init__(
        self,
        net: ProxyNet,
        direction: Direction,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        rng: random.Random,
    ) -> None:
        self._net = net
        self._direction = direction
        self._reader = reader
        self._writer = writer
        self._rng = rng
        self._heap: list[_Queued] = []
        self._order = itertools.count()
        self._queued_bytes = 0
        self._last_release = 0.0
        self._wake = asyncio.Event()
        self._stats = net.direction_stats(*direction)

    async def run(self) -> None:
        """Until either side closes (or a unit cannot be a frame)."""
        tasks = {asyncio.create_task(self._read_loop()), asyncio.create_task(self._send_loop())}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_loop(self) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, OSError, ValueError):
            await self._read_units()

    async def _read_units(self) -> None:
        for count in itertools.count():
            if count == 0:
                unit = await self._reader.readexactly(HELLO_BYTES)
            else:
                prefix = await self._reader.readexactly(PREFIX_BYTES)
                length = int.from_bytes(prefix, "big")
                if length > FRAME_BYTES_MAX:
                    raise ValueError("frame larger than any node sends")
                unit = prefix + await self._reader.readexactly(length)
            self._admit(unit, protected=count < PROTECTED_UNITS)

    def _admit(self, unit: bytes, protected: bool) -> None:
        stats, rng = self._stats, self._rng
        fault = self._net.fault(*self._direction)
        stats.units += 1
        stats.bytes += len(unit)
        if fault.cut:
            stats.cut += 1
            return
        mangle = fault.mangles and not protected
        if mangle and rng.random() < fault.drop:
            stats.dropped += 1
            return
        now = asyncio.get_running_loop().time()
        delay_s = (fault.delay_ms + rng.random() * fault.jitter_ms) / 1000
        if delay_s > 0:
            stats.delayed += 1
        release = max(now + delay_s, self._last_release)
        if mangle and rng.random() < fault.reorder:
            stats.reordered += 1
            self._push(release + fault.reorder_window_ms / 1000, unit)  # later ones overtake it
        else:
            self._last_release = release
            self._push(release, unit)
        if mangle and rng.random() < fault.duplicate:
            stats.duplicated += 1
            self._push(release, unit)

    def _push(self, release: float, unit: bytes) -> None:
        if self._queued_bytes + len(unit) > QUEUED_BYTES_MAX:
            self._stats.overflowed += 1
            return
        self._queued_bytes += len(unit)
        heapq.heappush(self._heap, _Queued(release, next(self._order), unit))
        self._wake.set()

    async def _send_loop(self) -> None:
        with contextlib.suppress(OSError):
            await self._send_units()

    async def _send_units(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._heap:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait_s = self._heap[0].release - loop.time()
            if wait_s > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()  # an earlier unit may arrive meanwhile
                continue
            item = heapq.heappop(self._heap)
            self._queued_bytes -= len(item.data)
            self._writer.write(item.data)
            await self._writer.drain()
