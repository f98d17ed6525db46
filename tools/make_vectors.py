"""Golden vectors of the voucher ledger: ``python -m tools.make_vectors`` rewrites them.

Writes two files into ``tests/vectors/`` (or ``--out DIR``):

- ``encodings.json``: one transaction of every kind, built from fixed keys,
  with its body, wire form, block leaf, transaction id and signature in hex;
- ``transitions.json``: a scripted history from genesis, one transaction per
  block, giving for each step the block height and time, the state root
  before, the wire bytes, the result code name and the state root after
  (rejections included: a rejected block is not committed, so the next step
  runs at the same height). The validator kinds (evidence, admit_issuer,
  change_validators) depend on the height.

``--check`` compares instead of writing and exits 1 on any difference.
Ed25519 signatures are deterministic, so the output is stable: any change in
it is a protocol change (see ``tests/vectors/README.md``).

Imports only ``node``. The keys and genesis are those of ``tests/ledger/world.py``,
copied here because tools never import tests; ``tests/ledger/test_vectors.py``
checks that the two agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from node.app.version import RULEBOOK
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import VALIDATOR_KINDS, execute_block
from node.ledger.genesis import initial_state
from node.ledger.protocols import RuleSet
from node.ledger.state import DictView
from node.protocol import merkle
from node.protocol.crypto import Digest, Domain, PublicKey, Signer, digest
from node.protocol.errors import ToolInvariantBroken
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
)
from node.protocol.state_tree import StateTree, encode_proof
from node.protocol.statements import Step, proposal_signing_body, vote_signing_body

CHAIN_ID: Final = "relance-test"
DAY_MS: Final = 86_400_000
T0_MS: Final = 1_767_225_600_000  # 2026-01-01T00:00:00Z
VECTORS_DIR: Final = Path(__file__).resolve().parent.parent / "tests" / "vectors"
FILES: Final = ("encodings.json", "transitions.json")
FORMAT_VERSION: Final = 5  # 5: rules per protocol, transaction protocol 3 (addresses)
# 4: protocol 3 (sparse Merkle state tree), proofs
NEXT_PROTOCOL: Final = "tx3.block2"  # the protocol the script's governance upgrades to
RULES: Final = RULEBOOK.with_rules(RuleSet(NEXT_PROTOCOL, memo_chars_max=16))
"""The protocols of the script: today's, and one whose memos hold 16 characters at most
(as ``tests.ledger.world.TEST_RULEBOOK``)."""
# 3: protocol 2 (item roots), leaves; 2: steps carry heights


def signer(name: str) -> Signer:
    """The deterministic key for ``name`` (as ``tests.ledger.world.signer``)."""
    return Signer(digest(b"relance-test-key:" + name.encode()))


def pk(name: str) -> PublicKey:
    return signer(name).public_key


def genesis() -> Genesis:
    """The genesis of ``tests.ledger.world.World``."""
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=T0_MS,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Banque Test", pk("bank")),
        validators=tuple(
            GenesisValidator(f"v{n}", "commune", pk(f"validator{n}"), 1) for n in range(4)
        ),
        issuers=(
            GenesisIssuer("Namur", "Ville de Namur", pk("namur"), ("NA-1", "NA-2")),
            GenesisIssuer("Liège", "Ville de Liège", pk("liege"), ("LG-1",)),
        ),
        auditors=(GenesisAccount("Cour des comptes", pk("auditor")),),
    )


# --- shared payloads ---------------------------------------------------------------------

NAM: Final = "NAM"
NAM_UNTIL_MS: Final = T0_MS + 30 * DAY_MS


LION_STREET: Final = t.Address("Rue de Fer 12", "5000", "Namur")


def _register(
    name: str, display: str, category: str, zone: str, auto: bool, address: t.Address = t.NO_ADDRESS
) -> t.RegisterMerchant:
    return t.RegisterMerchant(
        pk(name), display, category, zone, digest(f"payout:{name}".encode()), auto, address
    )


def _campaign() -> t.CreateCampaign:
    return t.CreateCampaign(
        NAM, "Chèques Relance Namur", (), ("10.7", "47"), T0_MS, NAM_UNTIL_MS, 50_00
    )


def _allocate(*rows: tuple[str, int, str]) -> t.Allocate:
    return t.Allocate(NAM, tuple(t.Allocation(pk(n), cents, zone) for n, cents, zone in rows))


def _authorized(holder: str, merchant: str, max_cents: int, cents: int) -> t.PayAuthorized:
    auth = t.Authorization(
        pk(holder),
        NAM,
        pk(merchant) if merchant else b"",
        max_cents,
        T0_MS + 2 * DAY_MS,
        digest(f"nonce:{holder}".encode())[: t.NONCE_BYTES],
    )
    return t.PayAuthorized(auth, auth.sign(signer(holder), CHAIN_ID), cents, "caisse 1")


def _block(label: str) -> bytes:
    return digest(b"block:" + label.encode())


def _vote(
    name: str, step: Step, height: int, round: int, block: bytes | None
) -> tuple[bytes, bytes]:
    body = vote_signing_body(step, height, round, block, pk(name))
    return body, signer(name).sign(Domain.VOTE, CHAIN_ID, body)


def _proposal(
    name: str, height: int, round: int, block: bytes, valid_round: int
) -> tuple[bytes, bytes]:
    body = proposal_signing_body(height, round, block, valid_round, pk(name))
    return body, signer(name).sign(Domain.PROPOSAL, CHAIN_ID, body)


def _evidence(first: tuple[bytes, bytes], second: tuple[bytes, bytes]) -> t.Evidence:
    return t.Evidence(first[0], first[1], second[0], second[1])


def _approved(payload: t.GovernancePayload, *names: str) -> t.Payload:
    approvals = tuple(t.approve(payload, signer(n), CHAIN_ID) for n in names)
    if isinstance(payload, t.AdmitIssuer):
        return t.AdmitIssuer(
            payload.issuer, payload.name, payload.territory, payload.zones, approvals
        )
    if isinstance(payload, t.ScheduleUpgrade):
        return t.ScheduleUpgrade(payload.protocol, payload.software, payload.height, approvals)
    if isinstance(payload, t.RotateKey):
        return t.RotateKey(payload.account, payload.new_key, payload.height, approvals)
    return t.ChangeValidators(payload.validators, payload.effective_height, approvals)


def _admit(issuer: str, name: str, zones: tuple[str, ...], *approvers: str) -> t.Payload:
    return _approved(t.AdmitIssuer(pk(issuer), name, f"Ville de {name}", zones, ()), *approvers)


def _change(members: tuple[str, ...], effective_height: int, *approvers: str) -> t.Payload:
    entries = tuple(t.ValidatorEntry(pk(n), 1, n, "commune") for n in members)
    return _approved(t.ChangeValidators(entries, effective_height, ()), *approvers)


def _rotate(account: str, new_key: str, height: int, *approvers: str) -> t.Payload:
    return _approved(t.RotateKey(pk(account), pk(new_key), height, ()), *approvers)


def _upgrade(height: int, *approvers: str) -> t.Payload:
    return _approved(t.ScheduleUpgrade(NEXT_PROTOCOL, "0.9.0", height, ()), *approvers)


# --- encodings ---------------------------------------------------------------------------


def _encoding_cases() -> list[tuple[str, int, t.Payload]]:
    """(signer, sequence, payload): one of each kind, in kind order."""
    namur = pk("namur")
    return [
        ("namur", 0, _register("bakery", "Boulangerie Lion", "10.71", "NA-1", False, LION_STREET)),
        (
            "namur",
            1,
            t.UpdateMerchant(
                pk("bakery"),
                "Boulangerie du Lion",
                "10.71",
                "NA-2",
                digest(b"payout:new"),
                True,
                t.Address("Place de l'Ange 3", "5000", "Namur"),
            ),
        ),
        ("namur", 2, t.SuspendMerchant(pk("bakery"), True)),
        ("namur", 3, _campaign()),
        ("bank", 0, t.Fund(NAM, 1000_00, "DEP-2026-0001")),
        ("namur", 4, _allocate(("alice", 50_00, "NA-1"), ("bob", 20_00, "NA-2"))),
        ("alice", 0, t.Pay(NAM, pk("bakery"), 12_34, "pain et croissants")),
        ("bakery", 0, _authorized("alice", "bakery", 20_00, 15_00)),
        ("voucher", 0, t.Sweep(NAM, pk("app"))),
        ("bakery", 1, t.Refund(pk("alice"), NAM, 2_00, "retour")),
        ("namur", 5, t.Reissue(NAM, pk("voucher"), pk("app"))),
        ("bakery", 2, t.Transfer(pk("supplier"), namur, 5_00, "farine")),
        ("bakery", 3, t.Redeem(namur, 10_00)),
        ("bank", 1, t.Settle((t.Settlement(Digest(digest(b"payout")), "VIR-2026-0001"),))),
        ("namur", 6, t.CloseCampaign(NAM)),
        ("bank", 2, t.Withdraw(NAM, 100_00, "RET-2026-0001")),
        (
            "validator0",
            0,
            _evidence(
                _vote("validator3", Step.PRECOMMIT, 12, 1, _block("a")),
                _vote("validator3", Step.PRECOMMIT, 12, 1, None),
            ),
        ),
        (
            "validator0",
            1,
            _admit(
                "charleroi", "Charleroi", ("CH-1", "CH-2"), "validator0", "validator1", "validator2"
            ),
        ),
        (
            "validator0",
            2,
            _change(
                ("validator0", "validator1", "validator2", "validator4"),
                40,
                "validator0",
                "validator1",
                "validator2",
            ),
        ),
        ("bank", 3, t.ReturnPayout(Digest(digest(b"payout")), "AC04", "RLF0000001T00001")),
        ("namur", 7, t.ConsentZones(pk("liege"), ("NA-1", "NA-2"))),
        ("validator0", 3, _upgrade(60, "validator0", "validator1", "validator2")),
        (
            "validator0",
            4,
            _rotate("liege", "liege-next", 70, "validator0", "validator1", "validator2"),
        ),
    ]


def encodings() -> dict[str, object]:
    vectors = []
    for name, sequence, payload in _encoding_cases():
        signed = t.Tx(CHAIN_ID, pk(name), sequence, payload).sign(signer(name))
        vectors.append(
            {
                "kind": payload.KIND.name.lower(),
                "kind_number": int(payload.KIND),
                "signer": name,
                "sender": signed.tx.sender.hex(),
                "sequence": sequence,
                "body": signed.body.hex(),
                "wire": signed.encode().hex(),
                "leaf": merkle.tx_leaf(signed.encode()).hex(),
                "tx_id": signed.tx_id.hex(),
                "signature": signed.signature.hex(),
            }
        )
    return {
        "format": FORMAT_VERSION,
        "chain_id": CHAIN_ID,
        "key_derivation": "Ed25519 seed = sha256('relance-test-key:' + signer)",
        "vectors": vectors,
    }


# --- transitions ---------------------------------------------------------------------------


@dataclass
class _Chain:
    """Genesis, then one transaction per block (applied only when it is OK)."""

    time_ms: int = T0_MS
    height: int = 0  # of the last committed block; a step runs at height + 1
    sequences: dict[bytes, int] = field(default_factory=dict)
    node_sequences: dict[bytes, int] = field(default_factory=dict)  # validator kinds
    steps: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.view = DictView(initial_state(genesis()))
        self.tree = StateTree.from_items(self.view.items().items())
        self.applied: list[bytes] = []

    def sign(self, name: str, payload: t.Payload, sequence: int | None = None) -> bytes:
        key = pk(name)
        counters = self.node_sequences if payload.KIND in VALIDATOR_KINDS else self.sequences
        seq = counters.get(key, 0) if sequence is None else sequence
        return t.Tx(CHAIN_ID, key, seq, payload).sign(signer(name)).encode()

    def step(self, label: str, data: bytes, expected: Result) -> None:
        pre = self.tree.root()
        height = self.height + 1
        outcome = execute_block(self.view, self.time_ms, [data], height=height, rulebook=RULES)
        (result,) = outcome.outcomes
        if result.result != expected:
            raise ToolInvariantBroken(
                f"step {label!r}: {result.result.name}, expected {expected.name}"
            )
        if outcome.all_ok:
            self.view.apply(outcome.writes)
            self.tree.update(outcome.writes)
            self.height = height
            if result.sender is None or result.kind is None:
                raise ToolInvariantBroken(f"step {label!r}: applied without a sender")
            validator_kind = result.kind in VALIDATOR_KINDS
            counters = self.node_sequences if validator_kind else self.sequences
            counters[result.sender] = counters.get(result.sender, 0) + 1
            self.applied.append(data)
        self.steps.append(
            {
                "step": len(self.steps) + 1,
                "label": label,
                "height": height,
                "time_ms": self.time_ms,
                "pre_root": pre.hex(),
                "tx": data.hex(),
                "tx_id": None if result.tx_id is None else result.tx_id.hex(),
                "result": result.result.name,
                "post_root": self.tree.root().hex(),
            }
        )

    def do(self, label: str, name: str, payload: t.Payload, expected: Result = Result.OK) -> bytes:
        data = self.sign(name, payload)
        self.step(label, data, expected)
        return data


def _tx_id(data: bytes) -> Digest:
    decoded = t.decode_tx(data, CHAIN_ID)
    if isinstance(decoded, Result):
        raise ToolInvariantBroken(decoded.name)
    return decoded.tx_id


def transitions() -> dict[str, object]:
    c = _Chain()
    genesis_root = c.tree.root()
    _registrations(c)
    _opening(c)
    c.time_ms = T0_MS + DAY_MS
    bob_pay = _payments(c)
    _payouts(c, bob_pay)
    _closing(c)
    _governance(c)
    _regional(c)
    _rotation(c)

    return {
        "format": FORMAT_VERSION,
        "chain_id": CHAIN_ID,
        "genesis_hash": genesis().genesis_hash.hex(),
        "genesis_root": genesis_root.hex(),
        "state_tree": "sparse Merkle, path sha256(key), compressed leaves (docs/protocol.md)",
        "steps": c.steps,
        "proofs": _proofs(c),
    }


def _registrations(c: _Chain) -> None:
    """Namur registers its merchants; an address without a town, a foreign zone refused."""
    c.do(
        "an address without its town is refused",
        "namur",
        _register(
            "bakery",
            "Boulangerie Lion",
            "10.71",
            "NA-1",
            False,
            t.Address("Rue de Fer 12", "5000", ""),
        ),
        Result.INVALID_NAME,
    )
    c.do(
        "namur registers the bakery (auto-redeem off, with its address)",
        "namur",
        _register("bakery", "Boulangerie Lion", "10.71", "NA-1", False, LION_STREET),
    )
    c.do(
        "namur registers the grocer (auto-redeem on, no address)",
        "namur",
        _register("grocer", "Épicerie Jambes", "47.11", "NA-2", True),
    )
    c.do(
        "namur registers a supplier",
        "namur",
        _register("supplier", "Grossiste Meuse", "46.39", "NA-2", False),
    )
    c.do(
        "liège may not register in a Namur zone",
        "liege",
        _register("intruder", "Intrus", "47.11", "NA-1", False),
        Result.INVALID_ZONE,
    )


def _opening(c: _Chain) -> None:
    """Campaign NAM created, funded once (not twice) and allocated to three pots."""
    c.do("namur creates campaign NAM", "namur", _campaign())
    c.do("the bank confirms the deposit", "bank", t.Fund(NAM, 1000_00, "DEP-2026-0001"))
    c.do(
        "the same bank reference again",
        "bank",
        t.Fund(NAM, 1000_00, "DEP-2026-0001"),
        Result.DUPLICATE_REFERENCE,
    )
    c.do(
        "namur allocates three pots",
        "namur",
        _allocate(("alice", 50_00, "NA-1"), ("bob", 20_00, "NA-2"), ("voucher", 30_00, "NA-1")),
    )
    c.do(
        "a pot above the cap",
        "namur",
        _allocate(("carol", 50_01, "NA-1")),
        Result.HOLDER_CAP_EXCEEDED,
    )


def _payments(c: _Chain) -> bytes:
    """Payments, refused ones, a sweep, an authorization, a refund and a transfer; returns
    bob's payment (a payout)."""
    namur = pk("namur")
    pay = c.do("alice pays the bakery", "alice", t.Pay(NAM, pk("bakery"), 10_00, "pain"))
    bob_pay = c.do("bob pays the grocer: a payout", "bob", t.Pay(NAM, pk("grocer"), 5_00, "fruits"))
    c.step("alice's payment replayed", pay, Result.BAD_SEQUENCE)
    c.do(
        "alice overspends by one cent",
        "alice",
        t.Pay(NAM, pk("bakery"), 40_01, ""),
        Result.INSUFFICIENT_FUNDS,
    )
    c.do(
        "alice pays bob, a holder",
        "alice",
        t.Pay(NAM, pk("bob"), 1_00, ""),
        Result.UNKNOWN_MERCHANT,
    )
    c.do(
        "alice pays the supplier, outside the categories",
        "alice",
        t.Pay(NAM, pk("supplier"), 1_00, ""),
        Result.MERCHANT_NOT_ELIGIBLE,
    )
    bad = bytearray(c.sign("alice", t.Pay(NAM, pk("bakery"), 1_00, "")))
    bad[-1] ^= 1
    c.step("a flipped signature bit", bytes(bad), Result.BAD_SIGNATURE)
    c.step(
        "truncated bytes",
        c.sign("alice", t.Pay(NAM, pk("bakery"), 1_00, ""))[:-1],
        Result.MALFORMED,
    )
    c.do("the voucher is swept into an app key", "voucher", t.Sweep(NAM, pk("app")))
    c.do(
        "the bakery completes the app key's authorization",
        "bakery",
        _authorized("app", "bakery", 8_00, 8_00),
    )
    c.do("the bakery refunds alice in part", "bakery", t.Refund(pk("alice"), NAM, 4_00, "retour"))
    c.do(
        "a refund above what alice paid, net",
        "bakery",
        t.Refund(pk("alice"), NAM, 6_01, ""),
        Result.REFUND_EXCEEDS_PAYMENTS,
    )
    c.do(
        "the bakery pays its supplier", "bakery", t.Transfer(pk("supplier"), namur, 5_00, "farine")
    )
    c.do(
        "the bakery tries to pay alice",
        "bakery",
        t.Transfer(pk("alice"), namur, 1_00, ""),
        Result.UNKNOWN_MERCHANT,
    )
    return bob_pay


