"""The genesis document: the one file every participant and auditor holds.

It fixes the chain id, the validators (with the role of their operator), the
bank, the issuers with their territories and zone codes, the auditors and
the protocol limits. It is TOML for people; its canonical msgpack encoding
is hashed into ``genesis_hash`` so that nodes and auditors can tell at once
whether they hold the same one.

Pure: parses and renders text, reads no file. Imports only the pure leaves.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from node.protocol import codec, limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, Digest, PublicKey, digest
from node.text.names import name_problem

VERSION: Final = 1
VALIDATOR_ROLES: Final = ("bank", "commune", "region")
# A chain id: voucher QR codes carry it in capitals, headers and signatures hold it.
CHAIN_ID_PATTERN: Final = re.compile(rf"[A-Za-z0-9.-]{{1,{limits.CHAIN_ID_CHARS_MAX}}}")
# A validator's addresses: a host name or address ([v6] in brackets), its API a plain http(s)
# URL (no user part, query, spaces or quotes), so that both are shown and linked as they are.
HOST_PATTERN: Final = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")
API_URL_PATTERN: Final = re.compile(
    rf"https?://(?:{HOST_PATTERN.pattern})(?::\d{{1,5}})?(?:/[A-Za-z0-9._~/-]*)?"
)


class GenesisError(ValueError):
    """The genesis document is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class ProtocolLimits:
    amount_max_cents: int = limits.AMOUNT_MAX_CENTS
    tx_bytes_max: int = limits.TX_BYTES_MAX
    block_txs_max: int = limits.BLOCK_TXS_MAX
    block_bytes_max: int = limits.BLOCK_BYTES_MAX

    def block_excess(self, txs: Sequence[bytes]) -> str | None:
        """Why a block of ``txs`` breaks these limits, or None when it keeps them."""
        if len(txs) > self.block_txs_max:
            return f"{len(txs)} transactions, more than {self.block_txs_max}"
        size = sum(len(tx) for tx in txs)
        if size > self.block_bytes_max:
            return f"{size} bytes of transactions, more than {self.block_bytes_max}"
        for index, tx in enumerate(txs):
            if len(tx) > self.tx_bytes_max:
                return f"transaction {index} is {len(tx)} bytes, more than {self.tx_bytes_max}"
        return None


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    name: str
    role: str
    public_key: PublicKey
    power: int
    # Where the operator said its node is reached (its signed membership file): other
    # nodes dial ``p2p`` (HOST:PORT); ``api`` is its public HTTP API. Empty: not given.
    p2p: str = ""
    api: str = ""

    def entry(self) -> list[codec.Value]:
        """Its canonical form; the addresses only when given (older documents hash as before)."""
        fields: list[codec.Value] = [self.name, self.role, self.public_key, self.power]
        return [*fields, self.p2p, self.api] if self.p2p or self.api else fields


@dataclass(frozen=True, slots=True)
class GenesisIssuer:
    name: str
    territory: str
    public_key: PublicKey
    zones: tuple[str, ...]

    def __post_init__(self) -> None:
        # One order for zones, so that equal documents hash equally.
        object.__setattr__(self, "zones", tuple(sorted(self.zones)))


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    name: str
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    limits: ProtocolLimits
    bank: GenesisAccount
    validators: tuple[GenesisValidator, ...]
    issuers: tuple[GenesisIssuer, ...]
    auditors: tuple[GenesisAccount, ...]

    def encode(self) -> bytes:
        lim = self.limits
        return codec.encode(
            [
                VERSION,
                self.chain_id,
                self.genesis_time_ms,
                [
                    lim.amount_max_cents,
                    lim.tx_bytes_max,
                    lim.block_txs_max,
                    lim.block_bytes_max,
                ],
                [self.bank.name, self.bank.public_key],
                [v.entry() for v in self.validators],
                [[i.name, i.territory, i.public_key, list(i.zones)] for i in self.issuers],
                [[a.name, a.public_key] for a in self.auditors],
            ]
        )

    @property
    def genesis_hash(self) -> Digest:
        return digest(self.encode())


@dataclass(frozen=True, slots=True)
class Draft:
    """A genesis being gathered (``relance-node genesis``): the bank and the validators
    may still be missing. ``complete()`` is the genesis once they are in."""

    chain_id: str
    genesis_time_ms: int
    limits: ProtocolLimits
    bank: GenesisAccount | None
    validators: tuple[GenesisValidator, ...]
    issuers: tuple[GenesisIssuer, ...]
    auditors: tuple[GenesisAccount, ...]

    def complete(self) -> Genesis:
        if self.bank is None:
            raise GenesisError("bank is missing: no member with the role bank was added")
        if not self.validators:
            raise GenesisError("at least one validator is needed")
        return Genesis(
            self.chain_id,
            self.genesis_time_ms,
            self.limits,
            self.bank,
            self.validators,
            self.issuers,
            self.auditors,
        )


