"""Frames between nodes and the outgoing side of gossip (``node.p2p.gossip``); the incoming
side (``GossipAdmission``) is tested with the signature verifier it feeds."""

from __future__ import annotations

import asyncio

import pytest

from node.p2p.gossip import Channel, GossipOutbox, consensus_frame, read_frame, txs_frame
from node.protocol import codec, limits


def test_frames_read_back_and_anything_else_is_refused() -> None:
    assert read_frame(consensus_frame(b"vote")) == (Channel.CONSENSUS, [b"vote"])
    assert read_frame(txs_frame([b"a", b"bb"])) == (Channel.TXS, [b"a", b"bb"])
    refused = [
        b"",
        b"\xc1",
        codec.encode([int(Channel.CONSENSUS), [b"vote"]]),  # consensus carries bytes
        codec.encode([int(Channel.TXS), b"a"]),  # transactions come as a list
        codec.encode([int(Channel.TXS), []]),
        codec.encode([int(Channel.TXS), [b"a", 7]]),
        codec.encode([2, b"a"]),  # the retired one-transaction channel
        codec.encode([int(Channel.TXS), [b"a"], b"extra"]),
        txs_frame([b"x"] * (limits.GOSSIP_FRAME_TXS_MAX + 1)),
        consensus_frame(b"vote") + b"\x00",
    ]
    assert [read_frame(payload) for payload in refused] == [None] * len(refused)


def test_transactions_pushed_in_one_loop_turn_leave_together_in_order() -> None:
    sent: list[bytes] = []

    async def scenario() -> None:
        outbox = GossipOutbox(sent.append)
        for n in range(5):
            outbox.push(b"tx%d" % n)
        assert sent == []  # nothing before the loop's next turn
        await asyncio.sleep(0)
        outbox.push(b"later")
        await asyncio.sleep(0)
        assert len(sent) == 2

    asyncio.run(scenario())
    assert [read_frame(frame) for frame in sent] == [
        (Channel.TXS, [b"tx0", b"tx1", b"tx2", b"tx3", b"tx4"]),
        (Channel.TXS, [b"later"]),
    ]


@pytest.mark.parametrize(
    ("count", "size", "expected_frames"),
    [
        (limits.GOSSIP_FRAME_TXS_MAX * 2 + 1, 10, [500, 500, 1]),  # by count
        (5, limits.GOSSIP_FRAME_BYTES_MAX // 2, [2, 2, 1]),  # by bytes
        (1, limits.TX_BYTES_MAX, [1]),
    ],
)
def test_frames_respect_the_caps(count: int, size: int, expected_frames: list[int]) -> None:
    assert limits.GOSSIP_FRAME_TXS_MAX == 500  # the figures above
    sent: list[bytes] = []
    txs = [n.to_bytes(4, "big") * (size // 4) for n in range(count)]

    async def scenario() -> None:
        outbox = GossipOutbox(sent.append)
        for tx in txs:
            outbox.push(tx)
        await asyncio.sleep(0)

    asyncio.run(scenario())
    frames = [read_frame(frame) for frame in sent]
    assert [len(f[1]) for f in frames if f is not None] == expected_frames
    assert [tx for f in frames if f is not None for tx in f[1]] == txs
    assert all(len(frame) <= limits.FRAME_BYTES_MAX for frame in sent)