def _payouts(c: _Chain, bob_pay: bytes) -> None:
    """Redemption, settlement, a payout returned by the bank and what it refuses after."""
    namur = pk("namur")
    redeem = c.do("the supplier redeems", "supplier", t.Redeem(namur, 5_00))
    settle = t.Settle(
        (t.Settlement(_tx_id(bob_pay), "VIR-0001"), t.Settlement(_tx_id(redeem), "VIR-0002"))
    )
    c.do("the bank settles both payouts", "bank", settle)
    c.do(
        "the bank settles one again",
        "bank",
        t.Settle((t.Settlement(_tx_id(bob_pay), "VIR-0003"),)),
        Result.PAYOUT_ALREADY_SETTLED,
    )
    returned = c.do("the bakery redeems 2.00", "bakery", t.Redeem(namur, 2_00))
    c.do(
        "the bank returns it: the merchant's account is closed",
        "bank",
        t.ReturnPayout(_tx_id(returned), "AC04", "RLF0000001T00001"),
    )
    c.do(
        "the bank settles the returned payout",
        "bank",
        t.Settle((t.Settlement(_tx_id(returned), "VIR-0005"),)),
        Result.PAYOUT_RETURNED,
    )
    c.do(
        "the bank returns it again",
        "bank",
        t.ReturnPayout(_tx_id(returned), "AC01", "RLF0000002T00001"),
        Result.PAYOUT_RETURNED,
    )


