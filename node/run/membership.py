"""An organisation's genesis membership file, and what a node checks against it at start.

Before a network starts, each organisation makes its node home on its own host and
exports a membership file (``relance-node genesis member``): its name, role, node
public key, the account key it holds in the genesis (the bank's account, or the
commune's issuer key with its territory and zones), and the addresses other nodes
and clients reach it at. The node key signs it; the account key signs it too in
the wallet (``relance-wallet key sign-member``: the account's secret never leaves
the wallet), which proves the organisation holds that key. A coordinator adds the
files to a genesis (``relance-node genesis add``), which checks both signatures.

The document (``relance-member`` version 1)::

    {"format": "relance-member", "version": 1, "chain_id": "relance-wallonie",
     "name": "Ville de Namur", "role": "commune", "node_key": hex,
     "p2p": "192.0.2.7:26600", "api": "https://relance.namur.be",
     "account": {"public_key": hex, "territory": "Namur", "zones": ["NAM-1"]},
     "signatures": {"node": hex, "account": hex}}

Both keys sign the same statement, ``Domain.MEMBERSHIP`` on the chain id, over
the canonical encoding ``[1, name, role, node_key, p2p, api, account]`` with
``account`` = ``[public_key, territory, sorted zones]`` (the bank's has an empty
territory and no zones) or nil.

The home keeps its own copy (``member.json``): a node refuses to start with a
genesis that does not hold it exactly as signed, naming what differs. Its peers
come from the genesis (the other validators' ``p2p``), or from ``peers.toml`` in
the home; peers written in ``config.toml`` override both.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from node.protocol import codec, limits
from node.protocol.crypto import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Domain,
    PublicKey,
    Signer,
    verify,
)
from node.protocol.genesis import (
    API_URL_PATTERN,
    CHAIN_ID_PATTERN,
    VALIDATOR_ROLES,
    Draft,
    Genesis,
    GenesisAccount,
    GenesisError,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
    parse_draft,
    render,
    split_host_port,
)
from node.run import config

FORMAT: Final = "relance-member"
VERSION: Final = 1
MEMBER_FILE: Final = "member.json"  # in a node home: the membership this node signed
PEERS_FILE: Final = "peers.toml"  # in a node home: peers = [{public_key, host, port}, ...]
ZONE_PATTERN: Final = re.compile(rf"[A-Za-z0-9._-]{{1,{limits.CODE_CHARS_MAX}}}")


class MemberError(ValueError):
    """A membership file is invalid, or does not match a genesis; the message says how."""


@dataclass(frozen=True, slots=True)
class Account:
    """The account key a member holds in the genesis: the bank's, or an issuer's."""

    public_key: PublicKey
    territory: str = ""  # issuers only
    zones: tuple[str, ...] = ()  # issuers only, sorted

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", tuple(sorted(self.zones)))


@dataclass(frozen=True, slots=True)
class Member:
    chain_id: str
    name: str
    role: str
    node_key: PublicKey
    p2p: str
    api: str
    account: Account | None

    def statement(self) -> bytes:
        """What the node key and the account key sign."""
        a = self.account
        account: codec.Value = None if a is None else [a.public_key, a.territory, list(a.zones)]
        return codec.encode(
            [VERSION, self.name, self.role, self.node_key, self.p2p, self.api, account]
        )

    def validator(self) -> GenesisValidator:
        return GenesisValidator(self.name, self.role, self.node_key, 1, self.p2p, self.api)

    def describe(self) -> list[str]:
        lines = [
            f"member {self.name!r} ({self.role}) on chain {self.chain_id}",
            f"  node key   {self.node_key.hex()}",
            f"  p2p        {self.p2p}",
            f"  api        {self.api}",
        ]
        if self.account is not None:
            a = self.account
            what = "bank account" if self.role == "bank" else "issuer key"
            lines.append(f"  {what:<10} {a.public_key.hex()}")
            if a.zones:
                lines.append(f"  territory  {a.territory}, zones {', '.join(a.zones)}")
        return lines


@dataclass(frozen=True, slots=True)
class SignedMember:
    member: Member
    node_signature: bytes
    account_signature: bytes | None = None

    def signed_by_account(self, signer: Signer) -> SignedMember:
        """This file with the account key's signature (the wallet's key ``signer``)."""
        account = self.member.account
        if account is None:
            raise MemberError("this membership names no account key to sign with")
        if signer.public_key != account.public_key:
            raise MemberError(
                f"the membership's account key is {account.public_key.hex()}, "
                f"not this key's {signer.public_key.hex()}"
            )
        m = self.member
        return replace(
            self, account_signature=signer.sign(Domain.MEMBERSHIP, m.chain_id, m.statement())
        )

    def require_complete(self) -> None:
        """Refuse a file whose account key has not signed it yet."""
        if self.member.account is not None and self.account_signature is None:
            raise MemberError(
                f"{self.member.name!r}: the account key {self.member.account.public_key.hex()} "
                "has not signed it: run 'relance-wallet key sign-member KEY FILE'"
            )


def make(member: Member, node_key: Signer) -> SignedMember:
    """A new membership file signed by the node key (checked like a read one)."""
    if node_key.public_key != member.node_key:
        raise MemberError("the node key that signs must be the member's node key")
    _check_fields(member)
    signature = node_key.sign(Domain.MEMBERSHIP, member.chain_id, member.statement())
    return SignedMember(member, signature)


# --- JSON ---------------------------------------------------------------------------


def to_json(signed: SignedMember) -> dict[str, object]:
    m = signed.member
    account = (
        None
        if m.account is None
        else {
            "public_key": m.account.public_key.hex(),
            "territory": m.account.territory,
            "zones": list(m.account.zones),
        }
    )
    signature = signed.account_signature
    return {
        "format": FORMAT,
        "version": VERSION,
        "chain_id": m.chain_id,
        "name": m.name,
        "role": m.role,
        "node_key": m.node_key.hex(),
        "p2p": m.p2p,
        "api": m.api,
        "account": account,
        "signatures": {
            "node": signed.node_signature.hex(),
            "account": None if signature is None else signature.hex(),
        },
    }


def from_json(doc: object) -> SignedMember:
    """Read a membership document: its shape, its fields and every signature it carries."""
    d = _dict(doc, "the document")
    if d.get("format") != FORMAT or d.get("version") != VERSION:
        raise MemberError(f"not a {FORMAT} version {VERSION} document")
    account_doc = d.get("account")
    account = None
    if account_doc is not None:
        a = _dict(account_doc, "account")
        zones = a.get("zones", [])
        if not isinstance(zones, list) or len(zones) > limits.ZONES_PER_ISSUER_MAX:
            raise MemberError(
                f"account.zones must be a list of at most {limits.ZONES_PER_ISSUER_MAX}"
            )
        account = Account(
            _key(a.get("public_key"), "account.public_key"),
            _text(a, "territory", limits.NAME_CHARS_MAX, empty=True),
            tuple(_zone(z) for z in zones),
        )
    member = Member(
        chain_id=_text(d, "chain_id", limits.CHAIN_ID_CHARS_MAX),
        name=_text(d, "name", limits.NAME_CHARS_MAX),
        role=_text(d, "role", 16),
        node_key=_key(d.get("node_key"), "node_key"),
        p2p=_text(d, "p2p", limits.ADDRESS_CHARS_MAX),
        api=_text(d, "api", limits.ADDRESS_CHARS_MAX),
        account=account,
    )
    _check_fields(member)
    signatures = _dict(d.get("signatures"), "signatures")
    statement = member.statement()
    node_signature = _signature(signatures.get("node"), "signatures.node")
    if not verify(Domain.MEMBERSHIP, member.chain_id, statement, member.node_key, node_signature):
        raise MemberError(
            f"the node key's signature does not match the file (changed since "
            f"{member.node_key.hex()[:16]}… signed it?)"
        )
    account_signature = None
    if signatures.get("account") is not None:
        if account is None:
            raise MemberError("signatures.account without an account")
        account_signature = _signature(signatures.get("account"), "signatures.account")
        if not verify(
            Domain.MEMBERSHIP, member.chain_id, statement, account.public_key, account_signature
        ):
            raise MemberError(
                f"the account key's signature does not match the file (changed since "
                f"{account.public_key.hex()[:16]}… signed it?)"
            )
    return SignedMember(member, node_signature, account_signature)


def read(path: Path) -> SignedMember:
    try:
        doc = json.loads(read_text_capped(path, limits.MEMBER_FILE_BYTES_MAX))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, huge integers, deep nesting
        raise MemberError(f"{path}: not JSON: {exc}") from None
    try:
        return from_json(doc)
    except MemberError as exc:
        raise MemberError(f"{path}: {exc}") from None


def dumps(signed: SignedMember) -> str:
    return json.dumps(to_json(signed), indent=2, ensure_ascii=False) + "\n"


def _check_fields(m: Member) -> None:
    if not CHAIN_ID_PATTERN.fullmatch(m.chain_id):
        raise MemberError("chain_id may hold only letters A-Z and a-z, digits, '.' and '-'")
    if not 0 < len(m.name) <= limits.NAME_CHARS_MAX or _control(m.name):
        raise MemberError(f"name must be 1 to {limits.NAME_CHARS_MAX} printable characters")
    if m.role not in VALIDATOR_ROLES:
        raise MemberError(f"role must be one of {', '.join(VALIDATOR_ROLES)}")
    if len(m.p2p) > limits.ADDRESS_CHARS_MAX or split_host_port(m.p2p) is None:
        raise MemberError(f"p2p must be HOST:PORT, such as 192.0.2.7:26600, not {m.p2p!r}")
    if len(m.api) > limits.ADDRESS_CHARS_MAX or not API_URL_PATTERN.fullmatch(m.api):
        raise MemberError(f"api must be an http:// or https:// address, not {m.api!r}")
    a = m.account
    if m.role == "bank":
        if a is None:
            raise MemberError("the bank's membership names its account key")
        if a.territory or a.zones:
            raise MemberError("the bank's account has no territory or zones")
    elif a is not None:
        if not 0 < len(a.territory) <= limits.NAME_CHARS_MAX or _control(a.territory):
            raise MemberError(f"an issuer's territory is 1 to {limits.NAME_CHARS_MAX} characters")
        if not a.zones or len(set(a.zones)) != len(a.zones):
            raise MemberError("an issuer has one or more distinct zone codes")
        for zone in a.zones:
            _zone(zone)
    _with(Draft(m.chain_id, 0, ProtocolLimits(), None, (), (), ()), m)


# --- the genesis ----------------------------------------------------------------------


def add(draft: Draft, signed: SignedMember) -> Draft:
    """``draft`` with ``signed``'s validator and account; refuses duplicates and
    files whose account key has not signed."""
    signed.require_complete()
    m = signed.member
    if m.chain_id != draft.chain_id:
        raise MemberError(f"{m.name!r} signed for chain {m.chain_id!r}, not {draft.chain_id!r}")
    for v in draft.validators:
        for what, mine, theirs in (
            ("node key", m.node_key, v.public_key),
            ("name", m.name, v.name),
            ("p2p address", m.p2p, v.p2p),
            ("API address", m.api, v.api),
        ):
            if mine == theirs:
                raise MemberError(
                    f"the genesis already holds a validator with this {what}: {v.name!r}"
                )
    bank, issuers = draft.bank, draft.issuers
    if m.account is not None:
        taken = [a.public_key for a in (*((bank,) if bank else ()), *draft.auditors)]
        taken += [i.public_key for i in issuers]
        if m.account.public_key in taken:
            raise MemberError(f"the genesis already holds the account key of {m.name!r}")
        if m.role == "bank" and bank is not None:
            raise MemberError(f"the genesis already has a bank: {bank.name!r}")
        owned = {z: i.name for i in issuers for z in i.zones}
        for zone in m.account.zones:
            if zone in owned:
                raise MemberError(f"zone {zone} already belongs to {owned[zone]!r}")
    if len(draft.validators) >= limits.VALIDATORS_MAX:
        raise MemberError(f"a genesis holds at most {limits.VALIDATORS_MAX} validators")
    return _with(draft, m)


def _with(draft: Draft, m: Member) -> Draft:
    """``draft`` with ``m``'s validator and account, checked by the genesis parser (every
    rule of a genesis document: names, zone codes, distinct keys)."""
    bank, issuers = draft.bank, draft.issuers
    if m.account is not None and m.role == "bank":
        bank = GenesisAccount(m.name, m.account.public_key)
    elif m.account is not None:
        a = m.account
        issuers = (*issuers, GenesisIssuer(m.name, a.territory, a.public_key, a.zones))
    added = replace(
        draft, bank=bank, validators=(*draft.validators, m.validator()), issuers=issuers
    )
    try:
        return parse_draft(render(added))
    except GenesisError as exc:
        raise MemberError(f"{m.name!r} cannot be in a genesis: {exc}") from None


def add_auditor(draft: Draft, name: str, key: PublicKey) -> Draft:
    """``draft`` with one more auditor; refuses a name or key the genesis already holds."""
    if any(a.name == name for a in draft.auditors):
        raise MemberError(f"the genesis already holds an auditor named {name!r}")
    if len(draft.auditors) >= limits.AUDITORS_MAX:
        raise MemberError(f"a genesis holds at most {limits.AUDITORS_MAX} auditors")
    added = replace(draft, auditors=(*draft.auditors, GenesisAccount(name, key)))
    try:
        return parse_draft(render(added))
    except GenesisError as exc:
        raise MemberError(f"the auditor {name!r} cannot be added: {exc}") from None


def summary(genesis: Genesis) -> list[str]:
    """Everything a genesis grants, one line each, for people to review."""
    lim = genesis.limits
    lines = [
        f"chain {genesis.chain_id}, starting {_utc(genesis.genesis_time_ms)}",
        f"limits: {lim.amount_max_cents} cents per transaction, {lim.tx_bytes_max} bytes per "
        f"transaction, {lim.block_txs_max} transactions and {lim.block_bytes_max} bytes "
        "per block",
        f"bank {genesis.bank.name!r} {genesis.bank.public_key.hex()}",
    ]
    for v in genesis.validators:
        lines.append(
            f"validator {v.name!r} ({v.role}, power {v.power}) {v.public_key.hex()} "
            f"p2p {v.p2p or '-'} api {v.api or '-'}"
        )
    for i in genesis.issuers:
        lines.append(
            f"issuer {i.name!r} ({i.territory}) {i.public_key.hex()} zones {', '.join(i.zones)}"
        )
    lines += [f"auditor {a.name!r} {a.public_key.hex()}" for a in genesis.auditors]
    return lines


def differences(genesis: Genesis | Draft, member: Member) -> list[str]:
    """How ``genesis`` differs from ``member`` as it signed (empty: it holds it exactly)."""
    if genesis.chain_id != member.chain_id:
        chains = f"{genesis.chain_id!r}, the member signed for {member.chain_id!r}"
        return [f"the genesis is for chain {chains}"]
    found = [v for v in genesis.validators if v.public_key == member.node_key]
    if not found:
        return [f"no validator has the node key {member.node_key.hex()} of {member.name!r}"]
    out = []
    v = found[0]
    for what, signed, held in (
        ("name", member.name, v.name),
        ("role", member.role, v.role),
        ("p2p", member.p2p, v.p2p),
        ("api", member.api, v.api),
    ):
        if signed != held:
            out.append(f"validator {what}: {held!r} in the genesis, {signed!r} signed")
    a = member.account
    if a is None:
        return out
    if member.role == "bank":
        bank = genesis.bank
        if bank is None or bank.public_key != a.public_key:
            held_key = "none" if bank is None else bank.public_key.hex()
            out.append(f"bank key: {held_key} in the genesis, {a.public_key.hex()} signed")
        elif bank.name != member.name:
            out.append(f"bank name: {bank.name!r} in the genesis, {member.name!r} signed")
        return out
    issuers = [i for i in genesis.issuers if i.public_key == a.public_key]
    if not issuers:
        out.append(f"no issuer has the account key {a.public_key.hex()}")
        return out
    i = issuers[0]
    for what, signed_value, held_value in (
        ("issuer name", member.name, i.name),
        ("issuer territory", a.territory, i.territory),
        ("issuer zones", ", ".join(a.zones), ", ".join(i.zones)),
    ):
        if signed_value != held_value:
            out.append(f"{what}: {held_value!r} in the genesis, {signed_value!r} signed")
    return out


def peers_from_genesis(genesis: Genesis, own_key: PublicKey) -> tuple[config.PeerAddress, ...]:
    """The other validators of the genesis that recorded a p2p address."""
    out = []
    for v in genesis.validators:
        address = split_host_port(v.p2p) if v.p2p else None
        if v.public_key != own_key and address is not None:
            out.append(config.PeerAddress(v.public_key, *address))
    return tuple(out)


# --- the node home ----------------------------------------------------------------------


def start_settings(
    home: Path, settings: config.NodeConfig, genesis: Genesis, node_key: PublicKey
) -> config.NodeConfig:
    """The settings a node starts with, after checking the home's membership file.

    With ``member.json`` in the home, the genesis must hold this node as it signed
    (else :class:`MemberError` naming what differs). Peers: ``config.toml``'s if it
    lists any, else ``peers.toml``'s if the home has one, else the genesis's."""
    member_path = home / MEMBER_FILE
    if member_path.exists():
        member = read(member_path).member
        if member.node_key != node_key:
            raise MemberError(
                f"{member_path} is signed for node key {member.node_key.hex()}, "
                f"this home's key is {node_key.hex()}"
            )
        if diffs := differences(genesis, member):
            raise MemberError(
                f"the genesis ({genesis.genesis_hash.hex()}) does not hold this node as it "
                f"signed ({member_path}): " + "; ".join(diffs) + " (install the agreed "
                "genesis with 'relance-node genesis install', or export a new membership)"
            )
    if settings.peers:
        return settings
    peers_path = home / PEERS_FILE
    if peers_path.exists():
        return replace(settings, peers=read_peers(peers_path))
    return replace(settings, peers=peers_from_genesis(genesis, node_key))


def read_peers(path: Path) -> tuple[config.PeerAddress, ...]:
    try:
        return config.parse_peers(read_text_capped(path, limits.PEERS_FILE_BYTES_MAX))
    except config.ConfigError as exc:
        raise MemberError(f"{path}: {exc}") from None


def read_text_capped(path: Path, bytes_max: int) -> str:
    """A small UTF-8 file, refused past ``bytes_max`` without reading further (MemberError)."""
    try:
        with path.open("rb") as file:
            data = file.read(bytes_max + 1)
    except OSError as exc:
        raise MemberError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > bytes_max:
        raise MemberError(f"{path}: larger than {bytes_max} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MemberError(f"{path}: not UTF-8: {exc}") from None


# --- plumbing ---------------------------------------------------------------------------


def _dict(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise MemberError(f"{where} must be an object")
    return value


def _text(d: dict[str, object], name: str, max_chars: int, empty: bool = False) -> str:
    value = d.get(name, "" if empty else None)
    if not isinstance(value, str) or len(value) > max_chars or (not value and not empty):
        raise MemberError(
            f"{name} must be a string of {0 if empty else 1} to {max_chars} characters"
        )
    return value


def _key(value: object, where: str) -> PublicKey:
    raw = _hex(value, where)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise MemberError(f"{where} must be a public key of 64 hex digits")
    return PublicKey(raw)


def _signature(value: object, where: str) -> bytes:
    raw = _hex(value, where)
    if len(raw) != SIGNATURE_BYTES:
        raise MemberError(f"{where} must be a signature of 128 hex digits")
    return raw


def _hex(value: object, where: str) -> bytes:
    if not isinstance(value, str) or len(value) > 2 * SIGNATURE_BYTES:
        raise MemberError(f"{where} must be hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise MemberError(f"{where} is not hex") from None


def _zone(value: object) -> str:
    if not isinstance(value, str) or not ZONE_PATTERN.fullmatch(value):
        raise MemberError(
            f"zone {value!r}: 1 to {limits.CODE_CHARS_MAX} letters, digits, '.', '_' or '-'"
        )
    return value


def _utc(ms: int) -> str:
    try:
        when = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    except (OverflowError, ValueError, OSError):
        return f"at {ms} ms of Unix time"
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def _control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
