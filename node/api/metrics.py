"""The node's Prometheus metrics (prometheus-client), served at ``/metrics``.

Names follow Prometheus conventions: a ``relance_`` prefix, base units
(seconds, bytes) in the name, ``_total`` on counters. Each node owns one
registry (no process-global state), so tests can run several nodes.

Values that live elsewhere (mempool, peers, link byte counters) are read at
scrape time through callbacks, so nothing has to push them.

May import the consensus signer's record types (to count sign-state writes);
knows nothing of HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node.app import version
from node.consensus.signer import RecordStore, SignRecord
from node.consensus.types import ValidatorSet

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
ROUND_BUCKETS: Final = (1.0, 2.0, 3.0, 4.0, 6.0, 10.0)
INTERVAL_BUCKETS_S: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Sources:
    """Callbacks read at scrape time."""

    mempool_txs: Callable[[], int]
    mempool_bytes: Callable[[], int]
    peers: Callable[[], int]
    p2p_sent_bytes: Callable[[], int]
    p2p_received_bytes: Callable[[], int]


@dataclass(frozen=True, slots=True)
class SettlementSources:
    """The bank node's settlement journal, read at scrape time."""

    oldest_in_flight_ms: Callable[[], int | None]  # block time of the oldest open file
    payouts: Callable[[], Mapping[str, int]]  # payouts by journal state
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ValidatorSources:
    """Who votes next and whom this node is linked to, read at scrape time."""

    own_key: bytes | None  # None: an observer (never votes)
    validators: Callable[[], ValidatorSet]  # the set of the next height
    connected: Callable[[], Collection[bytes]]  # keys of the peers with a live link


class _Attached(Collector, Generic[S]):
    """Metrics read at scrape time from sources attached once the node is wired."""

    def __init__(self, read: Callable[[S], Iterable[Metric]]) -> None:
        self.sources: S | None = None
        self._read = read

    def collect(self) -> Iterable[Metric]:
        return () if self.sources is None else self._read(self.sources)


def _validator_metrics(s: ValidatorSources) -> Iterator[Metric]:
    validators = s.validators().validators
    linked = set(s.connected())
    own = sum(v.power for v in validators if v.public_key == s.own_key)
    yield GaugeMetricFamily(
        "relance_voting_power_validators",
        "Voting power of the next height's validators",
        sum(v.power for v in validators),
    )
    yield GaugeMetricFamily(
        "relance_voting_power_own", "This node's voting power (0: it does not vote)", own
    )
    yield GaugeMetricFamily(
        "relance_voting_power_reachable",
        "This node's voting power plus that of the validators it has a live link to",
        own + sum(v.power for v in validators if v.public_key in linked),
    )
    connected = GaugeMetricFamily(
        "relance_validator_connected",
        "1 if this node has a live link to the validator (itself not listed)",
        labels=["validator", "key"],
    )
    for v in validators:
        if v.public_key != s.own_key:
            connected.add_metric([v.name, v.public_key.hex()[:16]], int(v.public_key in linked))
    yield connected


def _settlement_metrics(s: SettlementSources) -> Iterator[Metric]:
    oldest = s.oldest_in_flight_ms()
    age_s = 0.0 if oldest is None else max(0, s.now_ms() - oldest) / 1000
    yield GaugeMetricFamily(
        "relance_settlement_oldest_pending_age_seconds",
        "Age of the oldest payment file with a payout not yet settled or returned on the "
        "ledger (0: none)",
        age_s,
    )
    by_state = GaugeMetricFamily(
        "relance_settlement_payouts",
        "Payouts in the bank's journal, by state",
        labels=["state"],
    )
    for state, count in sorted(s.payouts().items()):
        by_state.add_metric([state], count)
    yield by_state


class _Live(Collector):
    def __init__(self) -> None:
        self.sources: Sources | None = None
        self.view_lags: Callable[[], Iterable[tuple[str, int]]] | None = None

    def collect(self) -> Iterable[Metric]:
        if self.view_lags is not None:
            lag = GaugeMetricFamily(
                "relance_view_lag_blocks",
                "Blocks a derived view is behind the chain, by view",
                labels=["view"],
            )
            for name, blocks in self.view_lags():
                lag.add_metric([name], blocks)
            yield lag
        s = self.sources
        if s is None:
            return
        yield GaugeMetricFamily(
            "relance_mempool_transactions", "Transactions waiting in the mempool", s.mempool_txs()
        )
        yield GaugeMetricFamily(
            "relance_mempool_bytes", "Bytes of the transactions in the mempool", s.mempool_bytes()
        )
        yield GaugeMetricFamily("relance_peers", "Connected validator peers", s.peers())
        yield CounterMetricFamily(
            "relance_p2p_sent_bytes", "Bytes sent to peers (wire)", s.p2p_sent_bytes()
        )
        yield CounterMetricFamily(
            "relance_p2p_received_bytes", "Bytes received from peers (wire)", s.p2p_received_bytes()
        )