def _closing(c: _Chain) -> None:
    """After the campaign's end: no payment, the campaign closed, the rest withdrawn."""
    namur = pk("namur")
    c.do("namur closes too early", "namur", t.CloseCampaign(NAM), Result.CAMPAIGN_STILL_RUNNING)

    c.time_ms = NAM_UNTIL_MS
    c.do(
        "alice pays after the end",
        "alice",
        t.Pay(NAM, pk("bakery"), 1_00, ""),
        Result.CAMPAIGN_NOT_ACTIVE,
    )
    c.do("namur closes the campaign", "namur", t.CloseCampaign(NAM))
    last = c.do("the bakery redeems the rest", "bakery", t.Redeem(namur, 9_00))
    c.do("the bank settles it", "bank", t.Settle((t.Settlement(_tx_id(last), "VIR-0004"),)))
    c.do(
        "the bank withdraws more than the budget",
        "bank",
        t.Withdraw(NAM, 1000_00, "RET-2026-0001"),
        Result.INSUFFICIENT_BUDGET,
    )
    c.do("the bank withdraws the budget", "bank", t.Withdraw(NAM, 981_00, "RET-2026-0001"))


def _rotation(c: _Chain) -> None:
    """Governance moves Namur's signing authority to the key ``namur-next``: before the
    height the old key signs and the new one is refused; from it, the reverse, the new key
    going on with Namur's sequence."""
    namur = pk("namur")
    at = c.height + 3
    c.do(
        "namur's signing key moves to namur-next from two blocks later",
        "validator4",
        _rotate("namur", "namur-next", at, "validator4", "validator1", "validator2"),
    )
    early = t.CreateCampaign(
        "NAM-ROT", "Chèque rotation", (), (), c.time_ms, c.time_ms + 30 * DAY_MS, 10_00
    )
    c.step(
        "namur-next before its height",
        c.sign("namur-next", early, c.sequences[namur]),
        Result.KEY_NOT_YET_IN_FORCE,
    )
    c.do("namur's own key still signs before it", "namur", early)
    if c.height + 1 != at:
        raise ToolInvariantBroken("the script lost track of the rotation's height")
    later = t.ConsentZones(pk("liege"), ("NA-2",))
    c.do("namur's old key after the height", "namur", later, Result.KEY_ROTATED)
    c.step(
        "namur-next signs for namur, with namur's sequence",
        c.sign("namur-next", later, c.sequences[namur]),
        Result.OK,
    )
    c.sequences[namur] += 1  # the step counted it under the key that signed


