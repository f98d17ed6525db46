"""The shared ledger scene: a World with merchants, campaigns, funds, holders and payments.

``scene`` (a fixture) gives a fresh ``Scene`` per test: after genesis, block by
block at ``T0``, then three payments at ``T0 + 1 day``, the scene's clock. The
scene is built once per session and each test gets an independent copy. Every
number below is part of what the kind tests assert, so read them here:

======================  ====================================================
merchants (Namur)       bakery NA-1 10.71 auto-redeem off
                        grocer NA-2 47.11 auto-redeem on
                        bar NA-1 56.30 off (category outside NAM)
                        supplier NA-2 46.39 off (a wholesaler)
                        closed_shop NA-1 47.19 off, suspended
merchants (Liège)       liege_shop LG-1 47.11 off
campaigns               NAM   Namur, zones all, categories 10.7 and 47,
                              T0 .. T0+30d, max 50.00 / holder, funded 1000.00
                        NA1   Namur, zone NA-1, every category,
                              T0 .. T0+30d, max 100.00, funded 500.00
                        LATER Namur, T0+10d .. T0+40d, max 50.00, funded 100.00
                        LG    Liège, T0 .. T0+30d, max 100.00, funded 200.00
allocations             alice NAM 50.00, NA1 40.00, LATER 10.00; bob NAM 20.00;
                        voucher NAM 30.00 (a bearer QR code); dora LG 60.00
payments at T0+1d       alice -> bakery 10.00 NAM (bakery's balance)
                        bob -> grocer 5.00 NAM (a pending payout: ``bob_payout``)
                        dora -> liege_shop 15.00 LG (liege_shop's balance)
validators              v0..v3 (genesis, power 1 each; 3 of 4 is > 2/3);
                        v4, v5 are keys that may join; charleroi may be admitted
height                  4 blocks applied: the next block is height 5
======================  ====================================================

Blocks run at ``World.next_height``; a rejected block is not committed.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import TypeVar

import pytest

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockOutcome
from node.protocol import limits
from node.protocol.crypto import Digest, Domain, Signer, digest
from node.protocol.statements import Step, proposal_signing_body, vote_signing_body
from tests.ledger.invariants import check_invariants
from tests.ledger.world import CHAIN_ID, DAY_MS, T0_MS, World, signer

NAM = "NAM"
NA1 = "NA1"
LATER = "LATER"
LG = "LG"
NAM_UNTIL_MS = T0_MS + 30 * DAY_MS
LATER_FROM_MS = T0_MS + 10 * DAY_MS
LATER_UNTIL_MS = T0_MS + 40 * DAY_MS
NOW_MS = T0_MS + DAY_MS
NAM_MAX = 50_00
AMOUNT_MAX = 100_000_000
REF_HASH = Digest(digest(b"BE68 5390 0754 7034"))


def register(m: Signer, name: str, category: str, zone: str, auto: bool) -> t.RegisterMerchant:
    return t.RegisterMerchant(m.public_key, name, category, zone, REF_HASH, auto)


def campaign(
    code: str,
    zones: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    valid_from_ms: int = T0_MS,
    valid_until_ms: int = NAM_UNTIL_MS,
    max_cents: int = NAM_MAX,
) -> t.CreateCampaign:
    return t.CreateCampaign(
        code, f"Campaign {code}", zones, categories, valid_from_ms, valid_until_ms, max_cents
    )


def allocate(code: str, *rows: tuple[Signer | bytes, int, str]) -> t.Allocate:
    return t.Allocate(
        code,
        tuple(
            t.Allocation(
                who if isinstance(who, bytes) else who.public_key,  # type: ignore[arg-type]
                cents,
                zone,
            )
            for who, cents, zone in rows
        ),
    )


class Scene:
    """A World after the setup of the module docstring, with every key by name."""

    def __init__(self) -> None:
        self.w = World()
        w = self.w
        self.bank, self.namur, self.liege, self.auditor = w.bank, w.namur, w.liege, w.auditor
        self.bakery = signer("bakery")
        self.grocer = signer("grocer")
        self.bar = signer("bar")
        self.supplier = signer("supplier")
        self.closed_shop = signer("closed_shop")
        self.liege_shop = signer("liege_shop")
        self.alice = signer("alice")
        self.bob = signer("bob")
        self.dora = signer("dora")
        self.voucher = signer("voucher")
        self.app = signer("app")
        self.stranger = signer("stranger")
        # Validator node keys: v0..v3 are genesis's (power 1 each); v4, v5 are not (yet).
        self.v0, self.v1, self.v2, self.v3 = w.validators
        self.v4 = signer("validator4")
        self.v5 = signer("validator5")
        self.charleroi = signer("charleroi")  # an issuer the validators may admit

        self.block(
            (self.namur, register(self.bakery, "Boulangerie Lion", "10.71", "NA-1", False)),
            (self.namur, register(self.grocer, "Épicerie Jambes", "47.11", "NA-2", True)),
            (self.namur, register(self.bar, "Café du Beffroi", "56.30", "NA-1", False)),
            (self.namur, register(self.supplier, "Grossiste Meuse", "46.39", "NA-2", False)),
            (self.namur, register(self.closed_shop, "Bazar", "47.19", "NA-1", False)),
            (self.namur, t.SuspendMerchant(self.closed_shop.public_key, True)),
            (self.liege, register(self.liege_shop, "Librairie Outremeuse", "47.11", "LG-1", False)),
            (self.namur, campaign(NAM, categories=("47", "10.7"))),
            (self.namur, campaign(NA1, zones=("NA-1",), max_cents=100_00)),
            (self.namur, campaign(LATER, valid_from_ms=LATER_FROM_MS,
                                  valid_until_ms=LATER_UNTIL_MS)),
            (self.liege, campaign(LG, max_cents=100_00)),
        )  # fmt: skip
        self.block(
            (self.bank, t.Fund(NAM, 1000_00, "DEP-NAM-1")),
            (self.bank, t.Fund(NA1, 500_00, "DEP-NAM-2")),
            (self.bank, t.Fund(LATER, 100_00, "DEP-NAM-3")),
            (self.bank, t.Fund(LG, 200_00, "DEP-LG-1")),
        )
        self.block(
            (
                self.namur,
                allocate(
                    NAM,
                    (self.alice, 50_00, "NA-1"),
                    (self.bob, 20_00, "NA-2"),
                    (self.voucher, 30_00, "NA-1"),
                ),
            ),
            (self.namur, allocate(NA1, (self.alice, 40_00, "NA-1"))),
            (self.namur, allocate(LATER, (self.alice, 10_00, "NA-1"))),
            (self.liege, allocate(LG, (self.dora, 60_00, "LG-1"))),
        )
        w.time_ms = NOW_MS
        pays = w.sign_block(
            (self.alice, t.Pay(NAM, self.bakery.public_key, 10_00, "pain")),
            (self.bob, t.Pay(NAM, self.grocer.public_key, 5_00, "fruits")),
            (self.dora, t.Pay(LG, self.liege_shop.public_key, 15_00, "livre")),
        )
        outcome = self.apply_ok(*pays)
        bob_payout = outcome.outcomes[1].tx_id
        assert bob_payout is not None
        self.bob_payout: Digest = bob_payout
        check_invariants(w.view.items())

    def clone(self) -> Scene:
        other = copy.copy(self)
        other.w = self.w.copy()
        assert other.w.root() == self.w.root()
        return other

    # --- shortcuts ------------------------------------------------------------------

    def tx(self, who: Signer, payload: t.Payload, sequence: int | None = None) -> bytes:
        return self.w.sign(who, payload, sequence)

    def apply_ok(self, *txs: bytes) -> BlockOutcome:
        outcome = self.w.apply(*txs)
        assert [o.result for o in outcome.outcomes] == [Result.OK] * len(txs)
        return outcome

    def block(self, *steps: tuple[Signer, t.Payload]) -> BlockOutcome:
        return self.apply_ok(*self.w.sign_block(*steps))

    def do(self, who: Signer, payload: t.Payload) -> Digest:
        """Apply one transaction that must succeed (setup of a case); its id."""
        outcome = self.apply_ok(self.tx(who, payload))
        tx_id = outcome.outcomes[0].tx_id
        assert tx_id is not None
        return tx_id

    def update(self, m: Signer, **changes: object) -> t.UpdateMerchant:
        """An update of ``m`` that keeps every field but ``changes``."""
        record = self.w.merchant(m)
        assert record is not None
        fields_ = {
            "merchant": m.public_key,
            "name": record.name,
            "category": record.category,
            "zone": record.zone,
            "payout_ref_hash": record.payout_ref_hash,
            "auto_redeem": record.auto_redeem,
        }
        fields_.update(changes)
        return t.UpdateMerchant(**fields_)  # type: ignore[arg-type]

    def authorization(
        self,
        holder: Signer | None = None,
        code: str = NAM,
        merchant: Signer | None = None,
        max_cents: int = 20_00,
        expires_ms: int = NOW_MS + 3_600_000,
        nonce: bytes = b"\x01" * t.NONCE_BYTES,
    ) -> t.Authorization:
        """Alice's (by default) authorization; no ``merchant`` means any merchant."""
        return t.Authorization(
            (holder or self.alice).public_key,
            code,
            b"" if merchant is None else merchant.public_key,
            max_cents,
            expires_ms,
            nonce,
        )

    def pay_authorized(
        self,
        auth: t.Authorization,
        amount_cents: int,
        signed_by: Signer | None = None,
        chain_id: str = CHAIN_ID,
    ) -> t.PayAuthorized:
        """``auth`` with the holder's signature (or ``signed_by``'s), for ``amount_cents``."""
        by = signed_by or self.alice
        return t.PayAuthorized(auth, auth.sign(by, chain_id), amount_cents, "caisse 2")

    def close(self, code: str = NAM) -> None:
        """Move to the end of ``code`` and close it."""
        record = self.w.campaign(code)
        assert record is not None
        self.w.time_ms = max(self.w.time_ms, record.valid_until_ms)
        self.do(self.liege if record.issuer == self.liege.public_key else self.namur,
                t.CloseCampaign(code))  # fmt: skip

    def full_holder(self) -> Signer:
        """A holder with a balance in as many campaigns as a key may hold (64 new ones)."""
        full = signer("full")
        codes = [f"K{n:02}" for n in range(limits.BALANCE_ROWS_PER_ACCOUNT_MAX)]
        self.block(*((self.namur, campaign(c)) for c in codes))
        self.block(*((self.bank, t.Fund(c, 1, f"DEP-{c}")) for c in codes))
        self.block(*((self.namur, allocate(c, (full, 1, "NA-1"))) for c in codes))
        record = self.w.holder(full)
        assert record is not None
        assert len(record.balances) == limits.BALANCE_ROWS_PER_ACCOUNT_MAX
        return full


