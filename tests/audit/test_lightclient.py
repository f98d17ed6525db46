"""The light client against a node that answers over HTTP, honestly or not.

A test aiohttp server serves values with their proofs and the certified
header of the last block of the demo history; a lying mode alters
balances, forges roots or certificates, or hides a transaction. Every lie
is caught by ``node.client.lightclient``; every honest answer verifies.
"""

from __future__ import annotations

import asyncio
import enum
import socket
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web

from node.client.lightclient import (
    CertifiedHeader,
    NodeLied,
    verify_block_transactions,
    verify_campaign,
    verify_holder,
    verify_payout,
    verify_transaction,
)
from node.consensus.types import Block, Certificate, Header
from node.ledger import records as r
from node.protocol import merkle
from node.protocol.crypto import digest
from node.protocol.state_tree import StateTree, decode_proof, encode_proof
from node.store.blockstore import BlockStore
from tests.audit.conftest import History
from tools.audit.history import certify


class Lie(enum.Enum):
    NONE = "none"
    BALANCE = "balance"  # another value, the honest proof
    CONSISTENT_TREE = "consistent_tree"  # a proof from a tree with the altered value
    HEADER_ROOT = "header_root"  # and a header with that tree's root
    OWN_CERTIFICATE = "own_certificate"  # and a certificate signed by keys of its own
    HIDE_TX = "hide_tx"  # a block's list without one transaction
    WRONG_INDEX = "wrong_index"  # a transaction proven at another place
    PAYOUT_ABSENT = "payout_absent"  # a settled payout said not to exist


@dataclass
class Node:
    """Answers from a real data directory, lying as told."""

    history: History
    lie: Lie = Lie.NONE

    def __post_init__(self) -> None:
        store = BlockStore.open(self.history.data, self.history.genesis.genesis_hash, False)
        try:
            self.items = dict(store.state_items())
            self.top = store.height()
            self.blocks = {h: Block.decode(store.block(h)) for h in range(1, self.top + 1)}
            self.cert = Certificate.decode(store.certificate(self.top))
        finally:
            store.close()
        self.tree = StateTree.from_items(self.items.items())

    def state(self, key: bytes) -> dict[str, object]:
        value = self.items.get(key)
        tree, header, cert = self.tree, self.blocks[self.top].header, self.cert
        if self.lie is Lie.PAYOUT_ABSENT and key[:1] == r.Prefix.PAYOUT.value:
            value = None
        if self.lie is not Lie.NONE and key[:1] == r.Prefix.HOLDER.value and value is not None:
            holder = r.Holder.decode(value)
            richer = tuple((code, cents + 50_000) for code, cents in holder.balances)
            value = r.Holder(holder.sequence, richer).encode()
            if self.lie in (Lie.CONSISTENT_TREE, Lie.HEADER_ROOT, Lie.OWN_CERTIFICATE):
                tree = StateTree.from_items({**self.items, key: value}.items())
            if self.lie in (Lie.HEADER_ROOT, Lie.OWN_CERTIFICATE):
                header = _with_root(header, tree.root())
                cert = Certificate(cert.height, cert.round, header.hash(), cert.signatures)
            if self.lie is Lie.OWN_CERTIFICATE:
                keys = [type(self.history.actors.bank)(digest(bytes([i]))) for i in range(3)]
                cert = certify(header.chain_id, header.height, 0, header.hash(), keys)
        return {
            "header": header.encode().hex(),
            "certificate": cert.encode().hex(),
            "value": None if value is None else value.hex(),
            "proof": encode_proof(tree.prove(key)).hex(),
        }

    def transaction(self, height: int, index: int) -> dict[str, object]:
        block = self.blocks[height]
        txs = list(block.txs)
        proven = index - 1 if self.lie is Lie.WRONG_INDEX else index
        proof = merkle.prove([merkle.tx_leaf(tx) for tx in txs], proven)
        return {
            "header": block.header.encode().hex(),
            "certificate": self.certificate(height),
            "tx": txs[index].hex(),
            "index": proof.index,
            "size": proof.size,
            "siblings": [s.hex() for s in proof.siblings],
        }

    def block(self, height: int) -> dict[str, object]:
        txs = list(self.blocks[height].txs)
        if self.lie is Lie.HIDE_TX:
            del txs[1]
        return {
            "header": self.blocks[height].header.encode().hex(),
            "certificate": self.certificate(height),
            "txs": [tx.hex() for tx in txs],
        }

    def certificate(self, height: int) -> str:
        store = BlockStore.open(self.history.data, self.history.genesis.genesis_hash, False)
        try:
            raw = store.certificate(height)
        finally:
            store.close()
        assert raw is not None
        return raw.hex()


def _with_root(header: Header, root: bytes) -> Header:
    return Header(
        header.chain_id,
        header.height,
        header.time_ms,
        header.previous_block_hash,
        header.tx_root,
        root,
        header.validators_hash,
        header.next_validators_hash,
        header.proposer,
    )


def _serve_and_ask(node: Node, paths: list[str]) -> list[dict[str, object]]:
    """Run the node's HTTP server on a free port and GET ``paths`` from it."""

    async def handler_state(request: web.Request) -> web.Response:
        return web.json_response(node.state(bytes.fromhex(request.match_info["key"])))

    async def handler_tx(request: web.Request) -> web.Response:
        height, index = int(request.match_info["h"]), int(request.match_info["i"])
        return web.json_response(node.transaction(height, index))

    async def handler_block(request: web.Request) -> web.Response:
        return web.json_response(node.block(int(request.match_info["h"])))

    async def scenario() -> list[dict[str, object]]:
        app = web.Application()
        app.add_routes(
            [
                web.get("/state/{key}", handler_state),
                web.get("/tx/{h}/{i}", handler_tx),
                web.get("/block/{h}", handler_block),
            ]
        )
        runner = web.AppRunner(app)
        await runner.setup()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            async with aiohttp.ClientSession() as session:
                out = []
                for path in paths:
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                        out.append(await response.json())
                return out
        finally:
            await runner.cleanup()

    return asyncio.run(scenario())


