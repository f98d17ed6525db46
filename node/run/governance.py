"""Governance proposals as a file the validators pass around: propose, approve, submit.

Admitting a commune or region (``admit_issuer``), changing the validator
set (``change_validators``) and scheduling a protocol upgrade
(``schedule_upgrade``) need the approvals of validators holding more
than 2/3 of the voting power, each signing the proposal with its node key
(``Domain.GOVERNANCE``). A proposal is a small JSON document: one validator
writes it, each approving validator adds its signature (``relance-node
governance approve``, on its own host: the node key never leaves it), and
any validator submits it as a transaction signed by its node key.

The document (``relance-governance`` version 1)::

    {"format": "relance-governance", "version": 1, "chain_id": "...",
     "kind": "change_validators",
     "validators": [{"public_key": hex, "power": 1, "name": "...", "role": "commune"}],
     "effective_height": 1200,
     "approvals": [{"validator": hex, "signature": hex}]}

    {"format": "relance-governance", "version": 1, "chain_id": "...",
     "kind": "admit_issuer", "issuer": hex, "name": "...", "territory": "...",
     "zones": ["..."], "approvals": [...]}

    {"format": "relance-governance", "version": 1, "chain_id": "...",
     "kind": "schedule_upgrade", "protocol": "tx2.block2", "software": "0.4.0",
     "height": 5000, "approvals": [...]}

An upgrade names the protocol in force from ``height`` on and the software
release that knows it: a node whose software does not know that protocol
stops after block ``height - 1`` and tells its operator to install it
(``node.app.upgrades``).

Reading a document checks its shape and every approval's signature, so a
broken one is named before anything is submitted. Whether the approvals
carry more than 2/3 of the power is the ledger's to decide at the height
the transaction lands. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from node.ledger import tx as t
from node.ledger.rules import is_code
from node.protocol import limits
from node.protocol.crypto import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Domain,
    PublicKey,
    Signer,
    verify,
)
from node.text.names import name_problem

FORMAT: Final = "relance-governance"
VERSION: Final = 1
KINDS: Final = ("change_validators", "admit_issuer", "schedule_upgrade")

GovernancePayload = t.GovernancePayload


class ProposalError(ValueError):
    """The document is not a valid proposal; the message says where."""


@dataclass(frozen=True, slots=True)
class Proposal:
    chain_id: str
    payload: GovernancePayload

    @property
    def approvers(self) -> tuple[bytes, ...]:
        return tuple(a.validator for a in self.payload.approvals)

    def approved_by(self, signer: Signer) -> Proposal:
        """This proposal with ``signer``'s approval (replacing an earlier one of it)."""
        approval = t.approve(self.payload, signer, self.chain_id)
        others = [a for a in self.payload.approvals if a.validator != signer.public_key]
        approvals = tuple(sorted([*others, approval], key=lambda a: a.validator))
        return replace(self, payload=replace(self.payload, approvals=approvals))

    def transaction(self, signer: Signer, sequence: int) -> t.SignedTx:
        """The transaction a validator submits, signed by its node key."""
        return t.Tx(self.chain_id, signer.public_key, sequence, self.payload).sign(signer)

    def describe(self) -> list[str]:
        p = self.payload
        if isinstance(p, t.ChangeValidators):
            lines = [f"change the validator set from height {p.effective_height} to:"]
            lines += [
                f"  {v.name} ({v.role}, power {v.power}) {v.public_key.hex()}" for v in p.validators
            ]
        elif isinstance(p, t.ScheduleUpgrade):
            lines = [
                f"upgrade to the protocol {p.protocol} from height {p.height}",
                f"  software that knows it: {p.software}",
            ]
        else:
            lines = [
                f"admit the issuer {p.name!r} ({p.territory}) {p.issuer.hex()}",
                f"  zones: {', '.join(p.zones)}",
            ]
        lines.append(f"approvals: {len(p.approvals)}")
        lines += [f"  {a.validator.hex()}" for a in p.approvals]
        return lines


def to_json(proposal: Proposal) -> dict[str, object]:
    p = proposal.payload
    doc: dict[str, object] = {"format": FORMAT, "version": VERSION, "chain_id": proposal.chain_id}
    if isinstance(p, t.ChangeValidators):
        doc["kind"] = "change_validators"
        doc["validators"] = [
            {"public_key": v.public_key.hex(), "power": v.power, "name": v.name, "role": v.role}
            for v in p.validators
        ]
        doc["effective_height"] = p.effective_height
    elif isinstance(p, t.ScheduleUpgrade):
        doc["kind"] = "schedule_upgrade"
        doc["protocol"] = p.protocol
        doc["software"] = p.software
        doc["height"] = p.height
    else:
        doc["kind"] = "admit_issuer"
        doc["issuer"] = p.issuer.hex()
        doc["name"] = p.name
        doc["territory"] = p.territory
        doc["zones"] = list(p.zones)
    doc["approvals"] = [
        {"validator": a.validator.hex(), "signature": a.signature.hex()} for a in p.approvals
    ]
    return doc


