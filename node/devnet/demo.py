"""Demo data for a devnet: each commune's simulated town (``node.devnet.town``), live.

The set-up opens every commune's town at once (the centre's shops by NACE
category and the suppliers, a campaign, its funding, an allocation to each
household with its home zone). Then the towns live hour by simulated hour,
``SIM_HOUR_S`` seconds of real time each, from a Friday morning: households
shop at the shops open that hour, shops restock from the wholesaler and
redeem, other zones' shops join, the commune tops up spent pots on Mondays,
and the bank settles the open payouts on weekday mornings and afternoons.
Block times stay real: the rhythm is compressed, not replayed.

It is a client: it signs transactions with the demo accounts' keys (written
by ``node.devnet.network``) and submits them through the nodes' HTTP API, one batch
per simulated hour. Refused or unreachable moves are simply not recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from node.devnet.network import COMMUNE_KEY_NAMES
from node.devnet.town.model import Town
from node.devnet.town.rhythm import Move, Rhythm, SimHour
from node.ledger import tx as t
from node.protocol import limits
from node.protocol.crypto import Digest, PublicKey, Signer
from node.protocol.genesis import Genesis

logger = logging.getLogger(__name__)

DAY_MS: Final = 86_400_000
SIM_HOUR_S: Final = 2.0  # real seconds per simulated hour: a day in 48 s, a week in 5.6 min
SIM_START: Final = SimHour(weekday=4, hour=7)  # a Friday, 7 h
HOUSEHOLDS_PER_ISSUER: Final = 120
POT_CENTS: Final = 10_000  # a few purchases each; spent pots are topped up on Mondays
CAMPAIGN_DAYS: Final = 365
SETTLE_HOURS: Final = (10, 16)  # weekdays
SETTLEMENTS_PER_TX: Final = 200
BATCH_TXS: Final = 500
SET_UP_ATTEMPTS: Final = 5
UNREACHABLE: Final = "UNREACHABLE"
RETRYABLE: Final = frozenset({UNREACHABLE, "BAD_SEQUENCE", "MEMPOOL_FULL"})
assert BATCH_TXS <= limits.HTTP_SUBMIT_BATCH_TXS_MAX


@dataclass
class Account:
    signer: Signer
    sequence: int | None = None  # fetched from a node on first use (a devnet may be rerun)

    @property
    def key(self) -> PublicKey:
        return self.signer.public_key


@dataclass(frozen=True, slots=True)
class Outcome:
    tx_id: Digest | None  # None: refused or not submitted
    result: str  # "OK", a ledger result code name, or UNREACHABLE


@dataclass
class Demo:
    genesis: Genesis
    urls: list[str]
    keys: dict[str, Signer]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    accounts: dict[bytes, Account] = field(default_factory=dict)
    towns: list[Rhythm] = field(default_factory=list)  # one per commune
    payouts: list[Digest] = field(default_factory=list)  # opened, not yet settled
    # Shops the bank's settlement service pays by its pain.001 files (node.devnet.demo_bank): the
    # demo does not settle their payouts itself.
    paid_by_files: set[bytes] = field(default_factory=set)

    def by_files(self, move: Move) -> bool:
        """Whether the payout ``move`` opens is paid by the bank's files (``paid_by_files``)."""
        p = move.payload
        payee = p.merchant if isinstance(p, t.Pay) else move.signer.public_key
        return payee in self.paid_by_files

    def account(self, signer: Signer) -> Account:
        return self.accounts.setdefault(signer.public_key, Account(signer))

    async def submit(
        self, session: aiohttp.ClientSession, who: Account, p: t.Payload
    ) -> Digest | None:
        """Submit and wait for the block; the transaction id, or None if refused."""
        (outcome,) = await self.submit_all(session, [(who.signer, p)])
        return outcome.tx_id

    async def submit_all(
        self, session: aiohttp.ClientSession, items: Sequence[tuple[Signer, t.Payload]]
    ) -> list[Outcome]:
        """Submit ``items`` in order as one batch to one node and wait for the block."""
        base = self.rng.choice(self.urls)
        who = [self.account(signer) for signer, _ in items]
        for account in {a.key: a for a in who if a.sequence is None}.values():
            await self._fetch_sequence(session, base, account)
        offsets: dict[bytes, int] = {}
        signed: list[t.SignedTx | None] = []
        for account, (_, p) in zip(who, items, strict=True):
            if account.sequence is None:
                signed.append(None)
                continue
            n = offsets.get(account.key, 0)
            offsets[account.key] = n + 1
            tx = t.Tx(self.genesis.chain_id, account.key, account.sequence + n, p)
            signed.append(tx.sign(account.signer))
        outcomes = await self._post(session, base, [s for s in signed if s is not None])
        results = iter(outcomes)
        out = [Outcome(None, UNREACHABLE) if s is None else next(results) for s in signed]
        for account in {a.key: a for a in who}.values():
            mine = [o for a, o in zip(who, out, strict=True) if a.key == account.key]
            if account.sequence is not None and all(o.tx_id is not None for o in mine):
                account.sequence += len(mine)
            else:
                account.sequence = None  # ask again next time
        return out

    async def _fetch_sequence(
        self, session: aiohttp.ClientSession, base: str, account: Account
    ) -> None:
        try:
            async with session.get(f"{base}/v1/accounts/{account.key.hex()}") as response:
                account.sequence = int((await response.json(content_type=None))["sequence"])
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, TypeError) as exc:
            logger.info("demo: no sequence for %s: %s", account.key.hex()[:12], exc)

    async def _post(
        self, session: aiohttp.ClientSession, base: str, signed: list[t.SignedTx]
    ) -> list[Outcome]:
        if not signed:
            return []
        url = base + "/v1/transactions?wait=true"
        try:
            body = {"txs": [s.encode().hex() for s in signed]}
            async with session.post(url, json=body) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            logger.info("demo: %d transactions not submitted: %s", len(signed), exc)
            return [Outcome(None, UNREACHABLE)] * len(signed)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(signed):
            logger.info("demo: unexpected answer %s", str(answer)[:200])
            return [Outcome(None, UNREACHABLE)] * len(signed)
        out = []
        for s, result in zip(signed, results, strict=True):
            ok = isinstance(result, dict) and result.get("accepted") is True
            code = str(result.get("result", UNREACHABLE)) if isinstance(result, dict) else "?"
            if not ok:
                logger.info("demo: %s refused: %s", s.tx.payload.KIND.name.lower(), code)
            out.append(Outcome(s.tx_id if ok else None, "OK" if ok else code))
        return out