def _regional(c: _Chain) -> None:
    """Liège as a region: Namur consents NA-1, Liège's campaign is spent at Namur's
    bakery and redeemed from Liège's escrow, then Namur revokes its consent."""
    liege = pk("liege")
    regional = t.CreateCampaign(
        "LG-REG",
        "Chèque régional",
        ("LG-1", "NA-1"),
        (),
        c.time_ms,
        c.time_ms + 30 * DAY_MS,
        50_00,
    )
    c.do(
        "namur consents a Liège zone",
        "namur",
        t.ConsentZones(liege, ("LG-1",)),
        Result.INVALID_ZONE,
    )
    c.do("liège names NA-1 without consent", "liege", regional, Result.ZONE_NOT_CONSENTED)
    c.do("namur consents NA-1 to liège", "namur", t.ConsentZones(liege, ("NA-1",)))
    c.do("liège's campaign names NA-1", "liege", regional)
    c.do("the bank funds it", "bank", t.Fund("LG-REG", 100_00, "DEP-REG-0001"))
    c.do(
        "liège allocates to dora in NA-1",
        "liege",
        t.Allocate("LG-REG", (t.Allocation(pk("dora"), 30_00, "NA-1"),)),
    )
    c.do("dora pays namur's bakery", "dora", t.Pay("LG-REG", pk("bakery"), 10_00, "pain"))
    c.do("the bakery redeems liège's units", "bakery", t.Redeem(liege, 10_00))
    long_memo = "pain et brioche!!"  # 17 characters
    c.do(
        "under tx3.block2 a memo holds 16 characters",
        "dora",
        t.Pay("LG-REG", pk("bakery"), 1_00, long_memo),
        Result.INVALID_FIELD,
    )
    c.do("namur revokes its consent", "namur", t.ConsentZones(liege, ()))
    c.do(
        "dora pays the bakery again",
        "dora",
        t.Pay("LG-REG", pk("bakery"), 1_00, ""),
        Result.ZONE_NOT_CONSENTED,
    )