def from_json(doc: object) -> Proposal:
    """A proposal from its document; every approval's signature is checked."""
    d = _object(doc, "the document")
    if d.get("format") != FORMAT or d.get("version") != VERSION:
        raise ProposalError(f"not a {FORMAT} document of version {VERSION}")
    chain_id = _text(d, "chain_id", limits.CHAIN_ID_CHARS_MAX)
    approvals = tuple(
        _approval(a, n) for n, a in enumerate(_list(d, "approvals", limits.VALIDATORS_MAX))
    )
    kind = d.get("kind")
    payload: GovernancePayload
    if kind == "change_validators":
        members = _list(d, "validators", limits.VALIDATORS_MAX)
        validators = tuple(_validator(v, n) for n, v in enumerate(members))
        height = d.get("effective_height")
        top = limits.HEIGHT_MAX
        if type(height) is not int or not 1 <= height <= top:
            raise ProposalError(f"effective_height must be an integer from 1 to {top}")
        payload = t.ChangeValidators(validators, height, approvals)
    elif kind == "schedule_upgrade":
        protocol = _code(d, "protocol")
        software = _code(d, "software")
        height = d.get("height")
        if type(height) is not int or not 1 <= height <= limits.HEIGHT_MAX:
            raise ProposalError(f"height must be an integer from 1 to {limits.HEIGHT_MAX}")
        payload = t.ScheduleUpgrade(protocol, software, height, approvals)
    elif kind == "admit_issuer":
        zones = tuple(_zone(z) for z in _list(d, "zones", limits.ZONES_PER_ISSUER_MAX))
        issuer = _key(d.get("issuer"), "issuer")
        name = _name(d, "name")
        territory = _name(d, "territory")
        payload = t.AdmitIssuer(issuer, name, territory, zones, approvals)
    else:
        raise ProposalError(f"kind must be one of {', '.join(KINDS)}")
    try:
        body = payload.approval_body()
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProposalError(f"the proposal does not encode: {exc}") from None
    for a in approvals:
        if not verify(Domain.GOVERNANCE, chain_id, body, a.validator, a.signature):
            raise ProposalError(
                f"the approval of {a.validator.hex()} does not verify: the proposal changed "
                "after it was signed, or it is of another chain"
            )
    if len({a.validator for a in approvals}) != len(approvals):
        raise ProposalError("a validator approved twice")
    return Proposal(chain_id, payload)


def _object(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ProposalError(f"{what} must be a JSON object")
    return value


def _list(d: Mapping[str, object], name: str, most: int) -> list[object]:
    value = d.get(name)
    if not isinstance(value, list) or len(value) > most:
        raise ProposalError(f"{name} must be a list of at most {most}")
    return value


def _text(d: Mapping[str, object], name: str, most: int) -> str:
    value = d.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= most:
        raise ProposalError(f"{name} must be a string of 1 to {most} characters")
    return value


def _code(d: Mapping[str, object], name: str) -> str:
    """A version or protocol name as the ledger accepts it (``rules.is_code``)."""
    value = _text(d, name, limits.CODE_CHARS_MAX)
    if not is_code(value):
        raise ProposalError(
            f"{name} must be letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _name(d: Mapping[str, object], name: str) -> str:
    """A name as the ledger accepts it (``node.text.names``)."""
    value = _text(d, name, limits.NAME_CHARS_MAX)
    problem = name_problem(value)
    if problem is not None:
        raise ProposalError(f"{name}: {problem}")
    return value


def _key(value: object, what: str) -> PublicKey:
    raw = _hex(value, what)
    if len(raw) != PUBLIC_KEY_BYTES:
        raise ProposalError(f"{what} must be {PUBLIC_KEY_BYTES} bytes of hex")
    return PublicKey(raw)


def _hex(value: object, what: str) -> bytes:
    try:
        return bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raise ProposalError(f"{what} is not hex") from None


def _zone(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limits.CODE_CHARS_MAX:
        raise ProposalError(f"a zone must be a string of 1 to {limits.CODE_CHARS_MAX} characters")
    return value


def _validator(value: object, n: int) -> t.ValidatorEntry:
    d = _object(value, f"validators[{n}]")
    power = d.get("power")
    if type(power) is not int or not 1 <= power <= limits.VALIDATOR_POWER_MAX:
        raise ProposalError(
            f"validators[{n}].power must be an integer from 1 to {limits.VALIDATOR_POWER_MAX}"
        )
    return t.ValidatorEntry(
        _key(d.get("public_key"), f"validators[{n}].public_key"),
        power,
        _name(d, "name"),
        _text(d, "role", limits.CODE_CHARS_MAX),
    )


def _approval(value: object, n: int) -> t.Approval:
    d = _object(value, f"approvals[{n}]")
    signature = _hex(d.get("signature"), f"approvals[{n}].signature")
    if len(signature) != SIGNATURE_BYTES:
        raise ProposalError(f"approvals[{n}].signature must be {SIGNATURE_BYTES} bytes of hex")
    return t.Approval(_key(d.get("validator"), f"approvals[{n}].validator"), signature)