# --- parsing ----------------------------------------------------------------------


def parse(text: str) -> Genesis:
    """Parse and validate a genesis TOML document."""
    return parse_draft(text).complete()


def parse_draft(text: str) -> Draft:
    """Parse and validate a genesis document that may still lack its bank and validators."""
    try:
        doc = tomllib.loads(text)
    except (ValueError, RecursionError) as exc:  # TOMLDecodeError; a 5,000-digit integer;
        raise GenesisError(f"not TOML: {exc}") from None  # arrays nested thousands deep
    draft = Draft(
        chain_id=_chain_id(doc),
        genesis_time_ms=_int(doc, "genesis_time_ms", 0, 2**63 - 1),
        limits=_limits(doc.get("limits", {})),
        bank=_account(_table(doc, "bank"), "bank") if "bank" in doc else None,
        validators=tuple(
            _validator(v, f"validators[{n}]") for n, v in enumerate(_list(doc, "validators"))
        ),
        issuers=tuple(_issuer(i, f"issuers[{n}]") for n, i in enumerate(_list(doc, "issuers"))),
        auditors=tuple(_account(a, f"auditors[{n}]") for n, a in enumerate(_list(doc, "auditors"))),
    )
    _check_whole(draft)
    return draft


def _check_whole(genesis: Draft) -> None:
    if len(genesis.validators) > limits.VALIDATORS_MAX:
        raise GenesisError(f"at most {limits.VALIDATORS_MAX} validators")
    if len(genesis.auditors) > limits.AUDITORS_MAX:
        raise GenesisError(f"at most {limits.AUDITORS_MAX} auditors")
    accounts = [genesis.bank.public_key] if genesis.bank is not None else []
    accounts += [i.public_key for i in genesis.issuers]
    accounts += [a.public_key for a in genesis.auditors]
    if len(set(accounts)) != len(accounts):
        raise GenesisError("bank, issuers and auditors need distinct keys")
    node_keys = [v.public_key for v in genesis.validators]
    if len(set(node_keys)) != len(node_keys):
        raise GenesisError("validators need distinct keys")
    zones = [z for i in genesis.issuers for z in i.zones]
    if len(set(zones)) != len(zones):
        raise GenesisError("a zone code belongs to one issuer only")


def _limits(table: object) -> ProtocolLimits:
    if not isinstance(table, dict):
        raise GenesisError("limits must be a table")
    if "state_tree_levels" in table:
        # Protocol 3: the state tree is a sparse Merkle tree with no levels to choose.
        raise GenesisError(
            "limits.state_tree_levels is gone since protocol 3 (the state tree has no levels "
            "to choose): remove the line, and make a new chain with this genesis"
        )
    default = ProtocolLimits()
    return ProtocolLimits(
        amount_max_cents=_int(table, "amount_max_cents", 1, 10**12, default.amount_max_cents),
        # A genesis may lower the node's caps on transactions and blocks, never raise them.
        tx_bytes_max=_int(table, "tx_bytes_max", 1024, limits.TX_BYTES_MAX, default.tx_bytes_max),
        block_txs_max=_int(table, "block_txs_max", 1, limits.BLOCK_TXS_MAX, default.block_txs_max),
        block_bytes_max=_int(
            table, "block_bytes_max", 4096, limits.BLOCK_BYTES_MAX, default.block_bytes_max
        ),
    )


def _validator(table: object, where: str) -> GenesisValidator:
    t = _as_table(table, where)
    role = _str(t, "role", 16, where)
    if role not in VALIDATOR_ROLES:
        raise GenesisError(f"{where}.role must be one of {', '.join(VALIDATOR_ROLES)}")
    return GenesisValidator(
        name=_name(t, "name", where),
        role=role,
        public_key=_key(t, where),
        power=_int(t, "power", 1, 1_000_000, 1, where),
        p2p=_p2p_address(t, where),
        api=_api_url(t, where),
    )


