"""The node's memo of decoded transactions: same answers as decoding, bounded, forgetful."""

from __future__ import annotations

from node.app.ledger_app import DecodedTxs
from node.ledger import tx as t
from node.ledger.codes import Result
from tests.ledger.world import World, holder_keys, signer


def _pays(w: World, n: int) -> list[bytes]:
    shop, chain = signer("shop"), w.genesis.chain_id
    pay = t.Pay("c", shop.public_key, 1, "")
    return [t.Tx(chain, h.public_key, 0, pay).sign(h).encode() for h in holder_keys(n)]


def test_a_transaction_is_decoded_once_and_answers_as_decoding_does() -> None:
    w = World()
    memo = DecodedTxs(w.genesis.chain_id)
    (data,) = _pays(w, 1)
    first = memo.decode(data)
    assert first == t.decode_tx(data, w.genesis.chain_id)
    assert memo.decode(bytes(data)) is first  # equal bytes, another object: the same decode
    assert data in memo and len(memo) == 1
    # Rejections are answered (the same code) but never kept.
    assert memo.decode(data + b"\x00") == t.decode_tx(data + b"\x00", w.genesis.chain_id)
    assert isinstance(memo.decode(data[:-1]), Result)
    assert len(memo) == 1
    # Another chain's memo rejects the same bytes.
    assert memo.decode(data) is first
    assert DecodedTxs("another-chain").decode(data) == Result.WRONG_CHAIN


def test_the_memo_is_bounded_by_count_and_bytes_oldest_out_first() -> None:
    w = World()
    datas = _pays(w, 6)
    by_count = DecodedTxs(w.genesis.chain_id, count_max=4, bytes_max=10**9)
    for data in datas:
        by_count.decode(data)
    assert [d in by_count for d in datas] == [False, False, True, True, True, True]
    by_bytes = DecodedTxs(w.genesis.chain_id, count_max=100, bytes_max=3 * len(datas[0]))
    for data in datas:
        by_bytes.decode(data)
    assert [d in by_bytes for d in datas] == [False, False, False, True, True, True]
    by_bytes.forget([datas[4], datas[0]])
    assert [d in by_bytes for d in datas] == [False, False, False, True, False, True]
    for data in datas[:2]:  # room for one again; the second pushes the oldest (3) out
        by_bytes.decode(data)
    assert [d in by_bytes for d in datas] == [True, True, False, False, False, True]
