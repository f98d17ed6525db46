"""A live node that lived through four weeks of the simulated town (fake block clock).

The history: the town's set-up and life (``node.devnet.town.model``), then a
refund, a purchase from a supplier in another commune (money leaving the
territory), and a late holder allocated and spending after the others.
Each clock hour of the plan is one block, timed at its first transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.devnet.town.model import Step, Town, plan, sign
from node.ledger import tx as t
from node.protocol.crypto import digest
from tests.api.harness import BANK, HOUR_MS, LIEGE, NAMUR, LiveNode, key
from tests.api.test_browser import browser as browser

CAMPAIGN = "sim-namur"
DAYS = 28
SEED = 11


@dataclass
class History:
    node: LiveNode
    town: Town
    committed: list[tuple[int, t.SignedTx]]  # (block time, transaction), in block order
    liege_shop: bytes
    loner: bytes


def _blocks(signed: list[tuple[int, t.SignedTx]]) -> list[list[tuple[int, t.SignedTx]]]:
    groups: list[list[tuple[int, t.SignedTx]]] = []
    for when, item in signed:
        if groups and groups[-1][0][0] // HOUR_MS == when // HOUR_MS:
            groups[-1].append((groups[-1][0][0], item))
        else:
            groups.append([(when, item)])
    return groups


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    node = LiveNode(Path(tmp_path_factory.mktemp("analytics-node")))
    try:
        yield _live(node)
    finally:
        node.close()


def _live(node: LiveNode) -> History:
    chain = node.genesis.chain_id
    start = node.next_time_ms
    town = Town(SEED, ("NAM-1", "NAM-2"), households=120)
    steps = plan(town, NAMUR, BANK, CAMPAIGN, start, DAYS)
    liege_shop, loner = key("sim-liege-shop"), key("sim-loner")
    end = start + (DAYS + 1) * 86_400_000
    keeping = {s.signer.public_key: s for s in town.shops if s.keeps_units}
    paid = next(s for s in steps if isinstance(s.payload, t.Pay) and s.payload.merchant in keeping)
    assert isinstance(paid.payload, t.Pay)
    shop, holder = keeping[paid.payload.merchant], paid.signer
    steps += [
        Step(end, LIEGE, t.RegisterMerchant(liege_shop.public_key, "Brasserie de Liège", "11.05",
                                            "LGE-1", digest(b"lge"), False)),
        Step(end, BANK, t.Fund(CAMPAIGN, 1_000, "DEP-LONER")),
        Step(end, NAMUR, t.Allocate(CAMPAIGN, (t.Allocation(loner.public_key, 1_000, "NAM-2"),))),
        Step(end + HOUR_MS, town.wholesaler, t.Transfer(liege_shop.public_key, NAMUR.public_key,
                                                        100, "bière liégeoise")),
        Step(end + 2 * HOUR_MS, shop.signer, t.Refund(holder.public_key, CAMPAIGN, 50, "retour")),
        Step(end + 3 * HOUR_MS, loner, t.Pay(CAMPAIGN, shop.signer.public_key, 400, "seul")),
    ]  # fmt: skip
    signed = sign(steps, chain, {})
    committed: list[tuple[int, t.SignedTx]] = []
    for group in _blocks(signed):
        node.next_time_ms = group[0][0]
        node.commit(*(item for _, item in group))
        committed += group
    return History(node, town, committed, liege_shop.public_key, loner.public_key)