def split_host_port(text: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port, or None."""
    host, colon, port = text.rpartition(":")
    if not colon or not HOST_PATTERN.fullmatch(host):
        return None
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        return None
    return host.removeprefix("[").removesuffix("]"), int(port)


def _p2p_address(t: dict[str, object], where: str) -> str:
    if "p2p" not in t:
        return ""
    text = _str(t, "p2p", limits.ADDRESS_CHARS_MAX, where)
    if split_host_port(text) is None:
        raise GenesisError(f"{where}.p2p must be HOST:PORT, such as 192.0.2.7:26600")
    return text


def _api_url(t: dict[str, object], where: str) -> str:
    if "api" not in t:
        return ""
    text = _str(t, "api", limits.ADDRESS_CHARS_MAX, where)
    if not API_URL_PATTERN.fullmatch(text):
        raise GenesisError(f"{where}.api must be an http:// or https:// address")
    return text


def _issuer(table: object, where: str) -> GenesisIssuer:
    t = _as_table(table, where)
    zones = t.get("zones")
    if not isinstance(zones, list) or not zones or len(zones) > limits.ZONES_PER_ISSUER_MAX:
        raise GenesisError(f"{where}.zones must be a non-empty list of zone codes")
    if not all(isinstance(z, str) and 0 < len(z) <= limits.CODE_CHARS_MAX for z in zones):
        raise GenesisError(f"{where}.zones holds an invalid zone code")
    return GenesisIssuer(
        name=_name(t, "name", where),
        territory=_name(t, "territory", where),
        public_key=_key(t, where),
        zones=tuple(sorted(zones)),
    )


def _account(table: object, where: str) -> GenesisAccount:
    t = _as_table(table, where)
    return GenesisAccount(_name(t, "name", where), _key(t, where))


def _key(t: dict[str, object], where: str) -> PublicKey:
    text = _str(t, "public_key", 2 * PUBLIC_KEY_BYTES, where)
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise GenesisError(f"{where}.public_key is not hex") from None
    if len(raw) != PUBLIC_KEY_BYTES:
        raise GenesisError(f"{where}.public_key must be 32 bytes of hex")
    return PublicKey(raw)


def _as_table(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise GenesisError(f"{where} must be a table")
    return value


def _table(doc: dict[str, object], name: str) -> dict[str, object]:
    return _as_table(doc.get(name), name)


def _list(doc: dict[str, object], name: str) -> list[object]:
    value = doc.get(name, [])
    if not isinstance(value, list):
        raise GenesisError(f"{name} must be an array of tables")
    return value


def _chain_id(doc: dict[str, object]) -> str:
    value = _str(doc, "chain_id", limits.CHAIN_ID_CHARS_MAX)
    if not CHAIN_ID_PATTERN.fullmatch(value):
        raise GenesisError("chain_id may hold only letters A-Z and a-z, digits, '.' and '-'")
    return value


def _str(t: dict[str, object], name: str, max_chars: int, where: str = "") -> str:
    value = t.get(name)
    label = f"{where}.{name}" if where else name
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise GenesisError(f"{label} must be a string of 1 to {max_chars} characters")
    return value


def _name(t: dict[str, object], name: str, where: str) -> str:
    """A name as the ledger accepts it (``node.text.names``)."""
    value = _str(t, name, limits.NAME_CHARS_MAX, where)
    problem = name_problem(value)
    if problem is not None:
        raise GenesisError(f"{where}.{name}: {problem}")
    return value


def _int(
    t: dict[str, object],
    name: str,
    low: int,
    high: int,
    default: int | None = None,
    where: str = "",
) -> int:
    value = t.get(name, default)
    label = f"{where}.{name}" if where else name
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise GenesisError(f"{label} must be an integer from {low} to {high}")
    return value


# --- rendering ------------------------------------------------------------------------


def render(genesis: Genesis | Draft) -> str:
    """The TOML text of ``genesis``; ``parse(render(g)) == g`` (``parse_draft`` for a draft)."""
    lim = genesis.limits
    lines = [
        "# Relance genesis document. Every node and auditor must hold the same one.",
        f"chain_id = {_q(genesis.chain_id)}",
        f"genesis_time_ms = {genesis.genesis_time_ms}",
        "",
        "[limits]",
        f"amount_max_cents = {lim.amount_max_cents}",
        f"tx_bytes_max = {lim.tx_bytes_max}",
        f"block_txs_max = {lim.block_txs_max}",
        f"block_bytes_max = {lim.block_bytes_max}",
    ]
    if genesis.bank is not None:
        lines += ["", "[bank]", f"name = {_q(genesis.bank.name)}"]
        lines += [f"public_key = {_q(genesis.bank.public_key.hex())}"]
    for v in genesis.validators:
        lines += ["", "[[validators]]", f"name = {_q(v.name)}", f"role = {_q(v.role)}"]
        lines += [f"public_key = {_q(v.public_key.hex())}", f"power = {v.power}"]
        lines += [f"p2p = {_q(v.p2p)}"] if v.p2p else []
        lines += [f"api = {_q(v.api)}"] if v.api else []
    for i in genesis.issuers:
        lines += ["", "[[issuers]]", f"name = {_q(i.name)}", f"territory = {_q(i.territory)}"]
        lines += [f"public_key = {_q(i.public_key.hex())}"]
        lines += [f"zones = [{', '.join(_q(z) for z in i.zones)}]"]
    for a in genesis.auditors:
        lines += ["", "[[auditors]]", f"name = {_q(a.name)}"]
        lines += [f"public_key = {_q(a.public_key.hex())}"]
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    if any(ord(c) < 0x20 for c in escaped):
        raise GenesisError("control characters are not allowed in genesis strings")
    return f'"{escaped}"'