# --- consensus statements and governance ---------------------------------------------


Statement = tuple[bytes, bytes]  # (signing body, signature)
BLOCK_A = digest(b"block A")
BLOCK_B = digest(b"block B")
BLOCK_C = digest(b"block C")


def vote(
    v: Signer,
    step: Step,
    height: int,
    round: int = 0,
    block: bytes | None = BLOCK_A,
    chain_id: str = CHAIN_ID,
    domain: Domain = Domain.VOTE,
) -> Statement:
    """``v``'s signed prevote or precommit (``block`` None is nil)."""
    body = vote_signing_body(step, height, round, block, v.public_key)
    return body, v.sign(domain, chain_id, body)


def proposal(
    v: Signer,
    height: int,
    round: int = 0,
    block: bytes = BLOCK_A,
    valid_round: int = -1,
    domain: Domain = Domain.PROPOSAL,
) -> Statement:
    """``v``'s signed proposal."""
    body = proposal_signing_body(height, round, block, valid_round, v.public_key)
    return body, v.sign(domain, CHAIN_ID, body)


def evidence(first: Statement, second: Statement) -> t.Evidence:
    return t.Evidence(first[0], first[1], second[0], second[1])


def double_prevote(v: Signer, height: int, round: int = 0) -> t.Evidence:
    """``v`` prevoted for two different blocks at (height, round)."""
    return evidence(
        vote(v, Step.PREVOTE, height, round, BLOCK_A), vote(v, Step.PREVOTE, height, round, BLOCK_B)
    )


