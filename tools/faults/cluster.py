"""A devnet under fault control: every link through a proxy, every process ours.

``Cluster.create`` writes a devnet (``node.devnet.network``), starts one proxy per
directed pair of validators, points each node's peer entries at its proxies,
and prepares the processes (journal on for every node, byzantine switches
for the chosen ones). The methods are the scenario's vocabulary: cut, heal,
isolate, partition, degrade links; kill, pause, resume, restart nodes; read
heights over the API; wait, bounded, for a condition on the live processes.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Final, TypeVar

from node.devnet.demo import load_keys
from node.devnet.network import (
    DEMO_KEYS_FILE,
    HOST,
    DevnetNode,
    port_is_free,
    reroute_peers,
    write_devnet,
)
from node.protocol.crypto import Signer
from node.protocol.genesis import Genesis
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from tools.faults.byzantine import ENV_BYZANTINE, ENV_JOURNAL
from tools.faults.loop import LoopThread
from tools.faults.procs import NodeProcesses
from tools.faults.proxy import CUT, Fault, ProxyNet

T = TypeVar("T")

JOURNAL_FILE: Final = "journal.log"
LOG_FILE: Final = "node.log"
POLL_S: Final = 0.2  # real processes: their progress over HTTP is all there is to wait on
HTTP_TIMEOUT_S: Final = 2.0
READY_TIMEOUT_S: Final = 60.0
READ_TIMEOUT_S: Final = 15.0


class ClusterError(RuntimeError):
    """The cluster could not be made or did not reach a state in time."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    validators: int = 4
    observers: int = 0  # non-voting nodes after the validators, dialling each of them
    seed: int = 1
    byzantine: Mapping[int, str] = field(default_factory=dict)  # index -> switches
    journal: bool = True
    timeouts: config.Timeouts | None = None  # None: the devnet's
    env: Mapping[int, Mapping[str, str]] = field(default_factory=dict)  # index -> test switches


