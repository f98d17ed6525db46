"""The cache of decoded committed records (``node.ledger.state.RecordCache``).

The model and determinism tests run every block above the cache and check it
against the view after each; here, its cap and what a rejected block leaves.
"""

from __future__ import annotations

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import RecordCache
from tests.ledger.world import DAY_MS, World, signer


def test_a_full_cache_starts_over_instead_of_growing() -> None:
    cache = RecordCache(max_records=2)
    cache.put(b"a", r.Counter(1))
    cache.put(b"b", None)
    assert len(cache) == 2
    cache.put(b"c", r.Counter(3))
    assert len(cache) == 1
    assert cache.get(b"c") == r.Counter(3)
    cache.commit({b"d": r.Counter(4), b"e": None})
    assert sorted(key for key, _ in cache.items()) == [b"d", b"e"]


def test_committed_blocks_update_the_cache_and_rejected_ones_do_not() -> None:
    w = World()
    shop, holder = signer("cache-shop"), signer("cache-holder")
    start, end = w.time_ms, w.time_ms + 30 * DAY_MS
    register = t.RegisterMerchant(shop.public_key, "Shop", "47.11", "NA-1", bytes(32), False)
    assert w.do(w.namur, register) == Result.OK
    assert w.do(w.namur, t.CreateCampaign("C", "C", (), (), start, end, 10_000)) == Result.OK
    assert w.do(w.bank, t.Fund("C", 10_000, "ref-1")) == Result.OK
    alloc = t.Allocate("C", (t.Allocation(holder.public_key, 5_000, "NA-1"),))
    assert w.do(w.namur, alloc) == Result.OK
    pay = t.Pay("C", shop.public_key, 1_000, "")
    assert w.do(holder, pay) == Result.OK
    assert w.records is not None
    cached = w.records.get(r.holder_key(holder.public_key))
    assert isinstance(cached, r.Holder) and cached.balance("C") == 4_000
    w.check_record_cache()

    # A block with one good and one bad payment is rejected: the cache keeps 4 000.
    good = w.sign(holder, pay)
    after_good = w.next_sequence(holder, t.Kind.PAY) + 1
    bad = w.sign(holder, t.Pay("C", shop.public_key, 10**6, ""), after_good)
    assert not w.apply(good, bad).all_ok
    cached = w.records.get(r.holder_key(holder.public_key))
    assert isinstance(cached, r.Holder) and cached.balance("C") == 4_000
    w.check_record_cache()