_Governance = TypeVar("_Governance", t.AdmitIssuer, t.ChangeValidators, t.ScheduleUpgrade)


def approved(payload: _Governance, *by: Signer) -> _Governance:
    """``payload`` with the approvals of ``by`` (in that order), each over ``payload`` itself."""
    bare = replace(payload, approvals=())
    return replace(payload, approvals=tuple(t.approve(bare, v, CHAIN_ID) for v in by))


def admit(
    issuer: Signer,
    *by: Signer,
    zones: tuple[str, ...] = ("CH-1", "CH-2"),
    name: str = "Charleroi",
    territory: str = "Ville de Charleroi",
) -> t.AdmitIssuer:
    return approved(t.AdmitIssuer(issuer.public_key, name, territory, zones, ()), *by)


def entry(v: Signer, power: int = 1, role: str = "commune", name: str = "") -> t.ValidatorEntry:
    return t.ValidatorEntry(v.public_key, power, name or f"node {v.public_key.hex()[:6]}", role)


def change(
    entries: tuple[t.ValidatorEntry, ...], effective_height: int, *by: Signer
) -> t.ChangeValidators:
    return approved(t.ChangeValidators(entries, effective_height, ()), *by)


def upgrade(
    height: int, *by: Signer, protocol: str = "tx2.block2", software: str = "0.9.0"
) -> t.ScheduleUpgrade:
    return approved(t.ScheduleUpgrade(protocol, software, height, ()), *by)


def as_records(entries: tuple[t.ValidatorEntry, ...]) -> tuple[r.Validator, ...]:
    return tuple(r.Validator(e.public_key, e.power, e.name, e.role) for e in entries)


def assert_rejected(w: World, data: bytes, code: Result) -> None:
    """``data`` gets ``code``, stages nothing, and its block changes nothing at all."""
    items, root, height = w.view.items(), w.root(), w.height
    sequences, node_sequences = dict(w.sequences), dict(w.node_sequences)
    assert w.check(data) == code
    executor = w.executor()
    block_start = executor.writes()  # what the block does before its transactions
    assert executor.execute(data).result == code
    assert executor.writes() == block_start
    outcome = w.apply(data)
    assert [o.result for o in outcome.outcomes] == [code]
    assert not outcome.all_ok
    assert w.root() == root
    assert w.height == height
    assert w.view.items() == items
    assert w.sequences == sequences
    assert w.node_sequences == node_sequences


_TEMPLATE: list[Scene] = []


def fresh_scene() -> Scene:
    """A new, independent scene (a copy of one built once per session)."""
    if not _TEMPLATE:
        _TEMPLATE.append(Scene())
    return _TEMPLATE[0].clone()


@pytest.fixture
def scene() -> Scene:
    return fresh_scene()
