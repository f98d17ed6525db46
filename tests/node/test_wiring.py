"""``node.run.daemon._Wiring``: how a node's parts call one another (issue 19: no closures
over a box). A consensus frame goes to the driver once it is attached, and is dropped
before; transactions heard from peers wait in the gossip admission; the driver's
broadcasts leave as consensus frames."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from node.api.metrics import NodeMetrics
from node.app.ledger_app import LedgerApp
from node.consensus.mempool import Mempool
from node.p2p.gossip import Channel, consensus_frame, read_frame, txs_frame
from node.protocol.crypto import PublicKey, Signer
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.run.daemon import Home, _Wiring

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "genesis.example.toml"
PEER = PublicKey(bytes(32))


class _Driver:
    def __init__(self) -> None:
        self.submitted: list[bytes] = []

    def submit(self, message: bytes) -> None:
        self.submitted.append(message)


class _Ledger:
    mempool = Mempool()  # empty: every gossiped transaction is news

    async def verify_ahead(self, batch: object) -> None:
        return None


def _wiring(tmp_path: Path) -> _Wiring:
    settings = config.NodeConfig("n", True, "127.0.0.1", 1, "127.0.0.1", 2, ())
    genesis = parse_genesis(EXAMPLE.read_text(encoding="utf-8"))
    home = Home(tmp_path, settings, genesis, Signer.generate())
    return _Wiring(home, cast(LedgerApp, _Ledger()), NodeMetrics(), None)


def test_a_consensus_frame_reaches_the_driver_once_attached(tmp_path: Path) -> None:
    wiring, driver = _wiring(tmp_path), _Driver()
    wiring.on_message(PEER, consensus_frame(b"early"))  # no driver yet: dropped
    wiring.attach(driver)  # type: ignore[arg-type]  # the driver's one method used here
    wiring.on_message(PEER, consensus_frame(b"vote"))
    wiring.on_message(PEER, b"\xff not a frame")
    assert driver.submitted == [b"vote"]


def test_gossiped_transactions_wait_in_the_admission(tmp_path: Path) -> None:
    wiring = _wiring(tmp_path)
    wiring.on_message(PEER, txs_frame([b"a", b"b"]))
    assert wiring.gossip._waiting.qsize() == 2


def test_the_driver_s_broadcast_is_a_consensus_frame(tmp_path: Path) -> None:
    wiring, sent = _wiring(tmp_path), list[bytes]()

    def capture(data: bytes) -> int:
        sent.append(data)
        return 1

    wiring.peers.broadcast = capture  # type: ignore[method-assign,assignment]
    wiring.broadcast(b"proposal")
    assert [read_frame(s) for s in sent] == [(Channel.CONSENSUS, [b"proposal"])]
