"""The merchant's page with more history than one page: its totals count every payment
and refund ever made (from the history index), and its payouts list starts with the
newest. A node of its own: the payments here would change the shared world's figures."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from node.ledger import tx as t
from node.protocol import limits
from node.text.fmt import money
from node.views.history_index import HistoryIndex
from tests.api.harness import NAMUR, LiveNode
from tests.api.test_dashboards import page
from tests.api.world import CAMPAIGN, World, seed

PAYMENTS = 110  # more than a page of history (50) and than the payouts shown (100)


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = LiveNode(Path(tmp_path_factory.mktemp("merchant-page")))
    try:
        world = seed(node)
        chain = node.genesis.chain_id
        # The bakery (no auto-redeem) redeems what it holds, then only takes payments.
        node.commit(world.bakery.sign(chain, t.Redeem(NAMUR.public_key, 734)))
        for n in range(PAYMENTS):
            node.commit(
                world.carol.sign(chain, t.Pay(CAMPAIGN, world.bakery.pk, 10, f"#{n}")),
                world.carol.sign(chain, t.Pay(CAMPAIGN, world.brasserie.pk, _amount(n), "")),
            )
        node.commit(world.bakery.sign(chain, t.Refund(world.carol.pk, CAMPAIGN, 25, "retour")))
        yield world
    finally:
        node.close()


def _amount(n: int) -> int:
    return 1 + n % 20


def _tile(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}">([^<]*)<', html)
    assert found, testid
    return found.group(1)


def test_the_totals_count_every_payment_not_one_page(busy: World) -> None:
    html = page(busy.node, "/ui/merchant", busy.node.token(busy.bakery.signer)).body.decode()
    # Alice paid 12,34 in the seed; then 60 payments of 0,10.
    assert _tile(html, "received") == money(1_234 + PAYMENTS * 10)
    assert _tile(html, "refunded") == money(25)
    totals = busy.node.run(lambda: busy.node.index.merchant_totals(busy.bakery.pk))
    assert (totals.received_cents, totals.refunded_cents) == (1_234 + PAYMENTS * 10, 25)


def test_the_newest_payouts_come_first(busy: World) -> None:
    html = page(busy.node, "/ui/merchant", busy.node.token(busy.brasserie.signer)).body.decode()
    # The brasserie redeems automatically: each payment opened a payout of its amount.
    amounts = re.findall(r'data-testid="payout-amount">([^<]*)<', html)
    newest = [money(_amount(n)) for n in range(PAYMENTS - 1, PAYMENTS - 4, -1)]
    assert amounts[:3] == newest
    assert len(amounts) == limits.UI_PAYOUTS_SHOWN  # of 111 (Bob's of the seed, the oldest)


def test_a_payout_behind_many_payments_is_shown(busy: World) -> None:
    """The bakery's only payout is older than its last hundred payments."""
    html = page(busy.node, "/ui/merchant", busy.node.token(busy.bakery.signer)).body.decode()
    assert re.findall(r'data-testid="payout-amount">([^<]*)<', html) == [money(734)]


def test_an_index_of_another_layout_is_rebuilt(tmp_path: Path) -> None:
    db = plyvel.DB(str(tmp_path / "index"), create_if_missing=True)
    db.put(b"m/height", struct.pack(">Q", 7))
    db.put(b"a/" + bytes(32) + struct.pack(">QI", 7, 0), b"\x07")
    db.close()
    index = HistoryIndex.open(tmp_path / "index")
    try:
        assert index.height() == 0  # the node indexes its blocks again from the start
        assert index.history(bytes(32), None, frozenset(), 10, 100) == ([], None)
        index.add_block(1, [])
    finally:
        index.close()
    index = HistoryIndex.open(tmp_path / "index")  # its own layout: kept as it is
    try:
        assert index.height() == 1
    finally:
        index.close()
