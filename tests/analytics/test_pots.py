"""The analytics fold's pots: small while only allocated, exact whatever happens next.

``CampaignPots`` keeps a pot that was only ever allocated as one integer and makes it a
``Pot`` the first time anything else touches it. These tests check it against the plain
rule (one ``Pot`` per holder, as the fold kept before) over random histories, bound its
memory per allocated holder, and check the fold's attribution of a moved-to key.
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from dataclasses import dataclass, field

from node.analytics import report
from node.analytics.tracker import CampaignPots, IssuerHistory, Pot, Tracker
from node.ledger import tx as t
from node.protocol.crypto import PublicKey, Signer, digest

CHAIN = "relance-test"
ZONES = ("NAM-1", "NAM-2")


@dataclass
class Plain:
    """The rule written plainly: every pot a ``Pot`` (what ``CampaignPots`` must equal)."""

    pots: dict[bytes, Pot] = field(default_factory=dict)
    allocated: int = 0

    def allocate(self, holder: bytes, zone: str, cents: int, time_ms: int) -> None:
        pot = self.pots.setdefault(holder, Pot(zone, time_ms))
        pot.allocated_cents += cents
        pot.balance_cents += cents
        self.allocated += cents

    def pay(self, holder: bytes, cents: int, time_ms: int) -> None:
        pot = self.pots[holder]
        pot.balance_cents -= cents
        if pot.first_spend_ms is None:
            pot.first_spend_ms = time_ms

    def move(self, source: bytes, target: bytes) -> None:
        pot = self.pots[source]
        moved, pot.balance_cents, pot.moved_out = pot.balance_cents, 0, True
        receiver = self.pots.setdefault(target, Pot(pot.zone, pot.allocated_ms))
        receiver.balance_cents += moved

    def refund(self, holder: bytes, cents: int) -> None:
        self.pots[holder].balance_cents += cents

    def close(self) -> int:
        returned = sum(p.balance_cents for p in self.pots.values())
        for pot in self.pots.values():
            pot.balance_cents = 0
        return returned


def _campaign_row(pots: CampaignPots) -> report.CampaignRaw:
    history = IssuerHistory(ZONES, campaigns={"C": "C"}, pots={"C": pots})
    (row,) = report.campaigns_raw(history)
    return row


def test_fresh_pots_fold_as_plain_pots_over_random_histories() -> None:
    """Allocations, top-ups, payments, sweeps to fresh and unknown holders, refunds, a
    close and an allocation after it: the same pots, totals and first-spend delays."""
    for seed in range(40):
        rng = random.Random(seed)
        holders = [bytes([n]) * 32 for n in range(12)]
        pots, plain = CampaignPots(), Plain()
        for step in range(60):
            now = step * 3_600_000
            holder = rng.choice(holders)
            known = [h for h in holders if h in plain.pots]
            op = rng.randrange(6)
            if op <= 1 or not known:
                cents, zone = rng.randrange(1, 500), rng.choice(ZONES)
                pots.allocate(holder, zone, cents, now)
                plain.allocate(holder, zone, cents, now)
            elif op == 2:
                payer = rng.choice(known)
                pots.spend(payer, 1, now)
                plain.pay(payer, 1, now)
            elif op == 3:
                source = rng.choice(known)
                if source != holder:
                    pots.move(source, holder)
                    plain.move(source, holder)
            elif op == 4:
                payer = rng.choice(known)
                pots.must(payer).balance_cents += 7
                plain.refund(payer, 7)
            elif step > 40 and not pots.closed:
                assert pots.close() == plain.close()
        assert dict(pots.items()) == plain.pots, seed
        allocated = [p for p in plain.pots.values() if p.allocated_cents > 0]
        never = [p for p in allocated if p.first_spend_ms is None and not p.moved_out]
        row = _campaign_row(pots)
        assert (row.holders, row.allocated, row.unspent) == (
            len(allocated),
            plain.allocated,
            sum(p.balance_cents for p in plain.pots.values()),
        ), seed
        assert (row.never_used_holders, row.never_used_cents) == (
            len(never),
            sum(p.allocated_cents for p in never),
        ), seed
        first = report.first_spend_raw(IssuerHistory(ZONES, pots={"C": pots}))
        expected = report.first_spend_raw(IssuerHistory(ZONES, pots={"C": _held(plain)}))
        assert first == expected, seed


def _held(plain: Plain) -> CampaignPots:
    pots = CampaignPots()
    pots.held.update(plain.pots)
    return pots


def test_an_allocated_holder_costs_the_fold_little_memory() -> None:
    """20,000 holders allocated in four transactions: under 120 bytes each besides the key
    (one ``Pot`` and one event each cost about 270)."""
    issuer = Signer(digest(b"namur"))
    tracker = Tracker([(issuer.public_key, ZONES)])
    create = t.CreateCampaign("C", "C", (), (), 0, 10**12, 10**9)
    tracker.apply(t.Tx(CHAIN, issuer.public_key, 0, create).sign(issuer), 0)
    rng = random.Random(1)
    batches = [
        tuple(
            t.Allocation(PublicKey(rng.randbytes(32)), 100 + n % 7, "".join(("NAM", "-1")))
            for n in range(5_000)
        )
        for _ in range(4)
    ]
    signed = [
        t.Tx(CHAIN, issuer.public_key, 1 + n, t.Allocate("C", allocations)).sign(issuer)
        for n, allocations in enumerate(batches)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n, one in enumerate(signed):
            tracker.apply(one, 1_000 * n)
        del signed, batches, one
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    row = _campaign_row(tracker.histories[issuer.public_key].pots["C"])
    assert (row.holders, row.never_used_holders) == (20_000, 20_000)
    assert grown / 20_000 < 120, grown / 20_000


def test_a_stored_block_signed_by_a_moved_to_key_is_folded_as_its_account_s() -> None:
    """Blocks fed as stored (``AnalyticsIndex.add_block``, the export workers): after a
    ``rotate_key``, the new key's campaign is the account's (``parties.as_account``)."""
    account, moved = Signer(digest(b"namur")), Signer(digest(b"namur-next"))
    validator = Signer(digest(b"validator"))
    tracker = Tracker([(account.public_key, ZONES)])
    rotate = t.RotateKey(account.public_key, moved.public_key, 5, ())
    create = t.CreateCampaign("NEW", "New", (), (), 0, 1, 100)
    tracker.apply(t.Tx(CHAIN, validator.public_key, 0, rotate).sign(validator), 0)
    tracker.apply(t.Tx(CHAIN, moved.public_key, 0, create).sign(moved), 1)
    assert tracker.campaign_issuer["NEW"] == account.public_key
    assert set(tracker.histories) == {account.public_key}
