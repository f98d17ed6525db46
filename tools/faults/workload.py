"""A bounded client workload that records every call and how it ended.

Set-up (one batch, on a healthy cluster): two merchants, a campaign, its
funding and pots for ``holders`` citizens. Then ``clients`` concurrent
clients each take a holder and pay merchants with it, one payment after the
other (sequence 0, 1, ...), until stopped, a deadline, or ``calls_max``.

Each call is recorded when invoked and again when it ends:

- ``ok``: a node said the transaction is in a block (``?wait=true`` gave a height);
- ``failed``: every attempt was refused before admission (422, 429, 503), so the
  transaction never entered any mempool and must never appear in a block;
- ``unknown``: anything else (a timeout, a closed connection, accepted but not
  yet in a block when the client gave up): it may or may not be applied.

A call is retried, same bytes (idempotent by id), on other nodes, a bounded
number of times. After a call that is not ``ok`` the client drops that holder
(its next sequence is unknown) and takes a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from node.ledger import tx as t
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import Genesis

DAY_MS: Final = 86_400_000
DEFINITE_REFUSALS: Final = frozenset({422, 429, 503})  # nothing was admitted
SETUP_TIMEOUT_S: Final = 60.0


class Outcome(enum.Enum):
    INVOKED = "invoked"  # still running, or cut short when the workload stopped
    OK = "ok"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Attempt:
    node: int
    status: int | None  # HTTP status; None: no answer
    detail: str
    seconds: float


@dataclass
class Call:
    client: int
    kind: str
    sender: bytes
    sequence: int
    tx_id: bytes
    data: bytes
    invoked_s: float
    completed_s: float | None = None
    outcome: Outcome = Outcome.INVOKED
    height: int | None = None
    attempts: list[Attempt] = field(default_factory=list)


@dataclass
class History:
    calls: list[Call] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {o.value: 0 for o in Outcome}
        for call in self.calls:
            out[call.outcome.value] += 1
        return out

    def ids(self, outcome: Outcome) -> set[bytes]:
        return {c.tx_id for c in self.calls if c.outcome is outcome}

    def latencies_s(self) -> list[float]:
        return sorted(
            c.completed_s - c.invoked_s
            for c in self.calls
            if c.outcome is Outcome.OK and c.completed_s is not None
        )


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    clients: int = 4
    holders: int = 200
    pot_cents: int = 5_000
    calls_max: int = 5_000
    attempts: int = 3
    call_timeout_s: float = 6.0
    pause_s: tuple[float, float] = (0.05, 0.4)  # between two calls of one client


class Workload:
    """Drive with ``setup`` then ``run`` on the cluster's loop; ``stop`` from any thread."""

    def __init__(
        self,
        urls: Sequence[str],
        genesis: Genesis,
        keys: dict[str, Signer],
        seed: int,
        spec: WorkloadSpec = WorkloadSpec(),
        targets: Callable[[], Sequence[int]] | None = None,
    ) -> None:
        self.urls = list(urls)
        self.genesis = genesis
        self.spec = spec
        self.history = History()
        self._rng = random.Random(f"workload:{seed}")
        self._targets = targets or (lambda: range(len(self.urls)))
        self._issuer = keys["issuer0"]
        self._bank = keys["bank"]
        self._campaign = f"faults-{seed}"[:32]
        self._merchants = [Signer(digest(f"faults:{seed}:shop:{i}".encode())) for i in range(2)]
        self._holders: deque[Signer] = deque(
            Signer(digest(f"faults:{seed}:holder:{i}".encode())) for i in range(spec.holders)
        )
        self._stop: asyncio.Event | None = None
        self._start = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self._start

    # --- set-up ------------------------------------------------------------------------

    def setup_txs(self) -> list[tuple[str, t.SignedTx]]:
        g, chain = self.genesis, self.genesis.chain_id
        zone = g.issuers[0].zones[0]
        issuer, bank = self._issuer, self._bank
        code, pot, n = self._campaign, self.spec.pot_cents, self.spec.holders
        payloads: list[tuple[Signer, int, t.Payload]] = [
            (
                issuer,
                0,
                t.RegisterMerchant(
                    self._merchants[0].public_key,
                    "Épicerie test",
                    "47.11",
                    zone,
                    digest(b"m0"),
                    False,
                ),
            ),
            (
                issuer,
                1,
                t.RegisterMerchant(
                    self._merchants[1].public_key,
                    "Boulangerie test",
                    "47.24",
                    zone,
                    digest(b"m1"),
                    True,
                ),
            ),
            (
                issuer,
                2,
                t.CreateCampaign(
                    code,
                    "Fault campaign",
                    (),
                    (),
                    g.genesis_time_ms - DAY_MS,
                    g.genesis_time_ms + 30 * DAY_MS,
                    pot,
                ),
            ),
            (bank, 0, t.Fund(code, n * pot, f"DEP-{code}")),
            (
                issuer,
                3,
                t.Allocate(
                    code, tuple(t.Allocation(h.public_key, pot, zone) for h in self._holders)
                ),
            ),
        ]
        return [
            (p.KIND.name.lower(), t.Tx(chain, who.public_key, seq, p).sign(who))
            for who, seq, p in payloads
        ]

    async def setup(self) -> None:
        """Submit the set-up batch until every transaction is in a block (bounded)."""
        signed = self.setup_txs()
        calls = [self._record(-1, kind, s) for kind, s in signed]
        body = {"txs": [s.encode().hex() for _, s in signed]}
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        timeout = aiohttp.ClientTimeout(total=self.spec.call_timeout_s * 2)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for node in itertools.cycle(range(len(self.urls))):
                url = self.urls[node] + "/v1/transactions?wait=true"
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                    async with session.post(url, json=body) as response:
                        answer = await response.json(content_type=None)
                    results = answer.get("results", []) if isinstance(answer, dict) else []
                    heights = [r.get("height") for r in results if isinstance(r, dict)]
                    if len(heights) == len(calls) and all(isinstance(h, int) for h in heights):
                        for call, height in zip(calls, heights, strict=True):
                            call.outcome, call.height = Outcome.OK, height
                            call.completed_s = self.now_s()
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError("the workload set-up was not committed in time")
                await asyncio.sleep(0.5)

    # --- the run -------------------------------------------------------------------------

    async def run(self, duration_s: float) -> None:
        """Clients pay until ``stop``, ``duration_s`` or ``calls_max``; in-flight calls end."""
        self._stop = asyncio.Event()
        deadline = time.monotonic() + duration_s
        timeout = aiohttp.ClientTimeout(total=self.spec.call_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            clients = [
                asyncio.create_task(self._client(session, c, deadline))
                for c in range(self.spec.clients)
            ]
            await asyncio.gather(*clients)

    def stop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask the clients to stop after their current call (thread-safe)."""
        stop = self._stop
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)

    def _stopping(self, deadline: float) -> bool:
        stop = self._stop
        return (
            (stop is not None and stop.is_set())
            or time.monotonic() > deadline
            or len(self.history.calls) >= self.spec.calls_max
        )

    async def _client(self, session: aiohttp.ClientSession, client: int, deadline: float) -> None:
        rng = random.Random(f"{self._rng.random()}:{client}")
        while not self._stopping(deadline) and self._holders:
            holder = self._holders.popleft()
            spent, sequence = 0, 0
            while not self._stopping(deadline):
                cents = rng.randint(50, 250)
                if spent + cents > self.spec.pot_cents:
                    break
                merchant = self._merchants[sequence % 2].public_key
                payload = t.Pay(self._campaign, merchant, cents, f"c{client}")
                signed = t.Tx(self.genesis.chain_id, holder.public_key, sequence, payload).sign(
                    holder
                )
                call = self._record(client, "pay", signed)
                await self._submit(session, call, rng)
                if call.outcome is not Outcome.OK:
                    break  # its next sequence is unknown: take another holder
                spent, sequence = spent + cents, sequence + 1
                await asyncio.sleep(rng.uniform(*self.spec.pause_s))

    # --- one payment, everywhere at once -------------------------------------------------

    def signed_payment(self, cents: int, memo: str) -> t.SignedTx:
        """A fresh holder's first payment (sequence 0), signed; the holder is used up."""
        holder = self._holders.pop()
        payload = t.Pay(self._campaign, self._merchants[0].public_key, cents, memo)
        return t.Tx(self.genesis.chain_id, holder.public_key, 0, payload).sign(holder)

    async def submit_everywhere(self, signed: t.SignedTx, nodes: Sequence[int]) -> Call:
        """The same bytes to every node of ``nodes`` at once; ok if any says it is in a block."""
        call = self._record(-2, "pay", signed)
        timeout = aiohttp.ClientTimeout(total=self.spec.call_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            answers = await asyncio.gather(*(self._post(session, n, call.data) for n in nodes))
        for node, (status, height, detail) in zip(nodes, answers, strict=True):
            call.attempts.append(Attempt(node, status, detail, self.now_s()))
            if height is not None:
                call.outcome, call.height = Outcome.OK, height
        definite = all(status in DEFINITE_REFUSALS for status, _, _ in answers)
        if call.outcome is not Outcome.OK:
            call.outcome = Outcome.FAILED if definite else Outcome.UNKNOWN
        call.completed_s = self.now_s()
        return call

    async def retry(self, call: Call, nodes: Sequence[int]) -> Call:
        """The client retries a call that did not end ok, same bytes, on ``nodes``."""
        timeout = aiohttp.ClientTimeout(total=self.spec.call_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for node in nodes:
                status, height, detail = await self._post(session, node, call.data)
                call.attempts.append(Attempt(node, status, detail, self.now_s()))
                if height is not None:
                    call.outcome, call.height = Outcome.OK, height
                    break
        call.completed_s = self.now_s()
        return call

    async def heights_told(self, data: bytes, nodes: Sequence[int]) -> list[int | None]:
        """The same bytes submitted again to each node: the height each says they are at."""
        timeout = aiohttp.ClientTimeout(total=self.spec.call_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            answers = await asyncio.gather(*(self._post(session, n, data) for n in nodes))
        return [height for _, height, _ in answers]

    def _record(self, client: int, kind: str, signed: t.SignedTx) -> Call:
        call = Call(
            client,
            kind,
            signed.tx.sender,
            signed.tx.sequence,
            signed.tx_id,
            signed.encode(),
            self.now_s(),
        )
        self.history.calls.append(call)
        return call

    async def _submit(self, session: aiohttp.ClientSession, call: Call, rng: random.Random) -> None:
        targets = list(self._targets())
        first = rng.randrange(len(targets))
        definite = True
        for attempt in range(self.spec.attempts):
            node = targets[(first + attempt) % len(targets)]
            status, height, detail = await self._post(session, node, call.data)
            call.attempts.append(Attempt(node, status, detail, self.now_s()))
            if height is not None:
                call.outcome, call.height = Outcome.OK, height
                call.completed_s = self.now_s()
                return
            definite = definite and status in DEFINITE_REFUSALS
            await asyncio.sleep(rng.uniform(0.2, 0.6))
        call.outcome = Outcome.FAILED if definite else Outcome.UNKNOWN
        call.completed_s = self.now_s()

    async def _post(
        self, session: aiohttp.ClientSession, node: int, data: bytes
    ) -> tuple[int | None, int | None, str]:
        url = self.urls[node] + "/v1/transactions?wait=true"
        try:
            async with session.post(url, json={"tx": data.hex()}) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return None, None, type(exc).__name__
        if not isinstance(body, dict):
            return status, None, "not an object"
        height = body.get("height")
        if status == 200 and isinstance(height, int):
            return status, height, "ok"
        return status, None, str(body.get("result") or body.get("detail") or "")
