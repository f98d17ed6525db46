"""Demo data for a devnet: merchants, campaigns, funding, allocations, then a
gentle stream of payments, transfers, redemptions and settlements.

It is a client: it signs transactions with the demo accounts' keys (written
by ``node.devnet``) and submits them through the nodes' HTTP API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import aiohttp

from node.crypto import Digest, PublicKey, Signer, digest
from node.genesis import Genesis
from node.ledger import tx as t

logger = logging.getLogger(__name__)

DAY_MS: Final = 86_400_000
SHOPS: Final = (
    ("Boulangerie du Marché", "47.24"),
    ("Épicerie Fine", "47.11"),
    ("Librairie Papyrus", "47.61"),
    ("Brasserie de la Place", "56.10"),
    ("Coiffure Élégance", "96.02"),
    ("Boutique Mode", "47.71"),
)
SUPPLIER: Final = ("Grossiste Alimentaire", "46.39")
HOLDERS_PER_ISSUER: Final = 120
POT_CENTS: Final = 5_000


@dataclass
class Account:
    signer: Signer
    sequence: int | None = None  # fetched from a node on first use (a devnet may be rerun)

    @property
    def key(self) -> PublicKey:
        return self.signer.public_key


@dataclass
class Demo:
    genesis: Genesis
    urls: list[str]
    keys: dict[str, Signer]
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    accounts: dict[bytes, Account] = field(default_factory=dict)
    merchants: dict[bytes, list[Account]] = field(default_factory=dict)  # by issuer key
    holders: dict[str, list[Account]] = field(default_factory=dict)  # by campaign
    payouts: list[Digest] = field(default_factory=list)  # opened, not yet settled

    def account(self, signer: Signer) -> Account:
        return self.accounts.setdefault(signer.public_key, Account(signer))

    async def submit(
        self, session: aiohttp.ClientSession, who: Account, p: t.Payload
    ) -> Digest | None:
        """Submit and wait for the block; the transaction id, or None if refused."""
        base = self.rng.choice(self.urls)
        try:
            if who.sequence is None:
                async with session.get(f"{base}/v1/accounts/{who.key.hex()}") as response:
                    who.sequence = int((await response.json(content_type=None))["sequence"])
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            logger.info("demo: no sequence for %s: %s", who.key.hex()[:12], exc)
            return None
        signed = t.Tx(self.genesis.chain_id, who.key, who.sequence, p).sign(who.signer)
        url = base + "/v1/transactions?wait=true"
        try:
            async with session.post(url, json={"tx": signed.encode().hex()}) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.info("demo: %s not submitted: %s", p.KIND.name.lower(), exc)
            return None
        if response.status in (200, 202):
            who.sequence += 1
            return signed.tx_id
        if body.get("result") == "BAD_SEQUENCE":
            who.sequence = None  # ask again next time
        logger.info("demo: %s refused: %s", p.KIND.name.lower(), body.get("result"))
        return None


def load_keys(path: Path) -> dict[str, Signer]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {name: Signer(bytes.fromhex(seed)) for name, seed in raw.items()}


async def run_demo(demo: Demo, stop: asyncio.Event, now_ms: int) -> None:
    timeout = aiohttp.ClientTimeout(total=40)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await _set_up(demo, session, now_ms)
        logger.info("demo: set-up done; streaming payments")
        while not stop.is_set():
            await _one_step(demo, session)
            try:
                async with asyncio.timeout(demo.rng.uniform(0.3, 1.2)):
                    await stop.wait()
            except TimeoutError:
                pass


async def _set_up(demo: Demo, session: aiohttp.ClientSession, now_ms: int) -> None:
    bank = demo.account(demo.keys["bank"])
    for n, issuer_info in enumerate(demo.genesis.issuers):
        issuer = demo.account(demo.keys[f"issuer{n}"])
        shops = []
        for i, (name, category) in enumerate((*SHOPS, SUPPLIER)):
            shop = demo.account(Signer(digest(f"demo-shop:{n}:{i}".encode())))
            zone = issuer_info.zones[i % len(issuer_info.zones)]
            ref = digest(f"BE{n:02d}{i:012d}".encode())
            label = f"{name} ({issuer_info.territory})"
            p = t.RegisterMerchant(shop.key, label, category, zone, ref, i % 2 == 0)
            if await demo.submit(session, issuer, p) is not None:
                shops.append(shop)
        demo.merchants[issuer.key] = shops
        code = f"relance-{n}-{now_ms // 1000}"
        campaign = t.CreateCampaign(
            code,
            f"Chèques relance {issuer_info.territory}",
            (),
            ("47", "56", "96"),
            now_ms - DAY_MS,
            now_ms + 90 * DAY_MS,
            POT_CENTS,
        )
        await demo.submit(session, issuer, campaign)
        fund = t.Fund(code, HOLDERS_PER_ISSUER * POT_CENTS, f"DEP-{code}")
        await demo.submit(session, bank, fund)
        people = [
            demo.account(Signer(digest(f"demo-holder:{n}:{h}".encode())))
            for h in range(HOLDERS_PER_ISSUER)
        ]
        allocations = tuple(
            t.Allocation(p.key, POT_CENTS, issuer_info.zones[h % len(issuer_info.zones)])
            for h, p in enumerate(people)
        )
        if await demo.submit(session, issuer, t.Allocate(code, allocations)) is not None:
            demo.holders[code] = people


async def _one_step(demo: Demo, session: aiohttp.ClientSession) -> None:
    """One random action: mostly payments, some transfers, redemptions and settlements."""
    if not demo.holders:
        return
    code = demo.rng.choice(sorted(demo.holders))
    n = int(code.split("-")[1])
    issuer_key = demo.genesis.issuers[n].public_key
    shops = demo.merchants.get(issuer_key, [])
    if len(shops) < 3:
        return
    roll = demo.rng.random()
    if roll < 0.75:
        holder = demo.rng.choice(demo.holders[code])
        index = demo.rng.randrange(len(shops) - 1)  # the last shop is a wholesaler
        amount = demo.rng.randint(150, 1_800)
        tx_id = await demo.submit(session, holder, t.Pay(code, shops[index].key, amount, "achat"))
        if tx_id is not None and index % 2 == 0:  # even shops have auto-redeem on
            demo.payouts.append(tx_id)
    elif roll < 0.85:
        shop = shops[demo.rng.randrange(1, len(shops) - 1, 2)]
        await demo.submit(session, shop, t.Transfer(shops[-1].key, issuer_key, 500, "stock"))
    elif roll < 0.93:
        shop = shops[demo.rng.randrange(1, len(shops), 2)]
        tx_id = await demo.submit(session, shop, t.Redeem(issuer_key, 300))
        if tx_id is not None:
            demo.payouts.append(tx_id)
    elif demo.payouts:
        batch, demo.payouts = demo.payouts[:50], demo.payouts[50:]
        settlements = tuple(t.Settlement(p, f"SEPA-{p.hex()[:16]}") for p in batch)
        bank = demo.account(demo.keys["bank"])
        if await demo.submit(session, bank, t.Settle(settlements)) is None:
            demo.payouts.extend(batch)