def load_keys(path: Path) -> dict[str, Signer]:
    """The demo keys by name; the communes' (named by commune) also as ``issuer0``,
    ``issuer1``... in the devnet's order, for scripts that count communes."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    keys = {name: Signer(bytes.fromhex(seed)) for name, seed in raw.items()}
    for n, name in enumerate(n for n in COMMUNE_KEY_NAMES if n in keys):
        keys.setdefault(f"issuer{n}", keys[name])
    return keys


async def run_demo(
    demo: Demo, stop: asyncio.Event, now_ms: int, start: SimHour = SIM_START
) -> None:
    """Open the towns (unless ``demo`` has them already, from ``node.devnet.demo_history``), then
    play one simulated hour every ``SIM_HOUR_S`` seconds from ``start``."""
    timeout = aiohttp.ClientTimeout(total=40)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=timeout) as session:
        if not demo.towns:
            await _set_up(demo, session, now_ms)
        logger.info("demo: the towns are open; one simulated hour every %.1f s", SIM_HOUR_S)
        now = start
        while not stop.is_set():
            started = loop.time()
            await _one_hour(demo, session, now)
            now = now.next()
            pause = max(0.05, SIM_HOUR_S - (loop.time() - started))
            try:
                async with asyncio.timeout(pause):
                    await stop.wait()
            except TimeoutError:
                pass


def make_towns(demo: Demo, now_ms: int) -> list[Rhythm]:
    """One town per commune of the genesis, in its zones; new people and shops each run."""
    towns = []
    bank = demo.keys["bank"]
    for n, issuer_info in enumerate(demo.genesis.issuers):
        seed = now_ms // 1000 * 16 + n
        town = Town(seed, issuer_info.zones, HOUSEHOLDS_PER_ISSUER, POT_CENTS)
        code = f"relance-{n}-{now_ms // 1000}"
        rng = random.Random(demo.rng.randrange(2**32))
        towns.append(Rhythm(town, demo.keys[f"issuer{n}"], bank, code, rng))
    return towns


async def _set_up(demo: Demo, session: aiohttp.ClientSession, now_ms: int) -> None:
    demo.towns = make_towns(demo, now_ms)
    until_ms = now_ms + CAMPAIGN_DAYS * DAY_MS
    todo = [(town, m) for town in demo.towns for m in town.opening(now_ms - DAY_MS, until_ms)]
    for _ in range(SET_UP_ATTEMPTS):
        outcomes = await _play(demo, session, todo)
        todo = [tm for tm, o in zip(todo, outcomes, strict=True) if o.result in RETRYABLE]
        if not todo:
            return
    logger.info("demo: %d set-up transactions never went through", len(todo))


async def _one_hour(demo: Demo, session: aiohttp.ClientSession, now: SimHour) -> None:
    moves = [(town, m) for town in demo.towns for m in town.hour(now)]
    for i in range(0, len(moves), BATCH_TXS):
        await _play(demo, session, moves[i : i + BATCH_TXS])
    if now.weekday < 5 and now.hour in SETTLE_HOURS:
        await _settle(demo, session)


async def _play(
    demo: Demo, session: aiohttp.ClientSession, moves: list[tuple[Rhythm, Move]]
) -> list[Outcome]:
    outcomes = await demo.submit_all(session, [(m.signer, m.payload) for _, m in moves])
    for (town, move), outcome in zip(moves, outcomes, strict=True):
        town.record(move, outcome.tx_id is not None)
        if outcome.tx_id is not None and town.opens_payout(move) and not demo.by_files(move):
            demo.payouts.append(outcome.tx_id)
    return outcomes


async def _settle(demo: Demo, session: aiohttp.ClientSession) -> None:
    """The bank pays out what merchants redeemed, and records it on the ledger."""
    bank = demo.keys["bank"]
    batches = [
        demo.payouts[i : i + SETTLEMENTS_PER_TX]
        for i in range(0, len(demo.payouts), SETTLEMENTS_PER_TX)
    ]
    demo.payouts = []
    items: list[tuple[Signer, t.Payload]] = [
        (bank, t.Settle(tuple(t.Settlement(p, f"SEPA-{p.hex()[:16]}") for p in batch)))
        for batch in batches
    ]
    outcomes = await demo.submit_all(session, items)
    for batch, outcome in zip(batches, outcomes, strict=True):
        if outcome.result in RETRYABLE:  # not seen by the ledger: settle them next time
            demo.payouts.extend(batch)
