"""Node settings: one TOML file per node home, parsed into frozen objects.

These are local choices (addresses, peers, timeouts); the protocol lives in
the genesis document. A node home holds:

- ``config.toml``  this file
- ``genesis.toml`` the chain's genesis document
- ``node_key``     the node's Ed25519 seed, hex, mode 0600 (validators sign votes with it)
- ``data/``        the LevelDB store
- ``sign_state``   the signer's durable record of what it last signed
- ``locked_block`` the block it last precommitted (re-proposed after a full restart)

Pure: parses and renders text; the daemon reads the files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from node.analytics.privacy import K_DEFAULT, K_MAX
from node.consensus.tendermint import ConsensusConfig
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey
from node.text.settings import ConfigError as ConfigError  # the settings' one error type
from node.text.settings import Table, parse_toml

CONFIG_FILE: Final = "config.toml"
GENESIS_FILE: Final = "genesis.toml"
NODE_KEY_FILE: Final = "node_key"
DATA_DIR: Final = "data"
SIGN_STATE_FILE: Final = "sign_state"
LOCKED_BLOCK_FILE: Final = "locked_block"
LOG_FORMATS: Final = ("text", "json")  # [log] format: lines for people, JSON lines (node.run.logs)


@dataclass(frozen=True, slots=True)
class PeerAddress:
    public_key: PublicKey
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Timeouts(ConsensusConfig):
    """``[timeouts]``: the consensus step timeouts (``base + round * delta``, milliseconds,
    under the same names) and the pause after a decision before the next height."""

    commit_ms: int = limits.TIMEOUT_COMMIT_MS


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """``[analytics]``: how many distinct holders a published cell needs (k), per issuer.

    Optional: a config without the section gets k = 5 for every issuer."""

    k_default: int = K_DEFAULT
    k_by_issuer: tuple[tuple[PublicKey, int], ...] = ()  # (issuer key, k), keys distinct


K_MIN: Final = K_DEFAULT  # a node may be stricter than the default, never looser


@dataclass(frozen=True, slots=True)
class ApiTlsFiles:
    """PEM files of the API's certificate chain and key, relative to the home or absolute."""

    cert: str
    key: str


@dataclass(frozen=True, slots=True)
class NodeConfig:
    moniker: str
    validator: bool  # False: an observer that syncs and verifies but never votes
    p2p_host: str
    p2p_port: int
    api_host: str
    api_port: int
    peers: tuple[PeerAddress, ...]
    timeouts: Timeouts = field(default_factory=Timeouts)
    accept_from: tuple[PublicKey, ...] = ()  # observers allowed to connect (never dialed)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)
    log_format: str = LOG_FORMATS[0]  # one of LOG_FORMATS; optional [log] section
    api_tls: ApiTlsFiles | None = None  # [api] tls_cert and tls_key: serve HTTPS (node.run.tls)
    api_trust_forwarded_for: bool = False  # [api] trust_forwarded_for: behind a reverse proxy


def parse(text: str, file: str = CONFIG_FILE) -> NodeConfig:
    doc = parse_toml(text, file)
    p2p, api = doc.table("p2p"), doc.table("api")
    return NodeConfig(
        moniker=doc.text("moniker"),
        validator=doc.flag("validator"),
        p2p_host=p2p.text("host"),
        p2p_port=p2p.port("port"),
        api_host=api.text("host"),
        api_port=api.port("port"),
        peers=tuple(_peer(p) for p in p2p.tables("peers")),
        accept_from=tuple(
            _hex_key(p2p, f"accept_from[{n}]", k) for n, k in enumerate(p2p.array("accept_from"))
        ),
        timeouts=_timeouts(doc.table("timeouts", optional=True)),
        analytics=_analytics(doc.table("analytics", optional=True)),
        log_format=_log_format(doc.table("log", optional=True)),
        api_tls=_api_tls(api),
        api_trust_forwarded_for=api.flag("trust_forwarded_for", False),
    )


def parse_peers(text: str, file: str = "peers file") -> tuple[PeerAddress, ...]:
    """A peers file: ``peers = [{ public_key = "hex", host = "...", port = 26600 }, ...]``."""
    doc = parse_toml(text, file)
    doc.only({"peers"}, "a peers file")
    return tuple(_peer(p) for p in doc.tables("peers"))


