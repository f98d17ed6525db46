"""A local network on 127.0.0.1: homes for N validators, and a supervisor.

``write_devnet`` creates, under one directory, a home per validator (keys,
genesis with a bank and N-1 communes, configs with fixed ports) plus the
demo accounts' keys (``demo-keys.json``: ``bank``, ``auditor`` and each commune
by name, ``namur``, ``liege``...). ``Supervisor`` runs each validator as its own process
and stops them all cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

import aiohttp

from node.protocol.crypto import Signer
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
    render,
)
from node.run import config
from node.run.daemon import write_key
from node.store.blockstore import BlockStore

HOST: Final = "127.0.0.1"
COMMUNES: Final = (
    ("Ville de Namur", "Namur", ("NAM-CENTRE", "NAM-JAMBES", "NAM-BOUGE")),
    ("Ville de Liège", "Liège", ("LGE-CENTRE", "LGE-OUTREMEUSE")),
    ("Ville de Mons", "Mons", ("MON-CENTRE", "MON-NIMY")),
    ("Ville de Charleroi", "Charleroi", ("CRL-CENTRE", "CRL-GILLY")),
    ("Ville de Tournai", "Tournai", ("TRN-CENTRE",)),
    ("Ville d'Arlon", "Arlon", ("ARL-CENTRE",)),
)
REGION: Final = ("Région wallonne", "Wallonie", ("WAL-REGION",))
"""The devnet's region (``write_devnet(region=True)``): an issuer like a commune, its own
zone nominal; its campaigns reach the communes' zones where they consent (``consent_zones``)."""
REGION_KEY_NAME: Final = "wallonie"  # its key in demo-keys.json
DEMO_KEYS_FILE: Final = "demo-keys.json"


def commune_key_name(territory: str) -> str:
    """A commune's key name in ``demo-keys.json``: its territory in lower-case ASCII
    (``Liège`` -> ``liege``)."""
    folded = unicodedata.normalize("NFKD", territory).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum() or c == "-") or "commune"


COMMUNE_KEY_NAMES: Final = tuple(commune_key_name(territory) for _, territory, _ in COMMUNES)


def issuer_key_names(genesis: Genesis) -> list[str]:
    """The key names of the genesis communes, in genesis order."""
    return [commune_key_name(i.territory) for i in genesis.issuers]


STOP_GRACE_S: Final = 10.0


class DevnetError(RuntimeError):
    """The devnet cannot be created or started; the message says why."""


@dataclass(frozen=True, slots=True)
class DevnetNode:
    name: str
    home: Path
    p2p_port: int
    api_port: int

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"


def node_homes(root: Path) -> list[DevnetNode]:
    """The nodes of an existing devnet directory, in order."""
    nodes = []
    for home in sorted(root.glob("node*"), key=lambda p: int(p.name[4:] or 0)):
        settings = config.parse((home / config.CONFIG_FILE).read_text(encoding="utf-8"))
        nodes.append(DevnetNode(settings.moniker, home, settings.p2p_port, settings.api_port))
    return nodes


def write_devnet(
    root: Path, nodes: int, base_port: int, now_ms: int, observers: int = 0, region: bool = False
) -> list[DevnetNode]:
    """Create ``nodes`` validator homes (then ``observers`` non-voting ones) under ``root``;
    with ``region``, genesis also declares the region ``REGION`` (key ``REGION_KEY_NAME``)."""
    if not 1 <= nodes <= len(COMMUNES) + 1:
        raise DevnetError(f"a devnet has 1 to {len(COMMUNES) + 1} validators")
    if not 0 <= observers <= 8:
        raise DevnetError("a devnet has 0 to 8 observers")
    if (root / "node0").exists():
        raise DevnetError(f"{root} already holds a devnet; remove it or pick another --home")
    total = nodes + observers
    ports = [(base_port + 2 * i, base_port + 2 * i + 1) for i in range(total)]
    _check_free([p for pair in ports for p in pair])
    node_keys = [Signer.generate() for _ in range(total)]
    accounts = {name: Signer.generate() for name in ("bank", "auditor")}
    communes = COMMUNES[: max(1, nodes - 1)]
    for i in range(len(communes)):
        accounts[COMMUNE_KEY_NAMES[i]] = Signer.generate()
    if region:
        accounts[REGION_KEY_NAME] = Signer.generate()
    genesis = _genesis(now_ms, node_keys[:nodes], accounts, communes)
    validator_addresses = [
        config.PeerAddress(k.public_key, HOST, p)
        for k, (p, _) in zip(node_keys[:nodes], ports, strict=False)
    ]
    observer_keys = tuple(k.public_key for k in node_keys[nodes:])
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (key, (p2p, api)) in enumerate(zip(node_keys, ports, strict=True)):
        voting = i < nodes
        name = genesis.validators[i].name if voting else f"Observateur {i - nodes + 1}"
        settings = config.NodeConfig(
            moniker=name,
            validator=voting,
            p2p_host=HOST,
            p2p_port=p2p,
            api_host=HOST,
            api_port=api,
            peers=tuple(a for a in validator_addresses if a.public_key != key.public_key),
            timeouts=config.Timeouts(propose_ms=1_000, commit_ms=300),
            accept_from=observer_keys if voting else (),
        )
        home = root / f"node{i}"
        init_home(home, settings, genesis, key)
        out.append(DevnetNode(name, home, p2p, api))
    keys = {name: signer.seed.hex() for name, signer in accounts.items()}
    _write_private(root / DEMO_KEYS_FILE, json.dumps(keys, indent=2))
    return out