class NodeMetrics:
    """Every metric of one node, in its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.height = Gauge("relance_height", "Height of the last finalised block", registry=reg)
        self.block_time = Gauge(
            "relance_block_time_seconds", "Block time of the last finalised block", registry=reg
        )
        self.rounds = Histogram(
            "relance_consensus_rounds",
            "Rounds needed to decide a height (1: decided in round 0)",
            buckets=ROUND_BUCKETS,
            registry=reg,
        )
        self.block_interval = Histogram(
            "relance_block_interval_seconds",
            "Block time between consecutive finalised blocks",
            buckets=INTERVAL_BUCKETS_S,
            registry=reg,
        )
        self.committed = Counter(
            "relance_transactions_committed",
            "Transactions in finalised blocks, by kind",
            ["kind"],
            registry=reg,
        )
        self.rejected = Counter(
            "relance_transactions_rejected",
            "Transactions refused at admission (API or gossip), by result code",
            ["code"],
            registry=reg,
        )
        self.api_latency = Histogram(
            "relance_api_request_duration_seconds",
            "HTTP API latency, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.api_responses = Counter(
            "relance_api_responses",
            "HTTP API responses, by route template, method and status",
            ["route", "method", "status"],
            registry=reg,
        )
        self.sign_state_writes = Counter(
            "relance_signer_state_writes",
            "Durable writes of the signer's last-signed record",
            registry=reg,
        )
        self.stream_subscribers = Gauge(
            "relance_api_stream_subscribers", "Open server-sent-event streams", registry=reg
        )
        self.view_failures = Counter(
            "relance_view_failures",
            "Times a derived view raised and stopped (until rebuilt), by view",
            ["view"],
            registry=reg,
        )
        self.build_info = Gauge(
            "relance_build_info",
            "Always 1: the node's software version and the protocol (encodings) it speaks",
            ["software", "protocol"],
            registry=reg,
        )
        self.build_info.labels(
            software=version.SOFTWARE_VERSION, protocol=version.PROTOCOL_VERSION
        ).set(1)
        self._live = _Live()
        reg.register(self._live)
        self._settlement = _Attached(_settlement_metrics)
        reg.register(self._settlement)
        self._validators = _Attached(_validator_metrics)
        reg.register(self._validators)
        self._last_time_ms: int | None = None

    def attach(self, sources: Sources) -> None:
        self._live.sources = sources

    def attach_views(self, lags: Callable[[], Iterable[tuple[str, int]]]) -> None:
        """The derived views' lags, read at scrape time."""
        self._live.view_lags = lags

    def attach_tls(self, not_after: Callable[[], int]) -> None:
        """The API serves TLS: export its certificate's notAfter (absent without TLS, so the
        expiry alert never fires on a node behind a proxy)."""
        gauge = Gauge(
            "relance_tls_certificate_expiry_seconds",
            "notAfter of the API's TLS certificate, Unix seconds (follows SIGHUP reloads)",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(not_after()))

    def observe_view_failure(self, view: str) -> None:
        self.view_failures.labels(view=view).inc()

    def attach_validators(self, sources: ValidatorSources) -> None:
        self._validators.sources = sources

    def attach_settlement(self, sources: SettlementSources) -> None:
        """The bank's node only: settlement metrics from its journal."""
        self._settlement.sources = sources

    def observe_block(self, height: int, time_ms: int, round: int, kinds: Iterable[str]) -> None:
        self.height.set(height)
        self.block_time.set(time_ms / 1000)
        self.rounds.observe(round + 1)
        if self._last_time_ms is not None and time_ms >= self._last_time_ms:
            self.block_interval.observe((time_ms - self._last_time_ms) / 1000)
        self._last_time_ms = time_ms
        for kind in kinds:
            self.committed.labels(kind=kind).inc()

    def observe_rejection(self, code_name: str) -> None:
        self.rejected.labels(code=code_name).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountingRecordStore:
    """A ``RecordStore`` that counts its durable writes."""

    __slots__ = ("_counter", "_inner")

    def __init__(self, inner: RecordStore, counter: Counter) -> None:
        self._inner = inner
        self._counter = counter

    def load(self) -> SignRecord | None:
        return self._inner.load()

    def save(self, record: SignRecord) -> None:
        self._inner.save(record)
        self._counter.inc()