def _anchor(answer: dict[str, object]) -> CertifiedHeader:
    return CertifiedHeader(
        Header.decode(bytes.fromhex(str(answer["header"]))),
        Certificate.decode(bytes.fromhex(str(answer["certificate"]))),
    )


def _check_holder(history: History, answer: dict[str, object], holder: bytes) -> r.Holder:
    value = answer["value"]
    return verify_holder(
        history.genesis,
        _anchor(answer),
        holder,
        None if value is None else bytes.fromhex(str(value)),
        decode_proof(bytes.fromhex(str(answer["proof"]))),
    )


def test_honest_answers_verify(history: History) -> None:
    holder = history.actors.holders[5].public_key
    payout_id = r.Prefix.PAYOUT.value  # filled below
    node = Node(history)
    payout_id = next(k for k in node.items if k[:1] == r.Prefix.PAYOUT.value)[1:]
    state_paths = [
        f"/state/{r.holder_key(holder).hex()}",
        f"/state/{r.campaign_key('liege-2026').hex()}",
        f"/state/{r.payout_key(payout_id).hex()}",
        f"/state/{r.holder_key(bytes(32)).hex()}",
    ]
    holder_a, campaign_a, payout_a, nobody_a = _serve_and_ask(node, state_paths)
    assert _check_holder(history, holder_a, holder).balances == (("liege-2026", 6_000),)
    assert _check_holder(history, nobody_a, bytes(32)) == r.EMPTY_HOLDER
    campaign = verify_campaign(
        history.genesis,
        _anchor(campaign_a),
        "liege-2026",
        bytes.fromhex(str(campaign_a["value"])),
        decode_proof(bytes.fromhex(str(campaign_a["proof"]))),
    )
    assert campaign is not None and campaign.funded_cents == 50_000
    payout = verify_payout(
        history.genesis,
        _anchor(payout_a),
        payout_id,
        bytes.fromhex(str(payout_a["value"])),
        decode_proof(bytes.fromhex(str(payout_a["proof"]))),
    )
    assert payout is not None and payout.settled

    (tx_a, block_a) = _serve_and_ask(node, ["/tx/8/2", "/block/8"])
    signed = verify_transaction(history.genesis, _anchor(tx_a), *_tx_proof(tx_a))
    assert signed.tx.payload.KIND.name == "PAY"
    txs = [bytes.fromhex(x) for x in block_a["txs"]]  # type: ignore[attr-defined]
    assert len(verify_block_transactions(history.genesis, _anchor(block_a), txs)) == 3


def _tx_proof(answer: dict[str, object]) -> tuple[bytes, merkle.InclusionProof]:
    siblings = tuple(bytes.fromhex(s) for s in answer["siblings"])  # type: ignore[attr-defined]
    index, size = answer["index"], answer["size"]
    assert isinstance(index, int) and isinstance(size, int)
    return bytes.fromhex(str(answer["tx"])), merkle.InclusionProof(index, size, siblings)


@pytest.mark.parametrize(
    ("lie", "reason"),
    [
        (Lie.BALANCE, "does not match the proof"),
        (Lie.CONSISTENT_TREE, "does not match the proof and the certified state root"),
        (Lie.HEADER_ROOT, "more than 2/3"),
        (Lie.OWN_CERTIFICATE, "more than 2/3"),
    ],
)
def test_a_node_that_alters_a_balance_is_caught(history: History, lie: Lie, reason: str) -> None:
    holder = history.actors.holders[5].public_key
    (answer,) = _serve_and_ask(Node(history, lie), [f"/state/{r.holder_key(holder).hex()}"])
    with pytest.raises(NodeLied, match=reason):
        _check_holder(history, answer, holder)


def test_a_node_that_hides_a_transaction_is_caught(history: History) -> None:
    (block_a,) = _serve_and_ask(Node(history, Lie.HIDE_TX), ["/block/8"])
    txs = [bytes.fromhex(x) for x in block_a["txs"]]  # type: ignore[attr-defined]
    assert len(txs) == 2
    with pytest.raises(NodeLied, match="hidden or altered"):
        verify_block_transactions(history.genesis, _anchor(block_a), txs)

    (tx_a,) = _serve_and_ask(Node(history, Lie.WRONG_INDEX), ["/tx/8/2"])
    with pytest.raises(NodeLied, match="not in the certified block"):
        verify_transaction(history.genesis, _anchor(tx_a), *_tx_proof(tx_a))


def test_a_node_that_denies_a_payout_is_caught(history: History) -> None:
    node = Node(history, Lie.PAYOUT_ABSENT)
    payout_id = next(k for k in node.items if k[:1] == r.Prefix.PAYOUT.value)[1:]
    (answer,) = _serve_and_ask(node, [f"/state/{r.payout_key(payout_id).hex()}"])
    assert answer["value"] is None
    with pytest.raises(NodeLied):
        verify_payout(
            history.genesis,
            _anchor(answer),
            payout_id,
            None,
            decode_proof(bytes.fromhex(str(answer["proof"]))),
        )