def init_home(home: Path, settings: config.NodeConfig, genesis: Genesis, key: Signer) -> None:
    """Write a node home: config, genesis, node key and an empty store."""
    home.mkdir(parents=True, exist_ok=True)
    if (home / config.CONFIG_FILE).exists():
        raise DevnetError(f"{home} already holds a node")
    (home / config.CONFIG_FILE).write_text(config.render(settings), encoding="utf-8")
    (home / config.GENESIS_FILE).write_text(render(genesis), encoding="utf-8")
    write_key(home / config.NODE_KEY_FILE, key.seed)
    BlockStore.open(home / config.DATA_DIR, genesis.genesis_hash, create=True).close()


def _genesis(
    now_ms: int,
    node_keys: list[Signer],
    accounts: dict[str, Signer],
    communes: tuple[tuple[str, str, tuple[str, ...]], ...],
) -> Genesis:
    validators = [GenesisValidator("Banque", "bank", node_keys[0].public_key, 1)]
    for i, key in enumerate(node_keys[1:]):
        validators.append(GenesisValidator(communes[i][0], "commune", key.public_key, 1))
    return Genesis(
        chain_id=f"relance-devnet-{now_ms // 1000}",
        genesis_time_ms=now_ms,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Banque", accounts["bank"].public_key),
        validators=tuple(validators),
        issuers=tuple(
            GenesisIssuer(name, territory, accounts[COMMUNE_KEY_NAMES[i]].public_key, zones)
            for i, (name, territory, zones) in enumerate(communes)
        )
        + (
            (GenesisIssuer(REGION[0], REGION[1], accounts[REGION_KEY_NAME].public_key, REGION[2]),)
            if REGION_KEY_NAME in accounts
            else ()
        ),
        auditors=(GenesisAccount("Auditeur", accounts["auditor"].public_key),),
    )


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a node could listen on ``port`` now. Probed as the node binds (asyncio and
    aiohttp set ``SO_REUSEADDR``): a port whose last connections linger in TIME_WAIT,
    after a previous run stopped, is free for it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen(1)  # a listener of another process refuses this, even with the option
        except OSError:
            return False
    return True


def _check_free(ports: list[int]) -> None:
    for port in ports:
        if not port_is_free(port):
            raise DevnetError(
                f"port {port} on {HOST} is busy: stop what uses it or pick --base-port"
            )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class Supervisor:
    """Runs each devnet node as its own process; stops them all on request."""

    def __init__(self, nodes: list[DevnetNode]) -> None:
        self.nodes = nodes
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._procs = [self._spawn(node) for node in self.nodes]

    @staticmethod
    def _spawn(node: DevnetNode) -> subprocess.Popen[bytes]:
        with (node.home / "node.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "node.run.cli", "start", "--home", str(node.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop_one(self, index: int) -> None:
        """SIGTERM one node and wait for it (SIGKILL after the grace period)."""
        _terminate([self._procs[index]])

    def restart_one(self, index: int) -> None:
        if self._procs[index].poll() is None:
            raise DevnetError(f"{self.nodes[index].name} is still running")
        self._procs[index] = self._spawn(self.nodes[index])

    def pid(self, index: int) -> int:
        """The process id of node ``index`` (to signal it: SIGHUP reloads the API's TLS)."""
        return self._procs[index].pid

    def exit_code(self, index: int) -> int | None:
        return self._procs[index].poll()

    def exited(self) -> list[tuple[str, int]]:
        return [
            (node.name, code)
            for node, proc in zip(self.nodes, self._procs, strict=True)
            if (code := proc.poll()) is not None
        ]

    def stop(self) -> None:
        _terminate(self._procs)


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_ready(
    urls: list[str],
    stop: asyncio.Event,
    alive: Callable[[], bool],
    timeout_s: float = 60.0,
    views_serving: bool = False,
) -> None:
    """Wait until every node's API answers (bounded), or ``stop`` is set, or one dies.

    With ``views_serving``, until every node's derived views serve too (health "ok"):
    a node started on a long history replays it into its views before its pages answer."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for url in urls:
            while not stop.is_set():
                try:
                    async with session.get(url + "/v1/health") as response:
                        if response.status == 200 and (
                            not views_serving or (await response.json()).get("status") == "ok"
                        ):
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if not alive():
                    raise DevnetError("a validator exited while starting: see its node.log")
                if time.monotonic() > deadline:
                    raise DevnetError(f"{url} did not answer within {timeout_s:.0f} s")
                await asyncio.sleep(0.2)  # a process starting up: nothing to wait on but time


def reroute_peers(home: Path, addresses: Mapping[bytes, tuple[str, int]]) -> None:
    """Point the peer entries of ``home``'s config whose key is in ``addresses`` elsewhere.

    For fault tests: each node dials its peers through a proxy. Other entries and
    settings are kept; the file is rewritten whole (the node must be stopped).
    """
    path = home / config.CONFIG_FILE
    settings = config.parse(path.read_text(encoding="utf-8"))
    peers = tuple(
        config.PeerAddress(p.public_key, *addresses[p.public_key])
        if p.public_key in addresses
        else p
        for p in settings.peers
    )
    path.write_text(config.render(replace(settings, peers=peers)), encoding="utf-8")