def render(config: NodeConfig) -> str:
    lines = [
        "# Relance node settings (local to this node; the protocol is in genesis.toml).",
        f'moniker = "{config.moniker}"',
        f"validator = {'true' if config.validator else 'false'}",
        "",
        "[p2p]",
        f'host = "{config.p2p_host}"',
        f"port = {config.p2p_port}",
    ]
    lines.append("peers = [")
    for peer in config.peers:
        lines.append(
            f'  {{ public_key = "{peer.public_key.hex()}", host = "{peer.host}", '
            f"port = {peer.port} }},"
        )
    lines.append("]")
    lines.append(f"accept_from = [{', '.join(repr(k.hex()) for k in config.accept_from)}]")
    lines += ["", "[api]", f'host = "{config.api_host}"', f"port = {config.api_port}"]
    if config.api_tls is not None:
        lines += [f'tls_cert = "{config.api_tls.cert}"', f'tls_key = "{config.api_tls.key}"']
    if config.api_trust_forwarded_for:
        lines.append("trust_forwarded_for = true")
    lines.append("")
    lines.append("[timeouts]")
    for name in Timeouts.__dataclass_fields__:
        lines.append(f"{name} = {getattr(config.timeouts, name)}")
    k_by_issuer = ", ".join(f'"{key.hex()}" = {k}' for key, k in config.analytics.k_by_issuer)
    lines += [
        "",
        "[analytics]",
        "# distinct holders a published cell needs; stricter per issuer if listed",
        f"k_default = {config.analytics.k_default}",
        f"k_by_issuer = {{ {k_by_issuer} }}" if k_by_issuer else "k_by_issuer = {}",
        "",
        "[log]",
        f"# {' or '.join(LOG_FORMATS)} (one JSON object per line); start --log-format overrides",
        f'format = "{config.log_format}"',
    ]
    return "\n".join(lines) + "\n"


def _analytics(table: Table) -> AnalyticsConfig:
    table.only({"k_default", "k_by_issuer"})
    by_issuer = table.table("k_by_issuer", optional=True)
    k_default = _k(table, "k_default", K_DEFAULT)
    pairs = [
        (_hex_key(by_issuer, text, text.lower()), _k(by_issuer, text, None))
        for text in by_issuer.names()
    ]
    if len({key for key, _ in pairs}) != len(pairs):
        raise by_issuer.fail(None, "names an issuer twice")
    return AnalyticsConfig(k_default, tuple(pairs))


API_KEYS: Final = frozenset({"host", "port", "tls_cert", "tls_key", "trust_forwarded_for"})


def _api_tls(api: Table) -> ApiTlsFiles | None:
    api.only(API_KEYS, "[api]")
    if not api.has("tls_cert") and not api.has("tls_key"):
        return None
    if not api.has("tls_cert") or not api.has("tls_key"):
        raise api.fail("tls_cert and api.tls_key", "go together")
    return ApiTlsFiles(api.text("tls_cert"), api.text("tls_key"))


def _log_format(table: Table) -> str:
    table.only({"format"})
    return table.choice("format", LOG_FORMATS, LOG_FORMATS[0])


def _k(table: Table, key: str, default: int | None) -> int:
    return table.integer(key, K_MIN, K_MAX, default, "a whole number of holders")


def _peer(table: Table) -> PeerAddress:
    key = _hex_key(table, "public_key", table.values.get("public_key"))
    return PeerAddress(key, table.text("host"), table.port("port"))


def _hex_key(table: Table, key: str, text: object) -> PublicKey:
    if not isinstance(text, str):
        raise table.fail(key, "must be a hex string")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise table.fail(key, "is not hex") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise table.fail(key, "must be 32 bytes of hex")
    return PublicKey(raw)


def _timeouts(table: Table) -> Timeouts:
    defaults, top = Timeouts(), limits.TIMEOUT_MS_MAX
    chosen = {
        name: table.integer(name, 0, top, getattr(defaults, name), "milliseconds")
        for name in Timeouts.__dataclass_fields__
    }
    try:
        return Timeouts(**chosen)
    except ValueError as exc:
        raise ConfigError(f"{table.file}: timeouts: {exc}") from None