def _proofs(c: _Chain) -> list[dict[str, object]]:
    """State proofs against the last root: the first and last keys, and absent keys."""
    items = c.view.items()
    keys = sorted(items)
    chosen = [keys[0], keys[len(keys) // 2], keys[-1], b"absent", b"\xff" * 40]
    return [
        {
            "key": key.hex(),
            "value": None if key not in items else items[key].hex(),
            "proof": encode_proof(c.tree.prove(key)).hex(),
        }
        for key in chosen
    ]


def _governance(c: _Chain) -> None:
    """Evidence, the admission of Charleroi, validator4 replacing validator3, an upgrade."""
    h = c.height  # the last committed block; validator3 double-signs there
    _evidence_steps(c, h)
    _admissions(c)
    _validator_change(c, h)
    _protocol_upgrade(c)
    c.do(
        "Charleroi creates a campaign",
        "charleroi",
        t.CreateCampaign(
            "CHR", "Relance Charleroi", (), (), NAM_UNTIL_MS, NAM_UNTIL_MS + 30 * DAY_MS, 20_00
        ),
    )


def _evidence_steps(c: _Chain, h: int) -> None:
    """validator3 double-signs at ``h``: reported once; what is no offence, or not allowed."""
    prevote_a = _vote("validator3", Step.PREVOTE, h, 0, _block("a"))
    prevote_b = _vote("validator3", Step.PREVOTE, h, 0, _block("b"))
    c.do(
        "validator1 reports validator3's double prevote",
        "validator1",
        _evidence(prevote_a, prevote_b),
    )
    c.do(
        "validator2 reports it again, swapped",
        "validator2",
        _evidence(prevote_b, prevote_a),
        Result.EVIDENCE_KNOWN,
    )
    c.do(
        "a double proposal by validator2",
        "validator0",
        _evidence(
            _proposal("validator2", h, 2, _block("a"), -1),
            _proposal("validator2", h, 2, _block("b"), 1),
        ),
    )
    c.do(
        "two prevotes of different rounds are no offence",
        "validator0",
        _evidence(
            _vote("validator1", Step.PREVOTE, h, 0, _block("a")),
            _vote("validator1", Step.PREVOTE, h, 1, _block("b")),
        ),
        Result.EVIDENCE_INVALID,
    )
    c.do(
        "the bank is no validator",
        "bank",
        _evidence(
            _vote("validator1", Step.PRECOMMIT, h, 0, _block("a")),
            _vote("validator1", Step.PRECOMMIT, h, 0, None),
        ),
        Result.NOT_AUTHORIZED,
    )
    c.do(
        "statements of a later height",
        "validator0",
        _evidence(
            _vote("validator1", Step.PREVOTE, c.height + 2, 0, _block("a")),
            _vote("validator1", Step.PREVOTE, c.height + 2, 0, _block("b")),
        ),
        Result.INVALID_HEIGHT,
    )


def _admissions(c: _Chain) -> None:
    """Charleroi admitted with 3 of 4 approvals (not 2, not with Namur's zone)."""
    zones = ("CH-1", "CH-2")
    c.do(
        "admit Charleroi with 2 of 4 approvals",
        "validator0",
        _admit("charleroi", "Charleroi", zones, "validator0", "validator1"),
        Result.INSUFFICIENT_APPROVALS,
    )
    c.do(
        "admit Charleroi with a zone of Namur",
        "validator0",
        _admit("charleroi", "Charleroi", ("NA-2",), "validator0", "validator1", "validator2"),
        Result.INVALID_ZONE,
    )
    c.do(
        "admit Charleroi with 3 of 4 approvals",
        "validator0",
        _admit("charleroi", "Charleroi", zones, "validator3", "validator1", "validator2"),
    )
    c.do(
        "Charleroi registers a merchant",
        "charleroi",
        _register("friterie", "Friterie du Centre", "56.10", "CH-1", True),
    )


def _validator_change(c: _Chain, h: int) -> None:
    """validator4 replaces validator3 two blocks later; who may act before and after."""
    effective = c.height + 3
    members = ("validator0", "validator1", "validator2", "validator4")
    c.do(
        "too soon: effective one block later",
        "validator0",
        _change(members, c.height + 2, "validator0", "validator1", "validator2"),
        Result.INVALID_HEIGHT,
    )
    c.do(
        "validator4 replaces validator3 two blocks later",
        "validator0",
        _change(members, effective, "validator0", "validator1", "validator2"),
    )
    c.do(
        "a second change while one is pending",
        "validator1",
        _change(members[:3], effective + 5, "validator0", "validator1", "validator2"),
        Result.VALIDATOR_CHANGE_PENDING,
    )
    c.do(
        "validator4 may not act yet",
        "validator4",
        _evidence(
            _vote("validator0", Step.PREVOTE, h, 5, _block("a")),
            _vote("validator0", Step.PREVOTE, h, 5, _block("b")),
        ),
        Result.NOT_AUTHORIZED,
    )
    c.do(
        "validator3 still reports, in the last block before the change",
        "validator3",
        _evidence(
            _vote("validator0", Step.PREVOTE, h, 5, _block("a")),
            _vote("validator0", Step.PREVOTE, h, 5, _block("b")),
        ),
    )
    if c.height + 1 != effective:
        raise ToolInvariantBroken("the script lost track of the effective height")
    c.do(
        "validator3 has left",
        "validator3",
        _evidence(
            _vote("validator0", Step.PRECOMMIT, h, 5, _block("a")),
            _vote("validator0", Step.PRECOMMIT, h, 5, None),
        ),
        Result.NOT_AUTHORIZED,
    )
    c.do(
        "the old majority no longer approves",
        "validator0",
        _admit("mons", "Mons", ("MO-1",), "validator1", "validator2", "validator3"),
        Result.INSUFFICIENT_APPROVALS,
    )
    c.do(
        "validator4 acts in the block of the change",
        "validator4",
        _evidence(
            _vote("validator0", Step.PRECOMMIT, h, 5, _block("a")),
            _vote("validator0", Step.PRECOMMIT, h, 5, None),
        ),
    )
    c.do(
        "the new majority admits Mons",
        "validator4",
        _admit("mons", "Mons", ("MO-1",), "validator4", "validator1", "validator2"),
    )


def _protocol_upgrade(c: _Chain) -> None:
    """An upgrade approved by the new majority (not the old one), and not two at once."""
    upgrade_at = c.height + 3
    c.do(
        "an upgrade approved by the old majority",
        "validator4",
        _upgrade(upgrade_at, "validator1", "validator2", "validator3"),
        Result.INSUFFICIENT_APPROVALS,
    )
    c.do(
        "protocol tx3.block2 from two blocks later",
        "validator4",
        _upgrade(upgrade_at, "validator4", "validator1", "validator2"),
    )
    c.do(
        "a second upgrade while one is pending",
        "validator1",
        _upgrade(upgrade_at + 5, "validator4", "validator1", "validator2"),
        Result.UPGRADE_PENDING,
    )


# --- files ---------------------------------------------------------------------------------


def render(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    return {"encodings.json": render(encodings()), "transitions.json": render(transitions())}


def write(directory: Path = VECTORS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def differences(directory: Path = VECTORS_DIR) -> list[str]:
    out = []
    for name, text in rendered().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=VECTORS_DIR, help="directory of the vectors")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    if args.check:
        diff = differences(args.out)
        for name in diff:
            print(f"{args.out / name}: differs from what the code produces", file=sys.stderr)
        return 1 if diff else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
