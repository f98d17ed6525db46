"""The cache of decoded committed records (``node.ledger.state.RecordCache``).

The model and determinism tests run every block above the cache and check it
against the view after each; here, its cap and what a rejected block leaves.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.records import Record
from node.ledger.state import ROLE_PREFIXES, BlockState, DictView, RecordCache
from tests.ledger.world import DAY_MS, World, signer


def test_a_full_cache_starts_over_instead_of_growing() -> None:
    cache = RecordCache(max_records=2, max_absent=2)
    cache.put(b"a", r.Counter(1))
    cache.put(b"b", r.Counter(2))
    assert len(cache) == 2
    cache.put(b"c", r.Counter(3))
    assert len(cache) == 1
    assert cache.get(b"c") == r.Counter(3)
    cache.commit({b"d": r.Counter(4), b"e": None})
    assert sorted(key for key, _ in cache.items()) == [b"d", b"e"]
    cache.put(b"f", None)
    cache.put(b"g", None)  # the absent keys start over on their own
    assert sorted(key for key, _ in cache.items()) == [b"d", b"g"]


def test_absent_keys_do_not_push_the_records_out() -> None:
    cache = RecordCache(max_records=2)
    cache.put(b"a", r.Counter(1))
    for n in range(10):
        cache.put(b"x%d" % n, None)
    assert cache.get(b"a") == r.Counter(1)
    assert cache.get(b"x3") is None
    cache.commit({b"x3": r.Counter(3)})  # created: no longer known absent
    assert cache.get(b"x3") == r.Counter(3)


class _CountingView:
    """A view that counts its point reads."""

    def __init__(self, view: DictView) -> None:
        self.view = view
        self.reads: list[bytes] = []

    def get(self, key: bytes) -> bytes | None:
        self.reads.append(key)
        return self.view.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.view.iter_prefix(prefix)


def test_an_absent_role_key_is_answered_from_memory() -> None:
    w = World()
    view = _CountingView(w.view)
    cache = RecordCache()
    cache.index(view, ROLE_PREFIXES)
    newcomer = signer("no-role").public_key
    state = BlockState(view, cache)
    assert not state.has_role(newcomer)
    assert state.has_role(w.namur.public_key)  # an issuer (genesis): read once, cached
    assert view.reads == [r.issuer_key(w.namur.public_key)]
    assert [key for key, _ in cache.items()] == [r.issuer_key(w.namur.public_key)]


def test_a_role_staged_in_the_block_wins_over_the_index() -> None:
    """The index answers for the committed state only: a shop registered earlier in the
    same block is a merchant to the allocation after it."""
    w = World()
    shop = signer("same-block-shop")
    start, end = w.time_ms, w.time_ms + 30 * DAY_MS
    assert w.do(w.namur, t.CreateCampaign("C", "C", (), (), start, end, 10_000)) == Result.OK
    assert w.do(w.bank, t.Fund("C", 10_000, "ref-1")) == Result.OK
    assert w.records is not None and w.records.known_absent(r.merchant_key(shop.public_key))
    register = t.RegisterMerchant(shop.public_key, "Shop", "47.11", "NA-1", bytes(32), False)
    alloc = t.Allocate("C", (t.Allocation(shop.public_key, 5_000, "NA-1"),))
    outcome = w.apply(*w.sign_block((w.namur, register), (w.namur, alloc)))
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.NOT_A_HOLDER]


def test_an_allocation_of_5000_new_holders_keeps_the_useful_records() -> None:
    w = World()
    cache = w.records = RecordCache(max_records=20_000)
    cache.index(w.view, ROLE_PREFIXES)
    start, end = w.time_ms, w.time_ms + 30 * DAY_MS
    assert w.do(w.namur, t.CreateCampaign("BIG", "B", (), (), start, end, 5_000_00)) == Result.OK
    assert w.do(w.bank, t.Fund("BIG", 5_000_00, "ref-big")) == Result.OK
    useful = r.bank_key(w.bank.public_key), r.params_key()  # not touched by the allocation
    assert all(isinstance(cache.get(key), Record) for key in useful)
    holders = tuple(
        t.Allocation(bytes([1]) + n.to_bytes(31, "big"), 100, "NA-1") for n in range(5_000)
    )
    assert w.do(w.namur, t.Allocate("BIG", holders)) == Result.OK
    assert all(isinstance(cache.get(key), Record) for key in useful)
    assert not any(key[:1] in ROLE_PREFIXES for key, found in cache.items() if found is None)
    w.check_record_cache()


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


_PREFIXES = (*ROLE_PREFIXES, r.Prefix.HOLDER.value, r.Prefix.SIGNING_KEY.value)
_KEYS = [prefix + bytes([n]) for prefix in _PREFIXES for n in range(4)]
_change = st.tuples(st.sampled_from(_KEYS), st.none() | st.integers(0, 9))


@settings(max_examples=150, deadline=None)
@given(
    initial=st.dictionaries(st.sampled_from(_KEYS), st.integers(0, 9)),
    blocks=st.lists(st.lists(_change, max_size=6), max_size=8),
    reads=st.lists(st.sampled_from(_KEYS), max_size=20),
    small=st.booleans(),
)
def test_the_cache_and_its_index_answer_what_the_view_holds(
    initial: dict[bytes, int],
    blocks: list[list[tuple[bytes, int | None]]],
    reads: list[bytes],
    small: bool,
) -> None:
    """Blocks that add, replace (a rotation's delegate and signing key) and remove role
    records: every read through the indexed cache answers what the view holds."""
    view = DictView({key: r.Counter(value).encode() for key, value in initial.items()})
    limit = 3 if small else 1_000  # a small cache starts over often, a small index gives up
    cache = RecordCache(max_records=limit, max_absent=limit, max_index_keys=limit)
    cache.index(view, ROLE_PREFIXES)
    for changes in blocks:
        for key in reads:  # reads fill the cache as executions do
            BlockState(view, cache).load(key, r.Counter.decode)
        committed = {k: None if v is None else r.Counter(v) for k, v in changes}
        view.apply({k: None if v is None else v.encode() for k, v in committed.items()})
        cache.commit(committed)
        state = BlockState(view, cache)
        for key in _KEYS:
            found = state.load(key, r.Counter.decode)
            assert (None if found is None else found.encode()) == view.get(key), key
        for prefix in ROLE_PREFIXES:
            indexed = cache.indexed_keys(prefix)
            assert indexed is None or indexed == {k for k, _ in view.iter_prefix(prefix)}