class Cluster:
    """N validators on 127.0.0.1 behind proxies. Use as a context manager, or ``close``."""

    def __init__(
        self,
        root: Path,
        spec: ClusterSpec,
        nodes: list[DevnetNode],
        genesis: Genesis,
        keys: dict[str, Signer],
        node_keys: list[bytes],
        loop: LoopThread,
        net: ProxyNet,
        procs: NodeProcesses,
    ) -> None:
        self.root = root
        self.spec = spec
        self.nodes = nodes
        self.genesis = genesis
        self.keys = keys
        self.node_keys = node_keys
        self.loop = loop
        self.net = net
        self.procs = procs

    # --- making and closing ------------------------------------------------------------

    @classmethod
    def create(cls, root: Path, spec: ClusterSpec) -> Cluster:
        n, total = spec.validators, spec.validators + spec.observers
        # Every node dials every validator but itself, each dial through its own proxy.
        dials = [(i, j) for i in range(total) for j in range(n) if i != j]
        now_ms = time.time_ns() // 1_000_000
        base = free_base_port(2 * total + len(dials), spec.seed)  # nodes' ports, then proxies'
        nodes = write_devnet(root, n, base, now_ms, observers=spec.observers)
        genesis = parse_genesis((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
        keys = load_keys(root / DEMO_KEYS_FILE)
        node_keys = [_node_key(node.home) for node in nodes]
        if spec.timeouts is not None:
            for node in nodes:
                _set_timeouts(node.home, spec.timeouts)
        loop = LoopThread()
        net = ProxyNet(spec.seed)
        try:
            addresses: list[dict[bytes, tuple[str, int]]] = [{} for _ in range(total)]
            for port, (i, j) in enumerate(dials, start=base + 2 * total):
                loop.call(net.start(i, j, nodes[j].p2p_port, port), 10)
                addresses[i][node_keys[j]] = (HOST, port)
            for i, node in enumerate(nodes):
                reroute_peers(node.home, addresses[i])
        except BaseException:
            loop.call(net.close(), 10)
            loop.stop()
            raise
        env = []
        for i, node in enumerate(nodes):
            extra = {}
            if spec.journal:
                extra[ENV_JOURNAL] = str(node.home / JOURNAL_FILE)
            if i in spec.byzantine:
                extra[ENV_BYZANTINE] = spec.byzantine[i]
            extra.update(spec.env.get(i, {}))
            env.append(extra)
        procs = NodeProcesses([node.home for node in nodes], env)
        return cls(root, spec, nodes, genesis, keys, node_keys, loop, net, procs)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start every node and wait until each API answers."""
        self.procs.start_all()
        for index in range(len(self.nodes)):
            self.wait_for(partial(self.status, index), READY_TIMEOUT_S, f"node {index} up")

    def stop_nodes(self) -> dict[int, int]:
        """SIGTERM every node (resuming paused ones first); their exit codes."""
        return self.procs.stop_all()

    def close(self) -> None:
        """Stop the nodes, then the proxies and their loop. Idempotent."""
        self.procs.stop_all()
        if not self.loop.loop.is_closed():
            self.loop.call(self.net.close(), 10)
            self.loop.stop()

    # --- the nodes ---------------------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.nodes)

    @property
    def honest(self) -> list[int]:
        return [i for i in range(self.size) if i not in self.spec.byzantine]

    def url(self, index: int) -> str:
        return self.nodes[index].api_url

    def journal(self, index: int) -> Path:
        return self.nodes[index].home / JOURNAL_FILE

    def log(self, index: int) -> Path:
        return self.nodes[index].home / LOG_FILE

    def proposer(self, height: int, round: int = 0) -> int:
        """Who proposes at ``height`` and ``round`` (genesis order, round-robin)."""
        return (height + round) % self.size

    def status(self, index: int) -> dict[str, object] | None:
        """``/v1/status`` of a node; None when it does not answer (down, paused, busy)."""
        if not self.procs.is_running(index) or self.procs.is_paused(index):
            return None
        try:
            with urllib.request.urlopen(
                self.url(index) + "/v1/status", timeout=HTTP_TIMEOUT_S
            ) as response:
                body: dict[str, object] = json.load(response)
                return body
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def height(self, index: int) -> int | None:
        status = self.status(index)
        if status is None:
            return None
        height = status["height"]
        return height if isinstance(height, int) else None

    def heights(self, indices: Iterable[int] | None = None) -> dict[int, int | None]:
        chosen = range(self.size) if indices is None else indices
        return {i: self.height(i) for i in chosen}

    def wait_for(self, check: Callable[[], T | None], timeout_s: float, what: str) -> T:
        """Ask ``check`` until it gives a value, at most ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = check()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            crashed = self.procs.crashed()
            if crashed:
                raise ClusterError(f"node(s) {crashed} exited while waiting for {what}")
            time.sleep(POLL_S)

    def wait_heights(self, indices: Sequence[int], at_least: int, timeout_s: float) -> float:
        """Wait until every node of ``indices`` has a block at ``at_least``; seconds taken."""
        start = time.monotonic()

        def reached() -> bool | None:
            heights = self.heights(indices)
            return True if all((h or 0) >= at_least for h in heights.values()) else None

        self.wait_for(reached, timeout_s, f"nodes {list(indices)} at height {at_least}")
        return time.monotonic() - start

    def read_height(self, index: int, timeout_s: float = READ_TIMEOUT_S) -> int:
        """A running node's height, asking again while it does not answer (a loaded machine)."""
        return self.wait_for(partial(self.height, index), timeout_s, f"node {index}'s height")

    def read_heights(self, indices: Iterable[int] | None = None) -> dict[int, int]:
        chosen = range(self.size) if indices is None else indices
        return {i: self.read_height(i) for i in chosen}

    def top(self, indices: Iterable[int] | None = None) -> int:
        """The highest height among ``indices`` (all nodes by default) that answer."""
        chosen = list(range(self.size) if indices is None else indices)

        def answered() -> int | None:
            heights = [h for h in self.heights(chosen).values() if h is not None]
            return max(heights) if heights else None

        return self.wait_for(answered, READ_TIMEOUT_S, f"a height from nodes {chosen}")

    # --- the links ---------------------------------------------------------------------

    def set_fault(self, src: int, dst: int, fault: Fault) -> None:
        self.net.set_fault(src, dst, fault)

    def cut(self, a: int, b: int) -> None:
        """Both directions between ``a`` and ``b``."""
        self.net.set_faults(((a, b), (b, a)), CUT)

    def isolate(self, index: int) -> None:
        for other in range(self.size):
            if other != index:
                self.cut(index, other)

    def partition(self, *groups: Sequence[int]) -> None:
        """Cut every link between different groups; links within a group stay as they are."""
        for g, group in enumerate(groups):
            for other in groups[g + 1 :]:
                for a in group:
                    for b in other:
                        self.cut(a, b)

    def heal(self) -> None:
        """Every direction calm again."""
        self.net.calm()

    def directions(self) -> list[tuple[int, int]]:
        return [(a, b) for a in range(self.size) for b in range(self.size) if a != b]


def _node_key(home: Path) -> bytes:
    seed = bytes.fromhex((home / config.NODE_KEY_FILE).read_text(encoding="ascii").strip())
    return Signer(seed).public_key


def _set_timeouts(home: Path, timeouts: config.Timeouts) -> None:
    path = home / config.CONFIG_FILE
    settings = config.parse(path.read_text(encoding="utf-8"))
    path.write_text(config.render(replace(settings, timeouts=timeouts)), encoding="utf-8")


PORTS_LOW = 20_000  # where listening ports are looked for, up to the kernel's ephemeral range
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_base_port(count: int, seed: int | None = None) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1.

    Only below the kernel's ephemeral range: a port picked there could be taken,
    before our node binds it, by any outgoing connection (a peer dialling, a client).
    """
    rng = random.Random(f"{seed}:{time.time_ns()}")
    high = _ephemeral_low() - count
    for _ in range(200):
        base = rng.randrange(PORTS_LOW, high)
        if all(port_is_free(base + i) for i in range(count)):
            return base
    raise ClusterError("no free port range on 127.0.0.1")


def _ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (Linux default 32768)."""
    try:
        low = int(_EPHEMERAL_RANGE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        low = 32_768
    return low if low > PORTS_LOW + 1_000 else 60_000
