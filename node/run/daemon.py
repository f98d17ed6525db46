"""The composition root: reads a node home, wires the parts, runs until stopped.

Parts, from the bottom: the LevelDB store, the ledger adapter (with mempool
and signature pool), the guarded signer, the p2p peer manager, the consensus
driver, the HTTP API. Messages between nodes (``node.p2p.gossip``): consensus
traffic goes to the driver, gossiped transactions to the mempool.

The derived views (commit waiters, the event feed, the history index, the
analytics fold, the bank's settlement watcher) are built here
(``build_views``) and run by ``node.views.runner`` off the commit path: the
ledger only notifies the runner of each stored block. ``relance-node views``
reaches them through files in the home (``node.views.control``).

``run``/``serve`` take ``NodeHooks`` (``node.run.hooks``): only the fault tooling's
entry point (``python -m tools.faults.node``) passes any; this module reads
no test switch from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import signal
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Final, Protocol, TypeVar

from aiohttp import web

from node.analytics.index import AnalyticsIndex
from node.api.bank_page import SOURCE as BANK_SOURCE
from node.api.feeds import CommitsView, CommitWaiters, EventsView, MetricsView
from node.api.metrics import (
    CountingRecordStore,
    NodeMetrics,
    SettlementSources,
    Sources,
    ValidatorSources,
)
from node.api.operation import Handler, Routes
from node.api.routes.analytics import SETTINGS_KEY as ANALYTICS_SETTINGS_KEY
from node.api.routes.analytics import AnalyticsSettings
from node.api.routes.settlement import routes as settlement_routes
from node.api.server import ApiConfig, ApiViews, NodeStatus, create_app
from node.api.stream import Hub
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.app.sigverify import SignatureVerifier
from node.app.upgrades import HALT_EXIT_CODE
from node.consensus.app_interface import ApplicationHalt, ConsensusApplication
from node.consensus.driver import ConsensusSigner, Driver, DriverConfig, LoopClock, Transport
from node.consensus.mempool import Admission, Mempool
from node.consensus.signer import FileLockedBlockStore, FileRecordStore, GuardedSigner
from node.consensus.tendermint import ConflictingProposals, ConsensusConfig, Equivocation
from node.consensus.types import Certificate, Vote
from node.ledger.codes import Result
from node.p2p.gossip import Channel, GossipAdmission, GossipOutbox, consensus_frame, read_frame
from node.p2p.peers import PeerAddress, PeerManager, PeerManagerConfig
from node.protocol import limits
from node.protocol.crypto import PublicKey, Signer
from node.protocol.errors import NodeRunError
from node.protocol.genesis import Genesis, GenesisError
from node.protocol.genesis import parse as parse_genesis
from node.run import config, heap
from node.run.backup import RestoreFence, restored_height, serve_backups
from node.run.hooks import NO_HOOKS, ConsensusInstruments, NodeHooks
from node.run.membership import MemberError, start_settings
from node.run.tls import ApiTls, TlsError
from node.settlement.service import SETTLEMENT, SettingsError, SettlementWatcher
from node.settlement.service import open_service as open_settlement
from node.store.blockstore import BlockStore, StoreError
from node.text import names
from node.views.analytics import AnalyticsView
from node.views.base import DerivedView
from node.views.control import serve_control
from node.views.history import HistoryView
from node.views.history_index import HistoryIndex
from node.views.runner import BlockFeed, ViewRunner

logger = logging.getLogger(__name__)


INDEX_DIR = "index"  # the history index: derived, rebuilt from the blocks if removed


class HomeError(NodeRunError, RuntimeError):
    """The node home is missing, incomplete or inconsistent; the message says how."""


@dataclass(frozen=True, slots=True)
class Home:
    """A node home read from disk and validated."""

    path: Path
    settings: config.NodeConfig
    genesis: Genesis
    node_key: Signer


def read_home(path: Path) -> Home:
    problem = names.unicode_problem()
    if problem is not None:
        raise HomeError(problem)
    if not path.is_dir():
        raise HomeError(f"{path} is not a node home: run 'relance-node init --home {path}'")
    try:
        settings = config.parse((path / config.CONFIG_FILE).read_text(encoding="utf-8"))
        genesis = parse_genesis((path / config.GENESIS_FILE).read_text(encoding="utf-8"))
        seed = bytes.fromhex((path / config.NODE_KEY_FILE).read_text(encoding="ascii").strip())
        key = Signer(seed)
    except FileNotFoundError as exc:
        raise HomeError(f"{path} lacks {Path(str(exc.filename)).name}") from None
    except (config.ConfigError, GenesisError) as exc:
        raise HomeError(f"{path}: {exc}") from None
    except ValueError:
        raise HomeError(f"{path / config.NODE_KEY_FILE} is not a 32-byte hex seed") from None
    return Home(path, settings, genesis, key)


def consensus_config(settings: config.NodeConfig) -> DriverConfig:
    tm = settings.timeouts  # a ConsensusConfig with the pause after a decision
    return DriverConfig(
        consensus=ConsensusConfig(**{f.name: getattr(tm, f.name) for f in fields(ConsensusConfig)}),
        commit_ms=tm.commit_ms,
        gossip_interval_ms=max(limits.GOSSIP_INTERVAL_MIN_MS, tm.propose_ms),
    )


async def serve(home: Home, stop: asyncio.Event, hooks: NodeHooks = NO_HOOKS) -> None:
    """Run the node of ``home`` until ``stop`` is set; close everything cleanly."""
    settings, genesis = home.settings, home.genesis
    store = BlockStore.open(home.path / config.DATA_DIR, genesis.genesis_hash, create=False)
    verifier = SignatureVerifier(processes=True)  # checks off the loop thread, on other cores
    try:
        ledger = LedgerApp(genesis, store, Mempool(), verifier, hooks.rulebook)
        reason = ledger.halt_reason()
        if reason is not None:
            raise ApplicationHalt(reason)  # restarted with the old software: still stopped
        heap.freeze_loaded()  # the loaded state is long-lived: out of the collector's way
        ledger.commit_notices.append(lambda block, _: heap.after_block(block.header.height))
        await _run_parts(home, ledger, stop, hooks)
    finally:
        verifier.close()
        height = store_height_safe(store)
        store.close()
        logger.info("%s stopped at height %d", settings.moniker, height)


def analytics_settings(settings: config.AnalyticsConfig) -> AnalyticsSettings:
    """The ``[analytics]`` section as the API reads it (k per issuer, 5 by default)."""
    return AnalyticsSettings(settings.k_default, {bytes(k): n for k, n in settings.k_by_issuer})


def store_height_safe(store: BlockStore) -> int:
    with contextlib.suppress(Exception):
        return store.height()
    return -1


def build_views(
    ledger: LedgerApp,
    index: HistoryIndex,
    metrics: NodeMetrics | None,
    extra: tuple[DerivedView, ...] = (),
    hooks: NodeHooks = NO_HOOKS,
) -> ApiViews:
    """Every derived view of a node, and the runner that feeds them (start it on the
    node's loop). The ledger only notifies the runner of each stored block."""
    store = ledger.store

    def round_of(height: int) -> int:
        raw = store.certificate(height)
        return 0 if raw is None else Certificate.decode(raw).round

    waiters = CommitWaiters()
    hub = Hub(None if metrics is None else metrics.stream_subscribers.set)
    analytics = AnalyticsIndex(ledger.genesis)
    counted = () if metrics is None else (MetricsView(metrics, store.height, round_of),)
    views: tuple[DerivedView, ...] = (
        CommitsView(waiters, store.height),  # first: a waiting client wakes at once
        *counted,
        EventsView(hub, store, ledger.records, store.height),
        HistoryView(index, store, ledger.records, store.base_height()),
        # Analytics fold every block from genesis: a node started from another's state
        # (state sync) does not run them, and their routes say so (503, view absent).
        *(() if store.base_height() else (AnalyticsView(analytics),)),
        *extra,
    )
    runner = ViewRunner(
        BlockFeed(store, ledger.genesis.chain_id),
        [hooks.wrap_view(v) for v in views],
        on_failure=None if metrics is None else metrics.observe_view_failure,
    )
    ledger.commit_notices.append(runner.notify)
    if metrics is not None:
        metrics.attach_views(runner.lags)
    return ApiViews(runner, index, analytics, hub, waiters)


class _Wiring:
    """The parts of a node that call one another, as named methods over explicit fields.

    The peer manager hands consensus frames to the driver and the driver broadcasts through
    the peer manager: the peers are made first, the driver is attached once it is built
    (``attach``); a consensus frame that arrives before is dropped, as a node that is
    still starting drops it. Transactions heard from peers go through the gossip admission
    to the mempool and on to the outbox."""

    def __init__(
        self,
        home: Home,
        ledger: LedgerApp,
        metrics: NodeMetrics,
        instruments: ConsensusInstruments | None,
    ) -> None:
        settings = home.settings
        self.home, self.ledger, self.metrics, self.instruments = home, ledger, metrics, instruments
        self.driver: Driver | None = None
        self.gossip = GossipAdmission(
            ledger.mempool.knows, ledger.verify_ahead, self.admit_gossiped
        )
        self.peers = PeerManager(
            home.node_key,
            PeerManagerConfig(
                chain_id=home.genesis.chain_id,
                listen_port=settings.p2p_port,
                listen_host=settings.p2p_host,
                peers=tuple(PeerAddress(p.public_key, p.host, p.port) for p in settings.peers),
                accept_from=frozenset(settings.accept_from),
            ),
            self.on_message,
        )
        self.outbox = GossipOutbox(self.peers.broadcast)

    def attach(self, driver: Driver) -> None:
        self.driver = driver

    def on_message(self, peer: PublicKey, payload: bytes) -> None:
        frame = read_frame(payload)
        if frame is None:
            return
        channel, items = frame
        if channel == Channel.CONSENSUS and self.driver is not None:
            if self.instruments is not None:
                self.instruments.observe(items[0])
            self.driver.submit(items[0])
        elif channel == Channel.TXS:
            for data in items:
                self.gossip.push(data)

    def admit_gossiped(self, data: bytes) -> None:
        added = self.ledger.mempool.add(data, self.ledger.check)
        if added.admission == Admission.ADMITTED:
            self.outbox.push(data)
        elif added.admission == Admission.REJECTED:
            self.metrics.observe_rejection(_code_name(added.verdict.code))

    def broadcast(self, data: bytes) -> None:
        """The driver's ``Transport``: a consensus message to every peer."""
        self.peers.broadcast(consensus_frame(data))

    def send_to(self, key: bytes, data: bytes) -> None:
        _discard(self.peers.send(PublicKey(key), consensus_frame(data)))

    def on_evidence(self, evidence: Equivocation | ConflictingProposals) -> None:
        first, second = evidence.first, evidence.second
        statements = (
            (first.signing_body(), first.signature),
            (second.signing_body(), second.signature),
        )
        verdict = self.ledger.report_evidence(statements, self.home.node_key)
        if verdict.code == 0:
            self.outbox.push(self.ledger.mempool.get(verdict.tx_id or b"") or b"")
        logger.warning(
            "evidence against %s submitted: code %d",
            first_key(evidence),
            verdict.code,
            extra={"height": first.height, "round": first.round},
        )

    def connected(self) -> int:
        return len(self.peers.connected_peers())


def _build_driver(wiring: _Wiring, signing: ConsensusSigner) -> Driver:
    """The consensus driver over the signer, the ledger and the peers (each wrapped by the
    tests' instruments when a test installs them)."""
    home, ledger, instruments = wiring.home, wiring.ledger, wiring.instruments
    parts: tuple[ConsensusSigner, ConsensusApplication, Transport] = (signing, ledger, wiring)
    if instruments is not None:  # tests only: see tools/faults/byzantine.py
        parts = instruments.install(
            *parts, send_to=wiring.send_to, peer_keys=wiring.peers.connected_peers
        )
    driver = Driver(
        chain_id=home.genesis.chain_id,
        config=consensus_config(home.settings),
        signer=parts[0],
        app=parts[1],
        transport=parts[2],
        clock=LoopClock(),
        on_evidence=wiring.on_evidence,
        locked_blocks=FileLockedBlockStore(home.path / config.LOCKED_BLOCK_FILE),
        work_waiting=lambda: len(ledger.mempool) > 0,
    )
    wiring.attach(driver)
    return driver


def _attach_sources(metrics: NodeMetrics, wiring: _Wiring) -> None:
    ledger, peers, settings = wiring.ledger, wiring.peers, wiring.home.settings
    metrics.attach(
        Sources(
            mempool_txs=lambda: len(ledger.mempool),
            mempool_bytes=lambda: ledger.mempool.size_bytes,
            peers=wiring.connected,
            p2p_sent_bytes=lambda: sum(s.bytes_sent for s in peers.all_stats()),
            p2p_received_bytes=lambda: sum(s.bytes_received for s in peers.all_stats()),
        )
    )
    metrics.attach_validators(
        ValidatorSources(
            own_key=wiring.home.node_key.public_key if settings.validator else None,
            validators=lambda: ledger.validator_set(ledger.last_block().height + 1),
            connected=peers.connected_peers,
        )
    )


async def _run_parts(home: Home, ledger: LedgerApp, stop: asyncio.Event, hooks: NodeHooks) -> None:
    settings, genesis = home.settings, home.genesis
    metrics = NodeMetrics()
    sign_state = CountingRecordStore(
        FileRecordStore(home.path / config.SIGN_STATE_FILE), metrics.sign_state_writes
    )
    signer = GuardedSigner(home.node_key, genesis.chain_id, sign_state)
    signing = restore_fence(home, ledger, signer)  # the signer, fenced after a restore
    instruments = hooks.instruments(home.node_key, genesis.chain_id)  # tests only; else None
    wiring = _Wiring(home, ledger, metrics, instruments)
    driver = _build_driver(wiring, signing)
    gossip, peers = wiring.gossip, wiring.peers
    status = NodeStatus(
        moniker=settings.moniker,
        validator=settings.validator,
        node_key=home.node_key.public_key,
        consensus_height=lambda: driver.height,
        peers=wiring.connected,
        gossip_tx=wiring.outbox.push,
    )
    _attach_sources(metrics, wiring)
    # the bank's node only
    settlement = open_settlement(home.path, ledger, status.gossip_tx, hooks.settlement_crash)
    if settlement is not None:
        metrics.attach_settlement(
            SettlementSources(settlement.journal.oldest_in_flight_ms, settlement.payout_counts)
        )
    index = HistoryIndex.open(home.path / INDEX_DIR)
    watcher = () if settlement is None else (SettlementWatcher(settlement),)
    views = build_views(ledger, index, metrics, watcher, hooks)
    views.runner.start()
    runner = views.runner
    control = asyncio.create_task(
        serve_control(home.path, runner.names, runner.rebuild, runner.statuses),
        name="views-control",
    )
    admitting = asyncio.create_task(gossip.run(), name="gossip-admission")
    backups = asyncio.create_task(serve_backups(home.path, ledger.store), name="backups")
    try:
        extra = () if settlement is None else (reading_view(settlement_routes(settlement)),)
        api_config = ApiConfig(trust_forwarded_for=settings.api_trust_forwarded_for)
        app = create_app(ledger, status, views, api_config, metrics, extra)
        if settlement is not None:
            app[BANK_SOURCE].journal = settlement.journal  # the bank's dashboard reads it
        app[ANALYTICS_SETTINGS_KEY] = analytics_settings(home.settings.analytics)
        api_tls = None if settings.api_tls is None else open_api_tls(home.path, settings.api_tls)
        if api_tls is not None:
            metrics.attach_tls(lambda: api_tls.not_after)
        await _serve_api(home, ledger, app, driver, peers, stop, api_tls)
    finally:
        for task in (admitting, control, backups):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.close()
        if instruments is not None:
            instruments.close()
        index.close()
        if settlement is not None:
            settlement.close()


async def _serve_api(
    home: Home,
    ledger: LedgerApp,
    app: web.Application,
    driver: Driver,
    peers: PeerManager,
    stop: asyncio.Event,
    api_tls: ApiTls | None = None,
) -> None:
    settings = home.settings
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    context = None if api_tls is None else api_tls.context
    try:
        site = web.TCPSite(runner, settings.api_host, settings.api_port, ssl_context=context)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise HomeError(
            f"cannot listen on {settings.api_host}:{settings.api_port}: {exc}"
        ) from None
    try:
        try:
            await peers.start()
        except OSError as exc:
            raise HomeError(
                f"cannot listen on {settings.p2p_host}:{settings.p2p_port}: {exc}"
            ) from None
        task = asyncio.create_task(driver.run(), name="consensus")
        # New certificate files: SIGHUP (systemctl reload), no restart; never a stop.
        reload = _no_tls_to_reload if api_tls is None else api_tls.reload_logged
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
        logger.info(
            "%s: API %s://%s:%d, p2p %s:%d, height %d",
            settings.moniker,
            "http" if api_tls is None else "https",
            settings.api_host,
            settings.api_port,
            settings.p2p_host,
            settings.p2p_port,
            ledger.last_block().height,
        )
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # a crashed consensus loop stops the node with its error
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        stopped.cancel()
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await peers.close()
        await runner.cleanup()


def restore_fence(home: Home, ledger: LedgerApp, signer: GuardedSigner) -> ConsensusSigner:
    """A home restored from a backup (``node.run.backup``) signs only once the network is past
    what its key may have signed before; any other home signs as usual."""
    restored_at = restored_height(home.path)
    if restored_at is None:
        return signer
    fence = RestoreFence(
        signer,
        home.path,
        restored_at,
        time.time_ns() // 1_000_000,
        home.settings.timeouts.time_drift_max_ms,
    )
    ledger.commit_notices.append(lambda b, _: fence.on_commit(b.header.height, b.header.time_ms))
    return fence


def open_api_tls(home: Path, files: config.ApiTlsFiles) -> ApiTls:
    try:
        return ApiTls(home, files)
    except TlsError as exc:
        raise HomeError(str(exc)) from None


class _Gated(Protocol):
    @property
    def gate(self) -> ViewGate: ...


G = TypeVar("G", bound=_Gated)


def reading_view(routes: Routes[G], view: str = SETTLEMENT) -> Routes[G]:
    """The read routes of ``routes`` answer 503 naming ``view`` while it is not serving
    (the settlement journal's summary and statements: the watcher feeds them)."""

    def gated(handler: Handler[G]) -> Handler[G]:
        @functools.wraps(handler)
        async def handle(parts: G, request: web.Request) -> object:
            parts.gate.require(view)
            return await handler(parts, request)

        return handle

    return Routes(
        routes.parts,
        tuple(
            dataclasses.replace(op, handler=gated(op.handler), errors=(*op.errors, 503))
            if op.method == "GET" and op.path not in VIEW_FREE_PATHS
            else op
            for op in routes.operations
        ),
    )


VIEW_FREE_PATHS: Final = frozenset({"/v1/settlement/iban"})  # the bank's own registry


def _code_name(code: int) -> str:
    try:
        return Result(code).name
    except ValueError:
        return str(code)


def first_key(evidence: Equivocation | ConflictingProposals) -> str:
    first = evidence.first
    key = first.validator if isinstance(first, Vote) else first.proposer
    return key.hex()[:16]


def _no_tls_to_reload() -> None:
    logger.info("SIGHUP: no [api] tls_cert configured, nothing to reload")


def _discard(_: object) -> None:
    return None


def run(home_path: Path, hooks: NodeHooks = NO_HOOKS) -> int:
    """Run a node in the foreground until SIGTERM or SIGINT. Returns the exit code.

    ``relance-node start`` passes no hooks; ``tools.faults.node`` passes test hooks."""
    try:
        home = read_home(home_path)
        # The genesis holds this node as it signed (member.json); peers from the genesis.
        settings = start_settings(home.path, home.settings, home.genesis, home.node_key.public_key)
        home = replace(home, settings=settings)
    except (HomeError, MemberError) as exc:
        logger.error("%s", exc)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(home, stop, hooks)

    try:
        asyncio.run(main())
    except (HomeError, StoreError, SettingsError) as exc:
        logger.error("%s", exc)
        return 2
    except ApplicationHalt as exc:
        logger.error("%s", exc)
        return HALT_EXIT_CODE
    return 0


def write_key(path: Path, seed: bytes) -> None:
    """Write a secret seed atomically, readable by its owner only."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(seed.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
