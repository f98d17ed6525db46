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

import tomllib
from dataclasses import dataclass, field
from typing import Final

from node.analytics.privacy import K_DEFAULT, K_MAX
from node.consensus.tendermint import ConsensusConfig
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey

CONFIG_FILE: Final = "config.toml"
GENESIS_FILE: Final = "genesis.toml"
NODE_KEY_FILE: Final = "node_key"
DATA_DIR: Final = "data"
SIGN_STATE_FILE: Final = "sign_state"
LOCKED_BLOCK_FILE: Final = "locked_block"
LOG_FORMATS: Final = ("text", "json")  # [log] format: lines for people, JSON lines (node.run.logs)


class ConfigError(ValueError):
    """The node configuration is not valid; the message says where."""


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


def parse(text: str) -> NodeConfig:
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, huge integers, deep arrays
        raise ConfigError(f"not TOML: {exc}") from None
    p2p = _table(doc, "p2p")
    api = _table(doc, "api")
    timeouts = doc.get("timeouts", {})
    if not isinstance(timeouts, dict):
        raise ConfigError("timeouts must be a table")
    return NodeConfig(
        moniker=_str(doc, "moniker"),
        validator=_bool(doc, "validator"),
        p2p_host=_str(p2p, "host", "p2p"),
        p2p_port=_port(p2p, "port", "p2p"),
        api_host=_str(api, "host", "api"),
        api_port=_port(api, "port", "api"),
        peers=tuple(_peer(p, n) for n, p in enumerate(_list(p2p, "peers"))),
        accept_from=tuple(
            _hex_key(k, f"p2p.accept_from[{n}]") for n, k in enumerate(_list(p2p, "accept_from"))
        ),
        timeouts=_timeouts(timeouts),
        analytics=_analytics(doc.get("analytics", {})),
        log_format=_log_format(doc.get("log", {})),
        api_tls=_api_tls(api),
        api_trust_forwarded_for=_optional_bool(api, "trust_forwarded_for", "api"),
    )


def parse_peers(text: str) -> tuple[PeerAddress, ...]:
    """A peers file: ``peers = [{ public_key = "hex", host = "...", port = 26600 }, ...]``."""
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError, huge integers, deep arrays
        raise ConfigError(f"not TOML: {exc}") from None
    if set(doc) - {"peers"}:
        raise ConfigError("a peers file holds only peers = [...]")
    return tuple(_peer(p, n) for n, p in enumerate(_list(doc, "peers")))


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


def _analytics(value: object) -> AnalyticsConfig:
    if not isinstance(value, dict):
        raise ConfigError("analytics must be a table")
    if set(value) - {"k_default", "k_by_issuer"}:
        raise ConfigError("analytics has only k_default and k_by_issuer")
    by_issuer = value.get("k_by_issuer", {})
    if not isinstance(by_issuer, dict):
        raise ConfigError("analytics.k_by_issuer must be a table of issuer key = k")
    k_default = _k(value.get("k_default", K_DEFAULT), "analytics.k_default")
    pairs = []
    for text, k in by_issuer.items():
        where = f"analytics.k_by_issuer.{text}"
        pairs.append((_hex_key(text.lower(), where), _k(k, where)))
    if len({key for key, _ in pairs}) != len(pairs):
        raise ConfigError("analytics.k_by_issuer names an issuer twice")
    return AnalyticsConfig(k_default, tuple(pairs))


API_KEYS: Final = frozenset({"host", "port", "tls_cert", "tls_key", "trust_forwarded_for"})


def _api_tls(api: dict[str, object]) -> ApiTlsFiles | None:
    if set(api) - API_KEYS:
        raise ConfigError(f"[api] has only {', '.join(sorted(API_KEYS))}")
    if "tls_cert" not in api and "tls_key" not in api:
        return None
    if "tls_cert" not in api or "tls_key" not in api:
        raise ConfigError("api.tls_cert and api.tls_key go together")
    return ApiTlsFiles(_str(api, "tls_cert", "api"), _str(api, "tls_key", "api"))


def _optional_bool(t: dict[str, object], name: str, where: str) -> bool:
    value = t.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{name} must be true or false")
    return value


def _log_format(value: object) -> str:
    if not isinstance(value, dict):
        raise ConfigError("log must be a table")
    if set(value) - {"format"}:
        raise ConfigError("log has only format")
    chosen = value.get("format", LOG_FORMATS[0])
    if not isinstance(chosen, str) or chosen not in LOG_FORMATS:
        raise ConfigError(f"log.format must be one of {', '.join(map(repr, LOG_FORMATS))}")
    return chosen


def _k(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not K_MIN <= value <= K_MAX:
        raise ConfigError(f"{where} must be a whole number of holders from {K_MIN} to {K_MAX}")
    return value


def _peer(value: object, n: int) -> PeerAddress:
    if not isinstance(value, dict):
        raise ConfigError(f"p2p.peers[{n}] must be a table")
    where = f"p2p.peers[{n}]"
    key = _hex_key(value.get("public_key"), f"{where}.public_key")
    return PeerAddress(key, _str(value, "host", where), _port(value, "port", where))


def _hex_key(text: object, where: str) -> PublicKey:
    if not isinstance(text, str):
        raise ConfigError(f"{where} must be a hex string")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{where} is not hex") from None
    if len(key) != PUBLIC_KEY_BYTES:
        raise ConfigError(f"{where} must be 32 bytes of hex")
    return PublicKey(key)


def _table(doc: dict[str, object], name: str) -> dict[str, object]:
    value = doc.get(name)
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] is missing")
    return value


def _list(doc: dict[str, object], name: str) -> list[object]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be a list")
    return value


def _str(t: dict[str, object], name: str, where: str = "") -> str:
    value = t.get(name)
    if not isinstance(value, str) or not value or len(value) > 255:
        raise ConfigError(f"{where + '.' if where else ''}{name} must be a non-empty string")
    return value


def _bool(t: dict[str, object], name: str) -> bool:
    value = t.get(name)
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false")
    return value


def _port(t: dict[str, object], name: str, where: str) -> int:
    value = t.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(f"{where}.{name} must be a port number")
    return value


def _timeouts(table: dict[str, object]) -> Timeouts:
    defaults = Timeouts()
    chosen = {
        name: _int(table, name, getattr(defaults, name)) for name in Timeouts.__dataclass_fields__
    }
    try:
        return Timeouts(**chosen)
    except ValueError as exc:
        raise ConfigError(f"timeouts: {exc}") from None


def _int(t: dict[str, object], name: str, default: int) -> int:
    value = t.get(name, default)
    top = limits.TIMEOUT_MS_MAX
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise ConfigError(f"timeouts.{name} must be milliseconds from 0 to {top}")
    return value
