"""A real node in-process for API tests: one validator, blocks driven directly.

``LiveNode`` runs a ``LedgerApp`` on a temporary LevelDB store with a
one-validator genesis, and serves the real aiohttp application on
127.0.0.1 from a background thread with its own event loop (so synchronous
clients, schemathesis and Playwright can talk to it). Blocks are made by
``prepare_proposal`` / ``process_proposal`` / ``finalize_block`` with a real
commit certificate signed by the validator key: when the API admits a
transaction, a producer task on the node's loop makes the next block (no
timers, no sleeps). Block times come from a fake clock, one second apart.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Final, TypeVar

from aiohttp import web

from node.api.metrics import NodeMetrics, Sources
from node.api.operation import AnyRoutes
from node.api.server import ApiConfig, NodeStatus, create_app
from node.api.tokens import make_token
from node.app.ledger_app import LedgerApp
from node.app.sigverify import SignatureVerifier
from node.consensus.mempool import Admission, Mempool
from node.consensus.types import Block, Certificate, Header, VoteKind, vote_signing_body
from node.ledger import tx as t
from node.ledger.state import ROLE_PREFIXES
from node.protocol.crypto import Domain, Signer, digest
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
)
from node.protocol.merkle import tx_root as merkle_tx_root
from node.run.daemon import build_views
from node.run.hooks import NO_HOOKS, NodeHooks
from node.store.blockstore import BlockStore
from node.views.history_index import HistoryIndex
from tests.node.netutil import free_base_port

T = TypeVar("T")
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS


def key(name: str) -> Signer:
    return Signer(digest(f"api-test:{name}".encode()))


VALIDATOR: Final = key("validator")
BANK: Final = key("bank")
NAMUR: Final = key("namur")
LIEGE: Final = key("liege")
AUDITOR: Final = key("auditor")


def make_genesis(genesis_time_ms: int, chain_id: str = "relance-api-test") -> Genesis:
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=genesis_time_ms,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Banque", BANK.public_key),
        validators=(GenesisValidator("Banque", "bank", VALIDATOR.public_key, 1),),
        issuers=(
            GenesisIssuer("Ville de Namur", "Namur", NAMUR.public_key, ("NAM-1", "NAM-2")),
            GenesisIssuer("Ville de Liège", "Liège", LIEGE.public_key, ("LGE-1",)),
        ),
        auditors=(GenesisAccount("Auditeur", AUDITOR.public_key),),
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # tests look at redirects (and their cookies) themselves


_OPENER: Final = urllib.request.build_opener(_NoRedirect)


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0]


@dataclass
class LiveNode:
    root: Path
    config_overrides: dict[str, object] = field(default_factory=dict)
    hooks: NodeHooks = NO_HOOKS  # test hooks (a view made to raise)
    # Routes only some nodes serve (the bank's settlement routes), made on the node's loop.
    extra_routes: Callable[[LiveNode], Sequence[AnyRoutes]] | None = None

    def __post_init__(self) -> None:
        # Block times: a fake clock one second a block, starting an hour before now
        # (tokens and balance codes are checked against the real clock).
        self.wall_ms = time.time_ns() // 1_000_000 // 1_000 * 1_000
        self.genesis = make_genesis(self.wall_ms - HOUR_MS)
        self.next_time_ms = self.wall_ms - HOUR_MS + 1_000
        self.loop = asyncio.new_event_loop()
        self.port = free_base_port(1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics = NodeMetrics()
        # Who signs certificates: the keys of every validator set the tests bring in.
        self.signers: dict[bytes, Signer] = {VALIDATOR.public_key: VALIDATOR}
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self._start())

    # --- the node's loop -------------------------------------------------------------------

    def call(self, coroutine: Coroutine[object, object, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=60)

    def run(self, fn: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return fn()

        return self.call(wrapped())

    async def _start(self) -> None:
        self.store = BlockStore.open(self.root / "data", self.genesis.genesis_hash, create=True)
        self.verifier = SignatureVerifier()
        self.ledger = LedgerApp(self.genesis, self.store, Mempool(), self.verifier)
        self.index = HistoryIndex.open(self.root / "index")
        self.wake = asyncio.Event()
        status = NodeStatus(
            moniker="test-node",
            validator=True,
            node_key=VALIDATOR.public_key,
            consensus_height=lambda: self.ledger.last_block().height + 1,
            peers=lambda: 0,
            gossip_tx=lambda data: self.wake.set(),
        )
        self.metrics.attach(
            Sources(
                mempool_txs=lambda: len(self.ledger.mempool),
                mempool_bytes=lambda: self.ledger.mempool.size_bytes,
                peers=lambda: 0,
                p2p_sent_bytes=lambda: 0,
                p2p_received_bytes=lambda: 0,
            )
        )
        settings: dict[str, object] = {"requests_per_s": 100_000.0, "burst_requests": 100_000}
        settings.update(self.config_overrides)
        config = ApiConfig(**settings)  # type: ignore[arg-type]  # test overrides by name
        self.views = build_views(self.ledger, self.index, self.metrics, hooks=self.hooks)
        self.views.runner.start()
        extra = () if self.extra_routes is None else self.extra_routes(self)
        self.app = create_app(self.ledger, status, self.views, config, self.metrics, extra)
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.producer = asyncio.create_task(self._produce())

    async def _produce(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while len(self.ledger.mempool) > 0:
                self.make_block()

    def make_block(self) -> Block:
        """Propose, check and finalise one block with a real certificate (node's loop only)."""
        ledger = self.ledger
        last = ledger.last_block()
        height, time_ms = last.height + 1, self.next_time_ms
        self.next_time_ms += 1_000
        block = proposed_block(ledger, time_ms)
        votes = []
        for v in ledger.validator_set(height).validators:
            body = vote_signing_body(VoteKind.PRECOMMIT, height, 0, block.hash(), v.public_key)
            signer = self.signers[v.public_key]
            votes.append((v.public_key, signer.sign(Domain.VOTE, self.genesis.chain_id, body)))
        certificate = Certificate(height, 0, block.hash(), tuple(sorted(votes)))
        if not ledger.process_proposal(block):
            raise AssertionError("our own proposal does not process")
        ledger.finalize_block(block, certificate)
        _check_record_cache(ledger)
        if any(data in ledger.decoded for data in block.txs):
            raise AssertionError("a committed transaction is still kept decoded")
        return block

    def commit(self, *signed: t.SignedTx) -> int:
        """Admit transactions and make a block of them; every one must go in."""

        def go() -> int:
            for s in signed:
                added = self.ledger.mempool.add(s.encode(), self.ledger.check)
                if added.admission != Admission.ADMITTED:
                    raise AssertionError(f"{s.tx.payload} not admitted: {added}")
            block = self.make_block()
            if len(block.txs) != len(signed):
                raise AssertionError("not every transaction went into the block")
            return block.header.height

        height = self.run(go)
        self.settle_views()
        return height

    def settle_views(self) -> None:
        """Until every derived view (not failed) has folded the stored blocks."""
        self.call(self.views.runner.settled())

    def close(self) -> None:
        async def stop() -> None:
            self.producer.cancel()
            await self.runner.cleanup()
            await self.views.runner.close()
            self.index.close()
            self.verifier.close()
            self.store.close()

        self.call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    # --- clients --------------------------------------------------------------------------

    def token(self, who: Signer, ttl_ms: int = HOUR_MS, issued_ms: int | None = None) -> str:
        now = time.time_ns() // 1_000_000 if issued_ms is None else issued_ms
        return make_token(who, self.genesis.chain_id, VALIDATOR.public_key, now, ttl_ms)

    def http(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with _OPENER.open(request, timeout=60) as response:
                return HttpResult(response.status, _headers(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return HttpResult(error.code, _headers(error.headers), error.read())

    def get(self, path: str, token: str | None = None) -> HttpResult:
        return self.http("GET", path, token=token)

    def post_json(self, path: str, payload: object, token: str | None = None) -> HttpResult:
        return self.http("POST", path, json.dumps(payload).encode(), token=token)


def proposed_block(ledger: LedgerApp, time_ms: int) -> Block:
    """The block ``ledger`` proposes next at ``time_ms`` (round 0's proposer)."""
    last = ledger.last_block()
    height = last.height + 1
    prepared = ledger.prepare_proposal(height, time_ms, last.block_hash)
    validators = ledger.validator_set(height)
    header = Header(
        chain_id=ledger.genesis.chain_id,
        height=height,
        time_ms=time_ms,
        previous_block_hash=last.block_hash,
        tx_root=merkle_tx_root(prepared.txs),
        state_root=prepared.state_root,
        validators_hash=validators.hash(),
        next_validators_hash=prepared.next_validators_hash,
        proposer=validators.proposer(height, 0).public_key,
    )
    return Block(header, prepared.txs)


def _headers(message: Message) -> dict[str, str]:
    """Lowercase names; repeated headers (Set-Cookie) joined by newlines."""
    out: dict[str, str] = {}
    for raw_name, value in message.items():
        name = raw_name.lower()
        out[name] = out[name] + "\n" + value if name in out else value
    return out


@dataclass
class Account:
    signer: Signer
    sequence: int = 0

    @property
    def pk(self) -> bytes:
        return self.signer.public_key

    def sign(self, chain_id: str, payload: t.Payload) -> t.SignedTx:
        signed = t.Tx(chain_id, self.signer.public_key, self.sequence, payload).sign(self.signer)
        self.sequence += 1
        return signed


def _check_record_cache(ledger: LedgerApp) -> None:
    """The node's cache of decoded records holds the committed records only."""
    for key, record in ledger.records.items():
        stored = ledger.store.get(key)
        if record is None:
            assert stored is None, f"the node's cache says {key!r} is absent"
        else:
            assert record.encode() == stored, f"the node's cache holds a stale {key!r}"
    for prefix in ROLE_PREFIXES:  # the index of role keys is the store's
        stored_keys = {key for key, _ in ledger.store.iter_prefix(prefix)}
        assert ledger.records.indexed_keys(prefix) == stored_keys, f"index of {prefix!r}"
