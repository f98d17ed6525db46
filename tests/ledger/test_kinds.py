"""Every transaction kind: its accepted case, then every code that rejects it.

The scene (``conftest.py``) is a small Namur and Liège economy at ``T0 + 1 day``.
Each rejection is its own case and goes through ``assert_rejected``: the exact
code from ``check`` and from a block, nothing staged, the block refused, the
state root, height, items and sequences unchanged. Each accepted case checks
the records it wrote and the money invariants of DESIGN.md.

The validator kinds (evidence, admit_issuer, change_validators) are sent by
validator node keys with their own sequence; their table cases are here, and
what happens across blocks (a change in force from its height) is in
``test_governance.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from _pytest.mark import ParameterSet

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import codec, limits
from node.protocol.crypto import Digest, Domain, Signer, digest
from node.protocol.statements import ROUND_MAX, Step
from tests.ledger.conftest import (
    AMOUNT_MAX,
    BLOCK_A,
    BLOCK_B,
    BLOCK_C,
    LATER,
    LATER_FROM_MS,
    LATER_UNTIL_MS,
    LG,
    NA1,
    NAM,
    NAM_MAX,
    NAM_UNTIL_MS,
    NOW_MS,
    REF_HASH,
    Scene,
    Statement,
    admit,
    allocate,
    assert_rejected,
    campaign,
    change,
    double_prevote,
    entry,
    evidence,
    proposal,
    register,
    upgrade,
    vote,
)
from tests.ledger.invariants import check_invariants, check_sequences_monotonic
from tests.ledger.world import CHAIN_ID, T0_MS, holder_keys, pk, signer

Build = Callable[[Scene], bytes]


def case(name: str, code: Result, build: Build) -> ParameterSet:
    return pytest.param(build, code, id=f"{name}-{code.name}")


def applied(s: Scene, who: Signer, payload: t.Payload) -> Digest:
    """Apply one transaction that must succeed; check the invariants and the sequence."""
    before = s.w.view.items()
    tx_id = s.do(who, payload)
    after = s.w.view.items()
    check_invariants(after)
    check_sequences_monotonic(before, after, {who.public_key: 1})
    return tx_id


# --- the accepted transaction of each kind (also the base of the generic cases) -------


def _auth_pay(s: Scene) -> tuple[Signer, t.Payload]:
    return s.bakery, s.pay_authorized(s.authorization(merchant=s.bakery), 12_00)


def _close(s: Scene) -> tuple[Signer, t.Payload]:
    s.w.time_ms = NAM_UNTIL_MS
    return s.namur, t.CloseCampaign(NAM)


def _upgrade(
    s: Scene, *by: Signer, delay: int = limits.GOVERNANCE_DELAY_MIN_BLOCKS, **kw: str
) -> t.ScheduleUpgrade:
    """The protocol ``tx2.block2`` from ``delay`` blocks after the next one; by v0..v2."""
    return upgrade(s.w.next_height + delay, *(by or (s.v0, s.v1, s.v2)), **kw)


def _replace_v3(
    s: Scene,
    *by: Signer,
    delay: int = limits.GOVERNANCE_DELAY_MIN_BLOCKS,
    entries: tuple[t.ValidatorEntry, ...] | None = None,
) -> t.ChangeValidators:
    """v4 replaces v3, from ``delay`` blocks after the next one; approved by v0..v2 by default."""
    new_set = entries if entries is not None else (
        entry(s.v0), entry(s.v1), entry(s.v2), entry(s.v4)
    )  # fmt: skip
    return change(new_set, s.w.next_height + delay, *(by or (s.v0, s.v1, s.v2)))


GOOD: dict[t.Kind, Callable[[Scene], tuple[Signer, t.Payload]]] = {
    t.Kind.REGISTER_MERCHANT: lambda s: (
        s.namur, register(s.stranger, "Fromagerie", "47.29", "NA-2", True)
    ),
    t.Kind.UPDATE_MERCHANT: lambda s: (s.namur, s.update(s.bakery, name="Boulangerie du Lion")),
    t.Kind.SUSPEND_MERCHANT: lambda s: (s.namur, t.SuspendMerchant(pk(s.bakery), True)),
    t.Kind.CREATE_CAMPAIGN: lambda s: (s.namur, campaign("NEW")),
    t.Kind.FUND: lambda s: (s.bank, t.Fund(NAM, 100_00, "DEP-NEW")),
    t.Kind.ALLOCATE: lambda s: (s.namur, allocate(NAM, (s.stranger, 10_00, "NA-2"))),
    t.Kind.PAY: lambda s: (s.alice, t.Pay(NAM, pk(s.bakery), 5_00, "croissants")),
    t.Kind.PAY_AUTHORIZED: _auth_pay,
    t.Kind.SWEEP: lambda s: (s.voucher, t.Sweep(NAM, pk(s.app))),
    t.Kind.REFUND: lambda s: (s.bakery, t.Refund(pk(s.alice), NAM, 4_00, "retour")),
    t.Kind.REISSUE: lambda s: (s.namur, t.Reissue(NAM, pk(s.voucher), pk(s.app))),
    t.Kind.TRANSFER: lambda s: (s.bakery, t.Transfer(pk(s.supplier), pk(s.namur), 4_00, "farine")),
    t.Kind.REDEEM: lambda s: (s.bakery, t.Redeem(pk(s.namur), 10_00)),
    t.Kind.SETTLE: lambda s: (s.bank, t.Settle((t.Settlement(s.bob_payout, "VIR-1"),))),
    t.Kind.CLOSE_CAMPAIGN: _close,
    t.Kind.WITHDRAW: lambda s: (s.bank, t.Withdraw(NAM, 100_00, "RET-1")),
    t.Kind.EVIDENCE: lambda s: (s.v0, double_prevote(s.v3, s.w.height)),
    t.Kind.ADMIT_ISSUER: lambda s: (s.v0, admit(s.charleroi, s.v0, s.v1, s.v2)),
    t.Kind.CHANGE_VALIDATORS: lambda s: (s.v0, _replace_v3(s)),
    t.Kind.RETURN_PAYOUT: lambda s: (s.bank, t.ReturnPayout(s.bob_payout, "AC04", "RLF1T1")),
    t.Kind.CONSENT_ZONES: lambda s: (s.namur, t.ConsentZones(pk(s.liege), ("NA-1",))),
    t.Kind.SCHEDULE_UPGRADE: lambda s: (s.v0, _upgrade(s)),
}  # fmt: skip
KINDS = [pytest.param(kind, id=kind.name.lower()) for kind in t.Kind]


def test_every_kind_has_a_good_case() -> None:
    assert set(GOOD) == set(t.Kind)


@pytest.mark.parametrize("kind", KINDS)
def test_good_case_applies(scene: Scene, kind: t.Kind) -> None:
    who, payload = GOOD[kind](scene)
    assert kind == payload.KIND
    root = scene.w.root()
    applied(scene, who, payload)
    assert scene.w.root() != root


@pytest.mark.parametrize("kind", KINDS)
def test_skipped_sequence(scene: Scene, kind: t.Kind) -> None:
    who, payload = GOOD[kind](scene)
    seq = scene.w.next_sequence(who, payload.KIND)
    assert_rejected(scene.w, scene.tx(who, payload, seq + 1), Result.BAD_SEQUENCE)


@pytest.mark.parametrize("kind", KINDS)
def test_replayed_transaction(scene: Scene, kind: t.Kind) -> None:
    who, payload = GOOD[kind](scene)
    data = scene.tx(who, payload)
    scene.apply_ok(data)
    assert_rejected(scene.w, data, Result.BAD_SEQUENCE)


@pytest.mark.parametrize("kind", KINDS)
def test_earlier_sequence_with_new_content(scene: Scene, kind: t.Kind) -> None:
    """A sequence already used, on a transaction never seen: still BAD_SEQUENCE."""
    who, payload = GOOD[kind](scene)
    scene.apply_ok(scene.tx(who, payload))
    _, payload2 = GOOD[kind](scene)  # the same shape, different sequence number below
    assert_rejected(
        scene.w, scene.tx(who, payload2, scene.w.next_sequence(who, kind) - 1), Result.BAD_SEQUENCE
    )


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_signature_bit(scene: Scene, kind: t.Kind) -> None:
    who, payload = GOOD[kind](scene)
    tx = t.Tx(CHAIN_ID, who.public_key, scene.w.next_sequence(who, kind), payload)
    body = tx.body()
    sig = bytearray(who.sign(Domain.TX, CHAIN_ID, body))
    sig[5] ^= 0x01
    wire = t.SignedTx(tx, body, bytes(sig), digest(body)).encode()
    assert_rejected(scene.w, wire, Result.BAD_SIGNATURE)


@pytest.mark.parametrize("kind", KINDS)
def test_signed_by_another_key(scene: Scene, kind: t.Kind) -> None:
    who, payload = GOOD[kind](scene)
    tx = t.Tx(CHAIN_ID, who.public_key, scene.w.next_sequence(who, kind), payload)
    body = tx.body()
    sig = scene.stranger.sign(Domain.TX, CHAIN_ID, body)
    assert_rejected(scene.w, t.SignedTx(tx, body, sig, digest(body)).encode(), Result.BAD_SIGNATURE)


# Which roles may never send which kind (execute.sequence_of refuses them).
_ISSUER_KINDS = (
    t.Kind.REGISTER_MERCHANT, t.Kind.SUSPEND_MERCHANT, t.Kind.CREATE_CAMPAIGN,
    t.Kind.ALLOCATE, t.Kind.REISSUE, t.Kind.CLOSE_CAMPAIGN, t.Kind.CONSENT_ZONES,
)  # fmt: skip
_WRONG_ROLES: dict[t.Kind, tuple[str, ...]] = {
    **{k: ("bank", "bakery", "alice", "auditor", "stranger") for k in _ISSUER_KINDS},
    t.Kind.UPDATE_MERCHANT: ("bank", "alice", "auditor", "stranger"),
    **{
        k: ("namur", "bakery", "alice", "auditor", "stranger")
        for k in (t.Kind.FUND, t.Kind.SETTLE, t.Kind.WITHDRAW, t.Kind.RETURN_PAYOUT)
    },
    **{
        k: ("namur", "bank", "alice", "auditor", "stranger")
        for k in (t.Kind.PAY_AUTHORIZED, t.Kind.REFUND, t.Kind.TRANSFER, t.Kind.REDEEM)
    },
    **{k: ("namur", "bank", "bakery", "auditor") for k in (t.Kind.PAY, t.Kind.SWEEP)},
    # Validator kinds: any key may hold a node sequence, only a validator in force may send.
    **{
        k: ("namur", "bank", "bakery", "alice", "auditor", "stranger", "v4")
        for k in (
            t.Kind.EVIDENCE,
            t.Kind.ADMIT_ISSUER,
            t.Kind.CHANGE_VALIDATORS,
            t.Kind.SCHEDULE_UPGRADE,
        )
    },
}
WRONG_ROLE_CASES = [
    pytest.param(kind, role, id=f"{kind.name.lower()}-by-{role}")
    for kind in t.Kind
    for role in _WRONG_ROLES[kind]
]


@pytest.mark.parametrize(("kind", "role"), WRONG_ROLE_CASES)
def test_wrong_role_sender(scene: Scene, kind: t.Kind, role: str) -> None:
    _, payload = GOOD[kind](scene)
    who: Signer = getattr(scene, role)
    assert_rejected(scene.w, scene.tx(who, payload), Result.NOT_AUTHORIZED)


# --- rejections by the rules, kind by kind ---------------------------------------------


def _reg(
    s: Scene, m: Signer, name: str = "Nouveau", cat: str = "47.11", zone: str = "NA-2"
) -> bytes:
    return s.tx(s.namur, register(m, name, cat, zone, True))


REGISTER_CASES = [
    case("existing-merchant", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.bakery)),
    case("other-issuers-merchant", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.liege_shop)),
    case("issuer-key", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.liege)),
    case("own-key", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.namur)),
    case("bank-key", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.bank)),
    case("auditor-key", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.auditor)),
    case("holder-key", Result.ACCOUNT_EXISTS, lambda s: _reg(s, s.alice)),
    case("empty-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="")),
    case("blank-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="   ")),
    case("control-char-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="a\nb")),
    case("bidi-override-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="a\u202eb")),
    case("zero-width-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="a\u200bb")),
    case("not-nfc-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name="Cafe\u0301")),
    case("padded-name", Result.INVALID_NAME, lambda s: _reg(s, s.stranger, name=" Caf\u00e9")),
    case("line-separator-name", Result.INVALID_NAME, lambda s: _reg(
        s, s.stranger, name="a\u2028b")),
    case("too-many-bytes-name", Result.INVALID_NAME, lambda s: _reg(
        s, s.stranger, name="\U0001f355" * 61)),
    case("empty-category", Result.INVALID_FIELD, lambda s: _reg(s, s.stranger, cat="")),
    case("spaced-category", Result.INVALID_FIELD, lambda s: _reg(s, s.stranger, cat="47 11")),
    case("dash-first-category", Result.INVALID_FIELD, lambda s: _reg(s, s.stranger, cat="-47")),
    case("zone-of-liege", Result.INVALID_ZONE, lambda s: _reg(s, s.stranger, zone="LG-1")),
    case("unknown-zone", Result.INVALID_ZONE, lambda s: _reg(s, s.stranger, zone="NA-9")),
    case("liege-in-namur-zone", Result.INVALID_ZONE, lambda s: s.tx(
        s.liege, register(s.stranger, "X", "47.11", "NA-1", True))),
]  # fmt: skip

UPDATE_CASES = [
    case("unknown-merchant", Result.UNKNOWN_MERCHANT, lambda s: s.tx(
        s.namur, replace(s.update(s.bakery), merchant=pk(s.stranger)))),
    case("holder-key", Result.UNKNOWN_MERCHANT, lambda s: s.tx(
        s.namur, replace(s.update(s.bakery), merchant=pk(s.alice)))),
    case("other-issuer", Result.NOT_AUTHORIZED, lambda s: s.tx(s.liege, s.update(s.bakery))),
    case("other-merchant", Result.NOT_AUTHORIZED, lambda s: s.tx(s.grocer, s.update(s.bakery))),
    case("self-renames", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.bakery, s.update(s.bakery, name="Autre"))),
    case("self-recategorises", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.bakery, s.update(s.bakery, category="47.11"))),
    case("self-moves", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.bakery, s.update(s.bakery, zone="NA-2"))),
    case("blank-name", Result.INVALID_NAME, lambda s: s.tx(s.namur, s.update(s.bakery, name=" "))),
    case("bad-category", Result.INVALID_FIELD, lambda s: s.tx(
        s.namur, s.update(s.bakery, category="10 71"))),
    case("zone-of-liege", Result.INVALID_ZONE, lambda s: s.tx(
        s.namur, s.update(s.bakery, zone="LG-1"))),
]  # fmt: skip

SUSPEND_CASES = [
    case("unknown-merchant", Result.UNKNOWN_MERCHANT, lambda s: s.tx(
        s.namur, t.SuspendMerchant(pk(s.stranger), True))),
    case("holder-key", Result.UNKNOWN_MERCHANT, lambda s: s.tx(
        s.namur, t.SuspendMerchant(pk(s.alice), True))),
    case("other-issuer", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.liege, t.SuspendMerchant(pk(s.bakery), True))),
    case("other-issuer-reinstates", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.liege, t.SuspendMerchant(pk(s.closed_shop), False))),
]  # fmt: skip


def _camp(s: Scene, code: str = "NEW", **kw: object) -> bytes:
    return s.tx(s.namur, campaign(code, **kw))  # type: ignore[arg-type]


def _camp_after(s: Scene, *steps: tuple[Signer, t.Payload], **kw: object) -> bytes:
    for who, payload in steps:
        if isinstance(payload, t.ConsentZones) and payload.region == pk(s.charleroi):
            s.do(s.v0, admit(s.charleroi, s.v0, s.v1, s.v2))
        s.do(who, payload)
    return _camp(s, **kw)


def _camp_name(s: Scene, name: str) -> bytes:
    return s.tx(s.namur, replace(campaign("NEW"), name=name))


CREATE_CASES = [
    case("empty-code", Result.INVALID_FIELD, lambda s: _camp(s, "")),
    case("spaced-code", Result.INVALID_FIELD, lambda s: _camp(s, "NAM 2")),
    case("dot-first-code", Result.INVALID_FIELD, lambda s: _camp(s, ".NAM")),
    case("accented-code", Result.INVALID_FIELD, lambda s: _camp(s, "LIÈGE")),
    case("blank-name", Result.INVALID_NAME, lambda s: _camp_name(s, "  ")),
    case("bidi-isolate-name", Result.INVALID_NAME, lambda s: _camp_name(s, "Relance \u2067x")),
    case("existing-code", Result.CAMPAIGN_EXISTS, lambda s: _camp(s, NAM)),
    case("code-of-liege", Result.CAMPAIGN_EXISTS, lambda s: _camp(s, LG)),
    case("duplicate-zone", Result.DUPLICATE_ENTRY, lambda s: _camp(s, zones=("NA-1", "NA-1"))),
    case("duplicate-category", Result.DUPLICATE_ENTRY, lambda s: _camp(
        s, categories=("47", "10", "47"))),
    case("zone-of-liege", Result.ZONE_NOT_CONSENTED, lambda s: _camp(s, zones=("NA-1", "LG-1"))),
    case("zone-consented-to-another", Result.ZONE_NOT_CONSENTED, lambda s: _camp_after(
        s, (s.liege, t.ConsentZones(pk(s.charleroi), ("LG-1",))), zones=("LG-1",))),
    case("zone-consent-revoked", Result.ZONE_NOT_CONSENTED, lambda s: _camp_after(
        s, (s.liege, t.ConsentZones(pk(s.namur), ("LG-1",))),
        (s.liege, t.ConsentZones(pk(s.namur), ())), zones=("LG-1",))),
    case("unknown-zone", Result.INVALID_ZONE, lambda s: _camp(s, zones=("NA-3",))),
    case("65-categories", Result.LIMIT_EXCEEDED, lambda s: _camp(
        s, categories=tuple(f"C{n}" for n in range(limits.CATEGORIES_PER_CAMPAIGN_MAX + 1)))),
    case("bad-category", Result.INVALID_FIELD, lambda s: _camp(s, categories=("47", "4 7"))),
    case("empty-category", Result.INVALID_FIELD, lambda s: _camp(s, categories=("",))),
    case("empty-window", Result.INVALID_FIELD, lambda s: _camp(
        s, valid_from_ms=NOW_MS, valid_until_ms=NOW_MS)),
    case("reversed-window", Result.INVALID_FIELD, lambda s: _camp(
        s, valid_from_ms=NOW_MS, valid_until_ms=NOW_MS - 1)),
    case("zero-max", Result.BAD_AMOUNT, lambda s: _camp(s, max_cents=0)),
    case("negative-max", Result.BAD_AMOUNT, lambda s: _camp(s, max_cents=-1)),
    case("max-over-cap", Result.BAD_AMOUNT, lambda s: _camp(s, max_cents=AMOUNT_MAX + 1)),
]  # fmt: skip


def _fund(s: Scene, cents: int = 100_00, ref: str = "DEP-NEW", code: str = NAM) -> bytes:
    return s.tx(s.bank, t.Fund(code, cents, ref))


def _fund_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _fund(s)


def _fund_after_withdraw(s: Scene) -> bytes:
    s.do(s.bank, t.Withdraw(NAM, 1_00, "RET-7"))
    return _fund(s, ref="RET-7")


def _fund_over_escrow_cap(s: Scene) -> bytes:
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    s.w.seed(r.issuer_key(pk(s.namur)),
             replace(issuer, escrow_cents=limits.BALANCE_MAX_CENTS - 1_00))  # fmt: skip
    return _fund(s, 1_01)


FUND_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _fund(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _fund(s, -100)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _fund(s, AMOUNT_MAX + 1)),
    case("empty-reference", Result.INVALID_FIELD, lambda s: _fund(s, ref="")),
    case("blank-reference", Result.INVALID_FIELD, lambda s: _fund(s, ref="  ")),
    case("reference-reused", Result.DUPLICATE_REFERENCE, lambda s: _fund(s, ref="DEP-NAM-1")),
    case("reference-reused-other-campaign", Result.DUPLICATE_REFERENCE, lambda s: _fund(
        s, ref="DEP-NAM-1", code=NA1)),
    case("reference-of-liege", Result.DUPLICATE_REFERENCE, lambda s: _fund(s, ref="DEP-LG-1")),
    case("reference-of-a-withdraw", Result.DUPLICATE_REFERENCE, _fund_after_withdraw),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _fund(s, code="NOPE")),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _fund_closed),
    case("escrow-over-balance-cap", Result.LIMIT_EXCEEDED, _fund_over_escrow_cap),
]  # fmt: skip


def _alloc(s: Scene, *rows: tuple[Signer | bytes, int, str], code: str = NAM) -> bytes:
    return s.tx(s.namur, allocate(code, *rows))


def _alloc_at(s: Scene, time_ms: int) -> bytes:
    s.w.time_ms = time_ms
    return _alloc(s, (s.stranger, 1_00, "NA-1"))


def _alloc_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _alloc(s, (s.stranger, 1_00, "NA-1"))


def _alloc_full(s: Scene) -> bytes:
    return _alloc(s, (s.full_holder(), 1_00, "NA-1"))


ALLOCATE_CASES = [
    case("liege-allocates-namur", Result.NOT_AUTHORIZED, lambda s: s.tx(
        s.liege, allocate(NAM, (s.stranger, 1_00, "LG-1")))),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _alloc(
        s, (s.stranger, 1_00, "NA-1"), code="NOPE")),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _alloc_closed),
    case("at-valid-until", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _alloc_at(s, NAM_UNTIL_MS)),
    case("after-valid-until", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _alloc_at(
        s, NAM_UNTIL_MS + 1)),
    case("empty-batch", Result.INVALID_FIELD, _alloc),
    case("zero", Result.BAD_AMOUNT, lambda s: _alloc(
        s, (s.stranger, 1_00, "NA-1"), (s.app, 0, "NA-1"))),
    case("negative", Result.BAD_AMOUNT, lambda s: _alloc(s, (s.stranger, -1_00, "NA-1"))),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _alloc(s, (s.stranger, AMOUNT_MAX + 1, "NA-1"))),
    case("same-holder-twice", Result.DUPLICATE_ENTRY, lambda s: _alloc(
        s, (s.stranger, 1_00, "NA-1"), (s.stranger, 1_00, "NA-2"))),
    case("holder-zone-of-liege", Result.INVALID_ZONE, lambda s: _alloc(
        s, (s.stranger, 1_00, "LG-1"))),
    case("budget-plus-one-cent", Result.INSUFFICIENT_BUDGET, lambda s: _alloc(
        s, (s.stranger, 45_00, "NA-1"), (s.app, 45_01, "NA-1"), code=LATER)),
    case("to-merchant", Result.NOT_A_HOLDER, lambda s: _alloc(s, (s.bakery, 1_00, "NA-1"))),
    case("to-issuer", Result.NOT_A_HOLDER, lambda s: _alloc(s, (s.liege, 1_00, "NA-1"))),
    case("to-bank", Result.NOT_A_HOLDER, lambda s: _alloc(s, (s.bank, 1_00, "NA-1"))),
    case("to-auditor", Result.NOT_A_HOLDER, lambda s: _alloc(s, (s.auditor, 1_00, "NA-1"))),
    case("cap-plus-one-cent", Result.HOLDER_CAP_EXCEEDED, lambda s: _alloc(
        s, (s.alice, 10_01, "NA-1"))),
    case("new-holder-over-cap", Result.HOLDER_CAP_EXCEEDED, lambda s: _alloc(
        s, (s.stranger, 1_00, "NA-1"), (s.app, NAM_MAX + 1, "NA-1"))),
    case("holder-with-64-campaigns", Result.LIMIT_EXCEEDED, _alloc_full),
]  # fmt: skip


def _pay(s: Scene, cents: int = 5_00, to: Signer | None = None, code: str = NAM,
         by: Signer | None = None) -> bytes:  # fmt: skip
    return s.tx(by or s.alice, t.Pay(code, pk(to or s.bakery), cents, ""))


def _pay_at(s: Scene, time_ms: int, code: str = NAM) -> bytes:
    s.w.time_ms = time_ms
    return _pay(s, code=code)


def _pay_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _pay(s)


PAY_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _pay(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _pay(s, -5_00)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _pay(s, AMOUNT_MAX + 1)),
    case("holder-without-record", Result.INSUFFICIENT_FUNDS, lambda s: _pay(s, by=s.stranger)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _pay(s, code="NOPE")),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _pay_closed),
    case("not-yet-open", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pay(s, code=LATER)),
    case("one-ms-before-open", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pay_at(
        s, LATER_FROM_MS - 1, LATER)),
    case("at-valid-until", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pay_at(s, NAM_UNTIL_MS)),
    case("expired", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pay_at(s, NAM_UNTIL_MS + 86_400_000)),
    case("unknown-merchant", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, to=s.stranger)),
    case("holder-pays-holder", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, to=s.bob)),
    case("holder-pays-issuer", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, to=s.namur)),
    case("holder-pays-bank", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, to=s.bank)),
    case("holder-pays-self", Result.UNKNOWN_MERCHANT, lambda s: _pay(s, to=s.alice)),
    case("suspended-merchant", Result.MERCHANT_SUSPENDED, lambda s: _pay(s, to=s.closed_shop)),
    case("merchant-outside-zones", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(
        s, to=s.grocer, code=NA1)),
    case("merchant-outside-categories", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(
        s, to=s.bar)),
    case("wholesaler-outside-categories", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(
        s, to=s.supplier)),
    case("merchant-of-liege", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(s, to=s.liege_shop)),
    case("liege-holder-at-namur-merchant", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pay(
        s, code=LG, by=s.dora)),
    case("overspend-by-one-cent", Result.INSUFFICIENT_FUNDS, lambda s: _pay(s, 40_01)),
    case("no-balance-in-campaign", Result.INSUFFICIENT_FUNDS, lambda s: _pay(
        s, code=NA1, by=s.bob)),
    case("balance-of-another-campaign", Result.INSUFFICIENT_FUNDS, lambda s: _pay(
        s, 40_01, code=NA1)),
]  # fmt: skip


def _pa(s: Scene, auth: t.Authorization, cents: int = 12_00, by: Signer | None = None,
        signed_by: Signer | None = None, chain_id: str = CHAIN_ID) -> bytes:  # fmt: skip
    return s.tx(by or s.bakery, s.pay_authorized(auth, cents, signed_by, chain_id))


def _pa_used(s: Scene, merchant: Signer | None, second_by: Signer) -> bytes:
    auth = s.authorization(merchant=merchant)
    s.do(s.bakery, s.pay_authorized(auth, 5_00))
    return _pa(s, auth, 5_00, by=second_by)


def _pa_tx_domain(s: Scene) -> bytes:
    auth = s.authorization()
    sig = s.alice.sign(Domain.TX, CHAIN_ID, auth.encode())
    return s.tx(s.bakery, t.PayAuthorized(auth, sig, 12_00, ""))


def _pa_tampered(s: Scene) -> bytes:
    auth = s.authorization(max_cents=10_00)
    signed = s.pay_authorized(auth, 12_00)
    return s.tx(s.bakery, replace(signed, authorization=replace(auth, max_cents=20_00)))


def _pa_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _pa(s, s.authorization(expires_ms=NAM_UNTIL_MS + 1))


def _pa_expired_campaign(s: Scene) -> bytes:
    s.w.time_ms = NAM_UNTIL_MS
    return _pa(s, s.authorization(expires_ms=NAM_UNTIL_MS + 1))


PAY_AUTHORIZED_CASES = [
    case("bound-to-another-merchant", Result.BAD_AUTHORIZATION, lambda s: _pa(
        s, s.authorization(merchant=s.grocer))),
    case("expired-by-one-ms", Result.AUTHORIZATION_EXPIRED, lambda s: _pa(
        s, s.authorization(expires_ms=NOW_MS - 1))),
    case("above-max-by-one-cent", Result.AUTHORIZATION_EXCEEDED, lambda s: _pa(
        s, s.authorization(max_cents=12_00), 12_01)),
    case("used-twice-same-merchant", Result.AUTHORIZATION_USED, lambda s: _pa_used(
        s, s.bakery, s.bakery)),
    case("used-twice-any-merchant", Result.AUTHORIZATION_USED, lambda s: _pa_used(
        s, None, s.grocer)),
    case("signed-by-another-holder", Result.BAD_AUTHORIZATION, lambda s: _pa(
        s, s.authorization(), signed_by=s.bob)),
    case("signed-for-another-chain", Result.BAD_AUTHORIZATION, lambda s: _pa(
        s, s.authorization(), chain_id="relance-other")),
    case("signed-in-tx-domain", Result.BAD_AUTHORIZATION, _pa_tx_domain),
    case("tampered-max", Result.BAD_AUTHORIZATION, _pa_tampered),
    case("zero", Result.BAD_AMOUNT, lambda s: _pa(s, s.authorization(), 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _pa(s, s.authorization(), -1)),
    case("holder-is-a-merchant", Result.NOT_AUTHORIZED, lambda s: _pa(
        s, s.authorization(holder=s.grocer), signed_by=s.grocer)),
    case("holder-without-record", Result.INSUFFICIENT_FUNDS, lambda s: _pa(
        s, s.authorization(holder=s.stranger), signed_by=s.stranger)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _pa(
        s, s.authorization(code="NOPE"))),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _pa_closed),
    case("campaign-not-yet-open", Result.CAMPAIGN_NOT_ACTIVE, lambda s: _pa(
        s, s.authorization(code=LATER), 1_00)),
    case("campaign-expired", Result.CAMPAIGN_NOT_ACTIVE, _pa_expired_campaign),
    case("merchant-outside-categories", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pa(
        s, s.authorization(), by=s.bar)),
    case("merchant-outside-zones", Result.MERCHANT_NOT_ELIGIBLE, lambda s: _pa(
        s, s.authorization(code=NA1), by=s.grocer)),
    case("suspended-merchant", Result.MERCHANT_SUSPENDED, lambda s: _pa(
        s, s.authorization(), by=s.closed_shop)),
    case("overspend-by-one-cent", Result.INSUFFICIENT_FUNDS, lambda s: _pa(
        s, s.authorization(max_cents=50_00), 40_01)),
]  # fmt: skip


def _sweep(s: Scene, to: Signer | None = None, code: str = NAM, by: Signer | None = None) -> bytes:
    return s.tx(by or s.voucher, t.Sweep(code, pk(to or s.app)))


def _sweep_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _sweep(s)


def _sweep_twice(s: Scene) -> bytes:
    s.do(s.voucher, t.Sweep(NAM, pk(s.app)))
    return _sweep(s, to=s.stranger)


SWEEP_CASES = [
    case("to-itself", Result.SELF_TRANSFER, lambda s: _sweep(s, to=s.voucher)),
    case("to-merchant", Result.NOT_A_HOLDER, lambda s: _sweep(s, to=s.bakery)),
    case("to-issuer", Result.NOT_A_HOLDER, lambda s: _sweep(s, to=s.namur)),
    case("to-bank", Result.NOT_A_HOLDER, lambda s: _sweep(s, to=s.bank)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _sweep(s, code="NOPE")),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _sweep_closed),
    case("key-without-record", Result.NOTHING_TO_MOVE, lambda s: _sweep(s, by=s.stranger)),
    case("no-balance-in-campaign", Result.NOTHING_TO_MOVE, lambda s: _sweep(s, code=NA1)),
    case("swept-twice", Result.NOTHING_TO_MOVE, _sweep_twice),
    case("target-over-holder-cap", Result.HOLDER_CAP_EXCEEDED, lambda s: _sweep(s, to=s.alice)),
    case("target-with-64-campaigns", Result.LIMIT_EXCEEDED, lambda s: _sweep(
        s, to=s.full_holder())),
]  # fmt: skip


def _refund(s: Scene, cents: int = 4_00, holder: Signer | None = None, code: str = NAM,
            by: Signer | None = None) -> bytes:  # fmt: skip
    return s.tx(by or s.bakery, t.Refund(pk(holder or s.alice), code, cents, "retour"))


def _refund_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _refund(s)


def _refund_net(s: Scene) -> bytes:
    s.do(s.bakery, t.Refund(pk(s.alice), NAM, 6_00, "1"))
    return _refund(s, 4_01)


def _refund_after_transfer(s: Scene) -> bytes:
    s.do(s.bakery, t.Transfer(pk(s.supplier), pk(s.namur), 7_00, ""))
    return _refund(s, 3_01)


REFUND_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _refund(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _refund(s, -1)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _refund(s, AMOUNT_MAX + 1)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _refund(s, code="NOPE")),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _refund_closed),
    case("more-than-paid-by-one-cent", Result.REFUND_EXCEEDS_PAYMENTS, lambda s: _refund(
        s, 10_01)),
    case("holder-who-never-paid", Result.REFUND_EXCEEDS_PAYMENTS, lambda s: _refund(
        s, 1, holder=s.bob)),
    case("other-campaign", Result.REFUND_EXCEEDS_PAYMENTS, lambda s: _refund(s, 1, code=NA1)),
    case("other-merchant", Result.REFUND_EXCEEDS_PAYMENTS, lambda s: _refund(
        s, 1, by=s.grocer)),
    case("net-of-earlier-refund", Result.REFUND_EXCEEDS_PAYMENTS, _refund_net),
    case("units-transferred-away", Result.INSUFFICIENT_FUNDS, _refund_after_transfer),
    case("auto-redeem-merchant-holds-no-units", Result.INSUFFICIENT_FUNDS, lambda s: _refund(
        s, 5_00, holder=s.bob, by=s.grocer)),
]  # fmt: skip


def _reissue(s: Scene, lost: Signer | None = None, new: Signer | None = None, code: str = NAM,
             by: Signer | None = None) -> bytes:  # fmt: skip
    return s.tx(by or s.namur, t.Reissue(code, pk(lost or s.voucher), pk(new or s.app)))


def _reissue_closed(s: Scene) -> bytes:
    s.close(NAM)
    return _reissue(s)


REISSUE_CASES = [
    case("liege-reissues-namur", Result.NOT_AUTHORIZED, lambda s: _reissue(s, by=s.liege)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _reissue(s, code="NOPE")),
    case("same-key", Result.SELF_TRANSFER, lambda s: _reissue(s, new=s.voucher)),
    case("to-merchant", Result.NOT_A_HOLDER, lambda s: _reissue(s, new=s.bakery)),
    case("to-auditor", Result.NOT_A_HOLDER, lambda s: _reissue(s, new=s.auditor)),
    case("closed-campaign", Result.CAMPAIGN_CLOSED, _reissue_closed),
    case("lost-key-unknown", Result.NOTHING_TO_MOVE, lambda s: _reissue(s, lost=s.stranger)),
    case("lost-key-empty-in-campaign", Result.NOTHING_TO_MOVE, lambda s: _reissue(
        s, lost=s.bob, code=NA1)),
    case("merchant-as-lost-key", Result.NOTHING_TO_MOVE, lambda s: _reissue(s, lost=s.bakery)),
    case("replacement-over-cap", Result.HOLDER_CAP_EXCEEDED, lambda s: _reissue(s, new=s.alice)),
    case("replacement-with-64-campaigns", Result.LIMIT_EXCEEDED, lambda s: _reissue(
        s, new=s.full_holder())),
]  # fmt: skip


def _transfer(s: Scene, cents: int = 4_00, to: Signer | None = None,
              issuer: Signer | None = None, by: Signer | None = None) -> bytes:  # fmt: skip
    payload = t.Transfer(pk(to or s.supplier), pk(issuer or s.namur), cents, "facture")
    return s.tx(by or s.bakery, payload)


def _transfer_to_rich(s: Scene) -> bytes:
    supplier = s.w.merchant(s.supplier)
    assert supplier is not None
    rich = supplier.with_balance(pk(s.namur), limits.BALANCE_MAX_CENTS - 5_00)
    s.w.seed(r.merchant_key(pk(s.supplier)), rich)
    return _transfer(s, 5_01)


def _transfer_to_many_rows(s: Scene) -> bytes:
    supplier = s.w.merchant(s.supplier)
    assert supplier is not None
    rows = tuple(
        sorted((digest(bytes([n])), 1) for n in range(limits.BALANCE_ROWS_PER_ACCOUNT_MAX))
    )
    s.w.seed(r.merchant_key(pk(s.supplier)), replace(supplier, balances=rows))  # type: ignore[arg-type]
    return _transfer(s, 1_00)


TRANSFER_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _transfer(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _transfer(s, -1)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _transfer(s, AMOUNT_MAX + 1)),
    case("to-itself", Result.SELF_TRANSFER, lambda s: _transfer(s, to=s.bakery)),
    case("to-holder", Result.UNKNOWN_MERCHANT, lambda s: _transfer(s, to=s.alice)),
    case("to-unknown-key", Result.UNKNOWN_MERCHANT, lambda s: _transfer(s, to=s.stranger)),
    case("to-issuer", Result.UNKNOWN_MERCHANT, lambda s: _transfer(s, to=s.namur)),
    case("to-suspended-merchant", Result.MERCHANT_SUSPENDED, lambda s: _transfer(
        s, to=s.closed_shop)),
    case("one-cent-too-many", Result.INSUFFICIENT_FUNDS, lambda s: _transfer(s, 10_01)),
    case("units-of-another-issuer", Result.INSUFFICIENT_FUNDS, lambda s: _transfer(
        s, 1, issuer=s.liege)),
    case("auto-redeem-merchant-holds-no-units", Result.INSUFFICIENT_FUNDS, lambda s: _transfer(
        s, 1, by=s.grocer)),
    case("recipient-over-balance-cap", Result.LIMIT_EXCEEDED, _transfer_to_rich),
    case("recipient-with-64-issuer-rows", Result.LIMIT_EXCEEDED, _transfer_to_many_rows),
]  # fmt: skip


def _redeem(s: Scene, cents: int = 10_00, issuer: Signer | None = None,
            by: Signer | None = None) -> bytes:  # fmt: skip
    return s.tx(by or s.bakery, t.Redeem(pk(issuer or s.namur), cents))


REDEEM_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _redeem(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _redeem(s, -1)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _redeem(s, AMOUNT_MAX + 1)),
    case("one-cent-too-many", Result.INSUFFICIENT_FUNDS, lambda s: _redeem(s, 10_01)),
    case("units-of-another-issuer", Result.INSUFFICIENT_FUNDS, lambda s: _redeem(
        s, 1, issuer=s.liege)),
    case("auto-redeem-merchant-holds-no-units", Result.INSUFFICIENT_FUNDS, lambda s: _redeem(
        s, 1, by=s.grocer)),
]  # fmt: skip


def _settle(s: Scene, *rows: tuple[bytes, str]) -> bytes:
    return s.tx(s.bank, t.Settle(tuple(t.Settlement(Digest(p), ref) for p, ref in rows)))


def _settle_twice(s: Scene) -> bytes:
    s.do(s.bank, t.Settle((t.Settlement(s.bob_payout, "VIR-1"),)))
    return _settle(s, (s.bob_payout, "VIR-2"))


def _settle_batch_with_settled(s: Scene) -> bytes:
    s.do(s.bank, t.Settle((t.Settlement(s.bob_payout, "VIR-1"),)))
    fresh = s.do(s.bakery, t.Redeem(pk(s.namur), 3_00))
    return _settle(s, (fresh, "VIR-2"), (s.bob_payout, "VIR-3"))


def _settle_batch_with_unknown(s: Scene) -> bytes:
    return _settle(s, (s.bob_payout, "VIR-1"), (digest(b"nothing"), "VIR-2"))


def _settle_a_pay_without_payout(s: Scene) -> bytes:
    pay_id = s.do(s.alice, t.Pay(NAM, pk(s.bakery), 1_00, ""))  # bakery: auto-redeem off
    return _settle(s, (pay_id, "VIR-1"))


def _settle_after_return(s: Scene, payout: bytes) -> bytes:
    s.do(s.bank, t.ReturnPayout(Digest(payout), "AC04", "RLF1T1"))
    return _settle(s, (payout, "VIR-1"))


def _settle_batch_with_returned(s: Scene) -> bytes:
    fresh = s.do(s.bakery, t.Redeem(pk(s.namur), 3_00))
    s.do(s.bank, t.ReturnPayout(s.bob_payout, "AC01", "RLF1T1"))
    return _settle(s, (fresh, "VIR-2"), (s.bob_payout, "VIR-3"))


SETTLE_CASES = [
    case("empty", Result.INVALID_FIELD, _settle),
    case("empty-reference", Result.INVALID_FIELD, lambda s: _settle(s, (s.bob_payout, ""))),
    case("blank-reference", Result.INVALID_FIELD, lambda s: _settle(s, (s.bob_payout, " "))),
    case("same-payout-twice-in-one", Result.DUPLICATE_ENTRY, lambda s: _settle(
        s, (s.bob_payout, "VIR-1"), (s.bob_payout, "VIR-2"))),
    case("unknown-payout", Result.UNKNOWN_PAYOUT, lambda s: _settle(s, (digest(b"x"), "VIR-1"))),
    case("one-unknown-in-batch", Result.UNKNOWN_PAYOUT, _settle_batch_with_unknown),
    case("pay-without-auto-redeem", Result.UNKNOWN_PAYOUT, _settle_a_pay_without_payout),
    case("settled-twice", Result.PAYOUT_ALREADY_SETTLED, _settle_twice),
    case("one-settled-in-batch", Result.PAYOUT_ALREADY_SETTLED, _settle_batch_with_settled),
    case("returned", Result.PAYOUT_RETURNED, lambda s: _settle_after_return(s, s.bob_payout)),
    case("one-returned-in-batch", Result.PAYOUT_RETURNED, _settle_batch_with_returned),
]  # fmt: skip


def _return(s: Scene, payout: bytes | None = None, reason: str = "AC04",
            ref: str = "RLF1T1") -> bytes:  # fmt: skip
    return s.tx(s.bank, t.ReturnPayout(Digest(payout or s.bob_payout), reason, ref))


def _return_settled(s: Scene) -> bytes:
    s.do(s.bank, t.Settle((t.Settlement(s.bob_payout, "VIR-1"),)))
    return _return(s)


def _return_twice(s: Scene) -> bytes:
    s.do(s.bank, t.ReturnPayout(s.bob_payout, "AC04", "RLF1T1"))
    return _return(s, reason="AC01", ref="RLF2T1")


def _return_to_a_full_merchant(s: Scene) -> bytes:
    """The grocer already holds ``BALANCE_ROWS_PER_ACCOUNT_MAX`` issuers' units (seeded)."""
    grocer = s.w.merchant(s.grocer)
    assert grocer is not None
    rows = tuple(
        sorted((digest(bytes([n])), 1) for n in range(limits.BALANCE_ROWS_PER_ACCOUNT_MAX))
    )
    s.w.seed(r.merchant_key(pk(s.grocer)), replace(grocer, balances=rows))  # type: ignore[arg-type]
    return _return(s)


def _return_over_balance_max(s: Scene) -> bytes:
    """The grocer's Namur balance is one payout short of ``BALANCE_MAX_CENTS`` (seeded)."""
    grocer = s.w.merchant(s.grocer)
    assert grocer is not None
    rich = grocer.with_balance(pk(s.namur), limits.BALANCE_MAX_CENTS - 4_99)
    s.w.seed(r.merchant_key(pk(s.grocer)), rich)
    return _return(s)  # bob's payout is 5.00: one cent over the cap


RETURN_CASES = [
    case("empty-reason", Result.INVALID_FIELD, lambda s: _return(s, reason="")),
    case("blank-reason", Result.INVALID_FIELD, lambda s: _return(s, reason="  ")),
    case("spaced-reason", Result.INVALID_FIELD, lambda s: _return(s, reason="closed account")),
    case("empty-reference", Result.INVALID_FIELD, lambda s: _return(s, ref="")),
    case("blank-reference", Result.INVALID_FIELD, lambda s: _return(s, ref=" ")),
    case("unknown-payout", Result.UNKNOWN_PAYOUT, lambda s: _return(s, digest(b"x"))),
    case("pay-without-auto-redeem", Result.UNKNOWN_PAYOUT, lambda s: _return(
        s, s.do(s.alice, t.Pay(NAM, pk(s.bakery), 1_00, "")))),
    case("settled", Result.PAYOUT_ALREADY_SETTLED, _return_settled),
    case("returned-twice", Result.PAYOUT_RETURNED, _return_twice),
    case("merchant-rows-full", Result.LIMIT_EXCEEDED, _return_to_a_full_merchant),
    case("merchant-balance-max", Result.LIMIT_EXCEEDED, _return_over_balance_max),
]  # fmt: skip


def _close_at(s: Scene, time_ms: int, code: str = NAM, by: Signer | None = None) -> bytes:
    s.w.time_ms = time_ms
    return s.tx(by or s.namur, t.CloseCampaign(code))


def _close_twice(s: Scene) -> bytes:
    s.close(NAM)
    return s.tx(s.namur, t.CloseCampaign(NAM))


CLOSE_CASES = [
    case("liege-closes-namur", Result.NOT_AUTHORIZED, lambda s: _close_at(
        s, NAM_UNTIL_MS, by=s.liege)),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _close_at(
        s, NAM_UNTIL_MS, "NOPE")),
    case("closed-twice", Result.CAMPAIGN_CLOSED, _close_twice),
    case("while-running", Result.CAMPAIGN_STILL_RUNNING, lambda s: _close_at(s, NOW_MS)),
    case("one-ms-before-end", Result.CAMPAIGN_STILL_RUNNING, lambda s: _close_at(
        s, NAM_UNTIL_MS - 1)),
    case("not-yet-open", Result.CAMPAIGN_STILL_RUNNING, lambda s: _close_at(s, NOW_MS, LATER)),
]  # fmt: skip


def _withdraw(s: Scene, cents: int = 10_00, ref: str = "RET-1", code: str = NAM) -> bytes:
    return s.tx(s.bank, t.Withdraw(code, cents, ref))


def _withdraw_ref_reused(s: Scene) -> bytes:
    s.do(s.bank, t.Withdraw(NAM, 1_00, "RET-1"))
    return _withdraw(s, ref="RET-1")


def _withdraw_after_close(s: Scene) -> bytes:
    s.close(NAM)
    record = s.w.campaign(NAM)
    assert record is not None
    assert record.budget_cents == 900_00 + 85_00
    return _withdraw(s, record.budget_cents + 1)


WITHDRAW_CASES = [
    case("zero", Result.BAD_AMOUNT, lambda s: _withdraw(s, 0)),
    case("negative", Result.BAD_AMOUNT, lambda s: _withdraw(s, -1)),
    case("over-cap", Result.BAD_AMOUNT, lambda s: _withdraw(s, AMOUNT_MAX + 1)),
    case("empty-reference", Result.INVALID_FIELD, lambda s: _withdraw(s, ref="")),
    case("blank-reference", Result.INVALID_FIELD, lambda s: _withdraw(s, ref="\t")),
    case("reference-of-a-fund", Result.DUPLICATE_REFERENCE, lambda s: _withdraw(
        s, ref="DEP-NAM-1")),
    case("reference-reused", Result.DUPLICATE_REFERENCE, _withdraw_ref_reused),
    case("unknown-campaign", Result.UNKNOWN_CAMPAIGN, lambda s: _withdraw(s, code="NOPE")),
    case("budget-plus-one-cent", Result.INSUFFICIENT_BUDGET, lambda s: _withdraw(
        s, 90_01, code=LATER)),
    case("allocated-money", Result.INSUFFICIENT_BUDGET, lambda s: _withdraw(s, 900_01)),
    case("after-close-plus-one-cent", Result.INSUFFICIENT_BUDGET, _withdraw_after_close),
]  # fmt: skip

# --- evidence ----------------------------------------------------------------------------
#
# The scene is at height 4 (four blocks), so the next block is 5. v3 double-signs
# at height 4 by default; v0 reports it.

H = 4  # the scene's last committed height


def _ev(s: Scene, first: Statement, second: Statement, by: Signer | None = None) -> bytes:
    return s.tx(by or s.v0, evidence(first, second))


def _pv(s: Scene, block: bytes | None = BLOCK_A, height: int = H, round: int = 0,
        v: Signer | None = None, **kw: object) -> Statement:  # fmt: skip
    return vote(v or s.v3, Step.PREVOTE, height, round, block, **kw)  # type: ignore[arg-type]


def _pc(s: Scene, block: bytes | None = BLOCK_A, height: int = H, round: int = 0,
        v: Signer | None = None) -> Statement:  # fmt: skip
    return vote(v or s.v3, Step.PRECOMMIT, height, round, block)


def _signed_raw(
    s: Scene, body: bytes, v: Signer | None = None, domain: Domain = Domain.VOTE
) -> Statement:
    """Any bytes as a statement body, with a valid signature (by v3, vote domain by default)."""
    return body, (v or s.v3).sign(domain, CHAIN_ID, body)


def _vote_items(s: Scene, **changes: codec.Value) -> bytes:
    """A prevote body by v3 for block B at height 4 with some items changed (by index name)."""
    items: list[codec.Value] = [1, 6, int(Step.PREVOTE), H, 0, BLOCK_B, pk(s.v3)]
    names = ["version", "record", "kind", "height", "round", "block", "validator"]
    for name, value in changes.items():
        items[names.index(name)] = value
    return codec.encode(items)


def _malformed(s: Scene, **changes: codec.Value) -> bytes:
    return _ev(s, _pv(s), _signed_raw(s, _vote_items(s, **changes)))


def _flip_sig(st: Statement, index: int = 7) -> Statement:
    sig = bytearray(st[1])
    sig[index] ^= 0x01
    return st[0], bytes(sig)


def _ev_too_old(s: Scene, age: int) -> bytes:
    s.w.height = H + age - 1  # the next block is H + age
    return _ev(s, _pv(s), _pv(s, BLOCK_B))


def _ev_known(s: Scene, swapped: bool = False, third: bool = False) -> bytes:
    s.do(s.v0, double_prevote(s.v3, H))
    if third:  # another pair for the same slot is the same offence
        return _ev(s, _pv(s, BLOCK_C), _pv(s, None), by=s.v1)
    if swapped:
        return _ev(s, _pv(s, BLOCK_B), _pv(s, BLOCK_A), by=s.v2)
    return _ev(s, _pv(s), _pv(s, BLOCK_B))


def _ev_signed_elsewhere(s: Scene, st: Statement) -> bytes:
    return _ev(s, _pv(s), st)


EVIDENCE_CASES = [
    case("same-body-twice", Result.EVIDENCE_INVALID, lambda s: _ev(s, _pv(s), _pv(s))),
    case("same-nil-vote-twice", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s, None), _pv(s, None))),
    case("same-proposal-twice", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, proposal(s.v3, H), proposal(s.v3, H))),
    case("proposals-same-block-other-valid-round", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, proposal(s.v3, H, 1), proposal(s.v3, H, 1, valid_round=0))),
    case("different-heights", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s), _pv(s, BLOCK_B, height=H - 1))),
    case("round-over-max", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s, round=ROUND_MAX + 1), _pv(s, BLOCK_B, round=ROUND_MAX + 1))),
    case("different-rounds", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s), _pv(s, BLOCK_B, round=1))),
    case("prevote-and-precommit", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s), _pc(s, BLOCK_B))),
    case("proposal-and-prevote", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, proposal(s.v3, H), _pv(s, BLOCK_B))),
    case("different-signers", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s), _pv(s, BLOCK_B, v=s.v2))),
    case("second-signature-flipped", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s), _flip_sig(_pv(s, BLOCK_B)))),
    case("first-signature-flipped", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _flip_sig(_pv(s), 60), _pv(s, BLOCK_B))),
    case("signatures-swapped", Result.EVIDENCE_INVALID, lambda s: s.tx(s.v0, t.Evidence(
        _pv(s)[0], _pv(s, BLOCK_B)[1], _pv(s, BLOCK_B)[0], _pv(s)[1]))),
    case("signed-by-another-validator", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _signed_raw(s, _pv(s, BLOCK_B)[0], v=s.v2))),
    case("signed-for-another-chain", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _pv(s, BLOCK_B, chain_id="relance-other"))),
    case("vote-signed-in-proposal-domain", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _pv(s, BLOCK_B, domain=Domain.PROPOSAL))),
    case("vote-signed-in-tx-domain", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _pv(s, BLOCK_B, domain=Domain.TX))),
    case("proposal-signed-in-vote-domain", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, proposal(s.v3, H), proposal(s.v3, H, block=BLOCK_B, domain=Domain.VOTE))),
    case("signature-all-zero", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, (_pv(s, BLOCK_B)[0], bytes(64)))),
    case("stranger-double-signs", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s, v=s.stranger), _pv(s, BLOCK_B, v=s.stranger))),
    case("future-validator-double-signs", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s, v=s.v4), _pv(s, BLOCK_B, v=s.v4))),
    case("issuer-double-signs", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _pv(s, v=s.namur), _pv(s, BLOCK_B, v=s.namur))),
    case("body-not-msgpack-list", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _signed_raw(s, b"\x01"))),
    case("body-not-msgpack", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _signed_raw(s, b"\xc1\xc1"))),
    case("body-trailing-byte", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _signed_raw(s, _vote_items(s) + b"\xc0"))),
    case("body-six-items", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(
        s, _signed_raw(s, codec.encode([1, 6, 1, H, 0, BLOCK_B])))),
    case("version-2", Result.EVIDENCE_INVALID, lambda s: _malformed(s, version=2)),
    case("record-7", Result.EVIDENCE_INVALID, lambda s: _malformed(s, record=7)),
    case("vote-kind-0", Result.EVIDENCE_INVALID, lambda s: _malformed(s, kind=0)),
    case("vote-kind-3", Result.EVIDENCE_INVALID, lambda s: _malformed(s, kind=3)),
    case("height-0", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _signed_raw(s, _vote_items(s, height=0, block=BLOCK_A)),
        _signed_raw(s, _vote_items(s, height=0)))),
    case("height-as-str", Result.EVIDENCE_INVALID, lambda s: _malformed(s, height="4")),
    case("round-negative", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, _signed_raw(s, _vote_items(s, round=-1, block=BLOCK_A)),
        _signed_raw(s, _vote_items(s, round=-1)))),
    case("block-hash-31-bytes", Result.EVIDENCE_INVALID, lambda s: _malformed(
        s, block=BLOCK_B[:31])),
    case("block-hash-as-str", Result.EVIDENCE_INVALID, lambda s: _malformed(s, block="B")),
    case("validator-31-bytes", Result.EVIDENCE_INVALID, lambda s: _malformed(
        s, validator=pk(s.v3)[:31])),
    case("nil-proposal", Result.EVIDENCE_INVALID, lambda s: _ev_signed_elsewhere(s, _signed_raw(
        s, codec.encode([1, 5, H, 0, None, -1, pk(s.v3)]), None, Domain.PROPOSAL))),
    case("proposal-valid-round-minus-2", Result.EVIDENCE_INVALID, lambda s: _ev(
        s, proposal(s.v3, H), _signed_raw(s, codec.encode(
            [1, 5, H, 0, BLOCK_B, -2, pk(s.v3)]), None, Domain.PROPOSAL))),
    case("known", Result.EVIDENCE_KNOWN, _ev_known),
    case("known-swapped", Result.EVIDENCE_KNOWN, lambda s: _ev_known(s, swapped=True)),
    case("known-other-pair-same-slot", Result.EVIDENCE_KNOWN, lambda s: _ev_known(s, third=True)),
    case("one-block-too-old", Result.EVIDENCE_TOO_OLD, lambda s: _ev_too_old(
        s, limits.EVIDENCE_AGE_MAX_BLOCKS + 1)),
    case("far-too-old", Result.EVIDENCE_TOO_OLD, lambda s: _ev_too_old(s, 10**9)),
    case("next-height-plus-one", Result.INVALID_HEIGHT, lambda s: _ev(
        s, _pv(s, height=H + 2), _pv(s, BLOCK_B, height=H + 2))),
    case("far-future", Result.INVALID_HEIGHT, lambda s: _ev(
        s, _pv(s, height=2**40), _pv(s, BLOCK_B, height=2**40))),
]  # fmt: skip


# --- admit_issuer ----------------------------------------------------------------------------


def _admit(s: Scene, *by: Signer, issuer: Signer | None = None, **kw: object) -> bytes:
    payload = admit(issuer or s.charleroi, *(by or (s.v0, s.v1, s.v2)), **kw)  # type: ignore[arg-type]
    return s.tx(s.v0, payload)


def _admit_approvals(s: Scene, *approvals: t.Approval) -> bytes:
    return s.tx(s.v0, replace(admit(s.charleroi), approvals=approvals))


def _approval(
    s: Scene,
    v: Signer,
    payload: t.GovernancePayload | None = None,
    chain_id: str = CHAIN_ID,
    domain: Domain = Domain.GOVERNANCE,
) -> t.Approval:
    """``v``'s approval of Charleroi's admission (or of ``payload``)."""
    body = (payload or admit(s.charleroi)).approval_body()
    return t.Approval(v.public_key, v.sign(domain, chain_id, body))


def _good_approvals(s: Scene, *by: Signer) -> tuple[t.Approval, ...]:
    return tuple(_approval(s, v) for v in by)


def _flipped(a: t.Approval) -> t.Approval:
    sig = bytearray(a.signature)
    sig[3] ^= 0x40
    return t.Approval(a.validator, bytes(sig))


def _admit_zone_taken(s: Scene) -> bytes:
    s.do(s.v1, admit(s.stranger, s.v0, s.v1, s.v2, zones=("CH-2",), name="Autre"))
    return _admit(s)


ADMIT_CASES = [
    case("two-of-four", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(s, s.v0, s.v1)),
    case("one-of-four", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(s, s.v3)),
    case("no-approvals", Result.INSUFFICIENT_APPROVALS, _admit_approvals),
    case("two-plus-a-stranger", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(
        s, s.v0, s.v1, s.stranger)),
    case("three-plus-a-stranger", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(
        s, s.v0, s.v1, s.v2, s.stranger)),
    case("two-plus-a-future-validator", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(
        s, s.v0, s.v1, s.v4)),
    case("two-plus-an-issuer", Result.INSUFFICIENT_APPROVALS, lambda s: _admit(
        s, s.v0, s.v1, s.namur)),
    case("one-signature-flipped", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1), _flipped(_approval(s, s.v2)))),
    case("four-one-signature-flipped", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1, s.v2), _flipped(_approval(s, s.v3)))),
    case("approval-of-other-zones", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1),
        _approval(s, s.v2, admit(s.charleroi, zones=("CH-1",))))),
    case("approval-of-other-name", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1),
        _approval(s, s.v2, admit(s.charleroi, name="Charleroi-Sud")))),
    case("approval-of-a-validator-change", Result.INSUFFICIENT_APPROVALS, lambda s: (
        _admit_approvals(s, *_good_approvals(s, s.v0, s.v1), _approval(s, s.v2, _replace_v3(s))))),
    case("approval-for-another-chain", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1), _approval(s, s.v2, chain_id="relance-other"))),
    case("approval-in-tx-domain", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1), _approval(s, s.v2, domain=Domain.TX))),
    case("approval-in-vote-domain", Result.INSUFFICIENT_APPROVALS, lambda s: _admit_approvals(
        s, *_good_approvals(s, s.v0, s.v1), _approval(s, s.v2, domain=Domain.VOTE))),
    case("approval-signed-by-another-validator", Result.INSUFFICIENT_APPROVALS,
         lambda s: _admit_approvals(s, *_good_approvals(s, s.v0, s.v1),
                                    t.Approval(pk(s.v2), _approval(s, s.v3).signature))),
    case("same-validator-twice", Result.DUPLICATE_ENTRY, lambda s: _admit(s, s.v0, s.v0, s.v1)),
    case("four-with-one-twice", Result.DUPLICATE_ENTRY, lambda s: _admit(
        s, s.v0, s.v1, s.v2, s.v2)),
    case("zone-of-namur", Result.INVALID_ZONE, lambda s: _admit(s, zones=("NA-1",))),
    case("one-zone-of-liege", Result.INVALID_ZONE, lambda s: _admit(s, zones=("CH-1", "LG-1"))),
    case("zone-admitted-before", Result.INVALID_ZONE, _admit_zone_taken),
    case("issuer-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.namur)),
    case("other-issuer-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.liege)),
    case("bank-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.bank)),
    case("merchant-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.bakery)),
    case("auditor-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.auditor)),
    case("holder-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.alice)),
    case("bearer-voucher-key", Result.ACCOUNT_EXISTS, lambda s: _admit(s, issuer=s.voucher)),
    case("blank-name", Result.INVALID_NAME, lambda s: _admit(s, name="  ")),
    case("empty-name", Result.INVALID_NAME, lambda s: _admit(s, name="")),
    case("control-char-name", Result.INVALID_NAME, lambda s: _admit(s, name="Char\nleroi")),
    case("blank-territory", Result.INVALID_NAME, lambda s: _admit(s, territory=" ")),
    case("no-zones", Result.INVALID_FIELD, lambda s: _admit(s, zones=())),
    case("empty-zone", Result.INVALID_FIELD, lambda s: _admit(s, zones=("",))),
    case("spaced-zone", Result.INVALID_FIELD, lambda s: _admit(s, zones=("CH 1",))),
    case("dash-first-zone", Result.INVALID_FIELD, lambda s: _admit(s, zones=("-CH",))),
    case("duplicate-zone", Result.DUPLICATE_ENTRY, lambda s: _admit(
        s, zones=("CH-1", "CH-2", "CH-1"))),
    case("257-zones", Result.MALFORMED, lambda s: _admit(
        s, zones=tuple(f"CH-{n}" for n in range(limits.ZONES_PER_ISSUER_MAX + 1)))),
    case("65-approvals", Result.MALFORMED, lambda s: _admit_approvals(
        s, *(_approval(s, s.v0),) * (limits.VALIDATORS_MAX + 1))),
]  # fmt: skip


# --- change_validators ----------------------------------------------------------------------


def _change(s: Scene, by: tuple[Signer, ...] = (), **kw: object) -> bytes:
    return s.tx(s.v0, _replace_v3(s, *by, **kw))  # type: ignore[arg-type]


def _change_set(s: Scene, *entries: t.ValidatorEntry) -> bytes:
    return _change(s, entries=entries)


def _change_pending(s: Scene) -> bytes:
    s.do(s.v0, _replace_v3(s, delay=5))
    other = (entry(s.v0), entry(s.v1), entry(s.v2), entry(s.v5))
    return s.tx(s.v1, _replace_v3(s, s.v1, s.v2, s.v3, entries=other))


def _change_approvals(s: Scene, *approvals: t.Approval) -> bytes:
    return s.tx(s.v0, replace(_replace_v3(s), approvals=approvals))


CHANGE_CASES = [
    case("effective-next-block", Result.INVALID_HEIGHT, lambda s: _change(s, delay=0)),
    case("effective-one-after-next", Result.INVALID_HEIGHT, lambda s: _change(s, delay=1)),
    case("effective-in-the-past", Result.INVALID_HEIGHT, lambda s: _change(s, delay=-2)),
    case("effective-at-genesis", Result.INVALID_HEIGHT, lambda s: _change(s, delay=-H - 1)),
    case("effective-too-far", Result.INVALID_HEIGHT, lambda s: _change(
        s, delay=limits.GOVERNANCE_DELAY_MAX_BLOCKS + 1)),
    case("effective-int64-max", Result.INVALID_HEIGHT, lambda s: _change(
        s, delay=2**63 - 1 - H - 1)),
    case("second-change-while-pending", Result.VALIDATOR_CHANGE_PENDING, _change_pending),
    case("empty-set", Result.INVALID_VALIDATOR_SET, _change_set),
    case("duplicated-key", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0), entry(s.v1), entry(s.v1, name="again"))),
    case("zero-power", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0), entry(s.v1), entry(s.v2, power=0))),
    case("negative-power", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0), entry(s.v1, power=-1))),
    case("power-over-max", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0, power=limits.VALIDATOR_POWER_MAX + 1))),
    case("role-merchant", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0), entry(s.v1, role="merchant"))),
    case("role-empty", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0, role=""))),
    case("role-capitalised", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0, role="Commune"))),
    case("blank-name", Result.INVALID_VALIDATOR_SET, lambda s: _change_set(
        s, entry(s.v0, name=" "))),
    case("two-of-four", Result.INSUFFICIENT_APPROVALS, lambda s: _change(s, by=(s.v0, s.v1))),
    case("two-plus-the-newcomer", Result.INSUFFICIENT_APPROVALS, lambda s: _change(
        s, by=(s.v0, s.v1, s.v4))),
    case("one-signature-flipped", Result.INSUFFICIENT_APPROVALS, lambda s: _change_approvals(
        s, *(_approval(s, v, _replace_v3(s)) for v in (s.v0, s.v1)),
        _flipped(_approval(s, s.v2, _replace_v3(s))))),
    case("approval-of-another-height", Result.INSUFFICIENT_APPROVALS, lambda s: _change_approvals(
        s, *(_approval(s, v, _replace_v3(s)) for v in (s.v0, s.v1)),
        _approval(s, s.v2, _replace_v3(s, delay=3)))),
    case("approval-of-an-admission", Result.INSUFFICIENT_APPROVALS, lambda s: _change_approvals(
        s, *(_approval(s, v, _replace_v3(s)) for v in (s.v0, s.v1)), _approval(s, s.v2))),
    case("same-validator-twice", Result.DUPLICATE_ENTRY, lambda s: _change(
        s, by=(s.v0, s.v1, s.v1, s.v2))),
    case("65-validators", Result.MALFORMED, lambda s: _change_set(
        s, *(entry(signer(f"many{n}")) for n in range(limits.VALIDATORS_MAX + 1)))),
]  # fmt: skip


def _consent(s: Scene, *zones: str, region: Signer | None = None, by: Signer | None = None
             ) -> bytes:  # fmt: skip
    return s.tx(by or s.namur, t.ConsentZones(pk(region or s.liege), zones))


CONSENT_CASES = [
    case("to-itself", Result.SELF_TRANSFER, lambda s: _consent(s, "NA-1", region=s.namur)),
    case("to-a-stranger", Result.UNKNOWN_ISSUER, lambda s: _consent(s, "NA-1", region=s.stranger)),
    case("to-a-merchant", Result.UNKNOWN_ISSUER, lambda s: _consent(s, "NA-1", region=s.bakery)),
    case("to-the-bank", Result.UNKNOWN_ISSUER, lambda s: _consent(s, "NA-1", region=s.bank)),
    case("duplicate-zone", Result.DUPLICATE_ENTRY, lambda s: _consent(s, "NA-1", "NA-1")),
    case("zone-of-liege", Result.INVALID_ZONE, lambda s: _consent(s, "NA-1", "LG-1")),
    case("unknown-zone", Result.INVALID_ZONE, lambda s: _consent(s, "NA-9")),
]


# --- schedule_upgrade -------------------------------------------------------------------------


def _up(s: Scene, by: tuple[Signer, ...] = (), **kw: object) -> bytes:
    return s.tx(s.v0, _upgrade(s, *by, **kw))  # type: ignore[arg-type]


def _up_pending(s: Scene) -> bytes:
    s.do(s.v0, _upgrade(s, delay=5))
    return s.tx(s.v1, _upgrade(s, s.v1, s.v2, s.v3, protocol="tx2.block3"))


def _up_approvals(s: Scene, *approvals: t.Approval) -> bytes:
    return s.tx(s.v0, replace(_upgrade(s), approvals=approvals))


UPGRADE_CASES = [
    case("next-block", Result.INVALID_HEIGHT, lambda s: _up(s, delay=0)),
    case("one-after-next", Result.INVALID_HEIGHT, lambda s: _up(s, delay=1)),
    case("in-the-past", Result.INVALID_HEIGHT, lambda s: _up(s, delay=-2)),
    case("too-far", Result.INVALID_HEIGHT, lambda s: _up(
        s, delay=limits.GOVERNANCE_DELAY_MAX_BLOCKS + 1)),
    case("second-while-pending", Result.UPGRADE_PENDING, _up_pending),
    case("empty-protocol", Result.INVALID_FIELD, lambda s: _up(s, protocol="")),
    case("spaced-protocol", Result.INVALID_FIELD, lambda s: _up(s, protocol="tx2 block2")),
    case("newline-software", Result.INVALID_FIELD, lambda s: _up(s, software="0.9\n")),
    case("dash-first-software", Result.INVALID_FIELD, lambda s: _up(s, software="-0.9")),
    case("33-char-protocol", Result.MALFORMED, lambda s: _up(s, protocol="p" * 33)),
    case("two-of-four", Result.INSUFFICIENT_APPROVALS, lambda s: _up(s, by=(s.v0, s.v1))),
    case("approval-of-another-protocol", Result.INSUFFICIENT_APPROVALS, lambda s: _up_approvals(
        s, *(_approval(s, v, _upgrade(s)) for v in (s.v0, s.v1)),
        _approval(s, s.v2, _upgrade(s, protocol="tx2.block3")))),
    case("approval-of-another-release", Result.INSUFFICIENT_APPROVALS, lambda s: _up_approvals(
        s, *(_approval(s, v, _upgrade(s)) for v in (s.v0, s.v1)),
        _approval(s, s.v2, _upgrade(s, software="0.9.1")))),
    case("approval-of-another-height", Result.INSUFFICIENT_APPROVALS, lambda s: _up_approvals(
        s, *(_approval(s, v, _upgrade(s)) for v in (s.v0, s.v1)),
        _approval(s, s.v2, _upgrade(s, delay=3)))),
    case("same-validator-twice", Result.DUPLICATE_ENTRY, lambda s: _up(
        s, by=(s.v0, s.v1, s.v1, s.v2))),
]  # fmt: skip

RULE_CASES = {
    t.Kind.REGISTER_MERCHANT: REGISTER_CASES,
    t.Kind.UPDATE_MERCHANT: UPDATE_CASES,
    t.Kind.SUSPEND_MERCHANT: SUSPEND_CASES,
    t.Kind.CREATE_CAMPAIGN: CREATE_CASES,
    t.Kind.FUND: FUND_CASES,
    t.Kind.ALLOCATE: ALLOCATE_CASES,
    t.Kind.PAY: PAY_CASES,
    t.Kind.PAY_AUTHORIZED: PAY_AUTHORIZED_CASES,
    t.Kind.SWEEP: SWEEP_CASES,
    t.Kind.REFUND: REFUND_CASES,
    t.Kind.REISSUE: REISSUE_CASES,
    t.Kind.TRANSFER: TRANSFER_CASES,
    t.Kind.REDEEM: REDEEM_CASES,
    t.Kind.SETTLE: SETTLE_CASES,
    t.Kind.CLOSE_CAMPAIGN: CLOSE_CASES,
    t.Kind.WITHDRAW: WITHDRAW_CASES,
    t.Kind.EVIDENCE: EVIDENCE_CASES,
    t.Kind.ADMIT_ISSUER: ADMIT_CASES,
    t.Kind.CHANGE_VALIDATORS: CHANGE_CASES,
    t.Kind.RETURN_PAYOUT: RETURN_CASES,
    t.Kind.CONSENT_ZONES: CONSENT_CASES,
    t.Kind.SCHEDULE_UPGRADE: UPGRADE_CASES,
}
ALL_RULE_CASES = [
    pytest.param(*p.values, id=f"{kind.name.lower()}-{p.id}")
    for kind, cases in RULE_CASES.items()
    for p in cases
]


@pytest.mark.parametrize(("build", "code"), ALL_RULE_CASES)
def test_rule_rejects(scene: Scene, build: Build, code: Result) -> None:
    assert_rejected(scene.w, build(scene), code)


def test_rule_cases_cover_every_kind() -> None:
    assert set(RULE_CASES) == set(t.Kind)


# --- accepted cases, record by record ------------------------------------------------------


def test_register_merchant(scene: Scene) -> None:
    s = scene
    namur_seq = s.w.issuer(s.namur).sequence  # type: ignore[union-attr]
    applied(s, s.namur, register(s.stranger, "Fromagerie", "47.29", "NA-2", False))
    assert s.w.merchant(s.stranger) == r.Merchant(
        issuer=pk(s.namur),
        name="Fromagerie",
        category="47.29",
        zone="NA-2",
        payout_ref_hash=REF_HASH,
        auto_redeem=False,
        active=True,
        sequence=0,
        balances=(),
    )
    assert s.w.issuer(s.namur).sequence == namur_seq + 1  # type: ignore[union-attr]


def test_liege_registers_in_its_own_zone(scene: Scene) -> None:
    applied(scene, scene.liege, register(scene.stranger, "Friterie", "56.10", "LG-1", True))
    assert scene.w.merchant(scene.stranger).issuer == pk(scene.liege)  # type: ignore[union-attr]


def test_issuer_updates_every_field(scene: Scene) -> None:
    s = scene
    new_ref = digest(b"BE00 0000")
    applied(
        s, s.namur, t.UpdateMerchant(pk(s.bakery), "Lion & Fils", "47.24", "NA-2", new_ref, True)
    )
    m = s.w.merchant(s.bakery)
    assert m is not None
    assert (m.name, m.category, m.zone, m.payout_ref_hash, m.auto_redeem) == (
        "Lion & Fils", "47.24", "NA-2", new_ref, True,
    )  # fmt: skip
    assert (m.issuer, m.active, m.sequence) == (pk(s.namur), True, 0)
    assert m.balances == ((pk(s.namur), 10_00),)


def test_merchant_updates_its_payout_and_auto_redeem(scene: Scene) -> None:
    s = scene
    new_ref = digest(b"BE11 1111")
    namur_seq = s.w.issuer(s.namur).sequence  # type: ignore[union-attr]
    applied(s, s.bakery, s.update(s.bakery, payout_ref_hash=new_ref, auto_redeem=True))
    m = s.w.merchant(s.bakery)
    assert m is not None
    assert (m.payout_ref_hash, m.auto_redeem, m.sequence) == (new_ref, True, 1)
    assert m.balances == ((pk(s.namur), 10_00),)
    assert s.w.issuer(s.namur).sequence == namur_seq  # type: ignore[union-attr]
    # From now on a payment opens a payout instead of crediting units.
    pay_id = applied(s, s.alice, t.Pay(NAM, pk(s.bakery), 2_00, ""))
    assert s.w.payout(pay_id) is not None
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 10_00),)  # type: ignore[union-attr]


def test_suspend_and_reinstate(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, t.SuspendMerchant(pk(s.bakery), True))
    assert s.w.merchant(s.bakery).active is False  # type: ignore[union-attr]
    assert_rejected(s.w, _pay(s), Result.MERCHANT_SUSPENDED)
    # A suspended merchant keeps its units and may still redeem them.
    applied(s, s.bakery, t.Redeem(pk(s.namur), 10_00))
    applied(s, s.namur, t.SuspendMerchant(pk(s.bakery), False))
    assert s.w.merchant(s.bakery).active is True  # type: ignore[union-attr]
    applied(s, s.alice, t.Pay(NAM, pk(s.bakery), 1_00, ""))


def test_create_campaign(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, t.CreateCampaign(
        "NEW", "Relance été", ("NA-2", "NA-1"), ("56", "47.1"), NOW_MS, NOW_MS + 1, 1))  # fmt: skip
    assert s.w.campaign("NEW") == r.Campaign(
        issuer=pk(s.namur), name="Relance été", zones=("NA-1", "NA-2"),
        categories=("47.1", "56"), valid_from_ms=NOW_MS, valid_until_ms=NOW_MS + 1,
        max_per_holder_cents=1, closed=False, budget_cents=0, outstanding_cents=0,
        funded_cents=0, allocated_cents=0, spent_cents=0, refunded_cents=0, returned_cents=0,
        withdrawn_cents=0,
    )  # fmt: skip


def test_create_campaign_without_zones_takes_the_whole_territory(scene: Scene) -> None:
    applied(scene, scene.namur, campaign("NEW", max_cents=AMOUNT_MAX))
    c = scene.w.campaign("NEW")
    assert c is not None
    assert (c.zones, c.categories, c.max_per_holder_cents) == (("NA-1", "NA-2"), (), AMOUNT_MAX)


def test_create_campaign_with_64_categories(scene: Scene) -> None:
    categories = tuple(f"C{n}" for n in range(limits.CATEGORIES_PER_CAMPAIGN_MAX))
    applied(scene, scene.namur, campaign("NEW", categories=categories))
    assert scene.w.campaign("NEW").categories == tuple(sorted(categories))  # type: ignore[union-attr]


def test_fund(scene: Scene) -> None:
    s = scene
    before_c, before_i = s.w.campaign(LATER), s.w.issuer(s.namur)
    assert before_c is not None and before_i is not None
    applied(s, s.bank, t.Fund(LATER, AMOUNT_MAX, "DEP-BIG"))  # before the campaign opens
    c, i = s.w.campaign(LATER), s.w.issuer(s.namur)
    assert c is not None and i is not None
    assert c.budget_cents == before_c.budget_cents + AMOUNT_MAX
    assert c.funded_cents == before_c.funded_cents + AMOUNT_MAX
    assert i.escrow_cents == before_i.escrow_cents + AMOUNT_MAX
    assert s.w.counter(r.reference_key("DEP-BIG")) == AMOUNT_MAX
    assert s.w.bank_record().sequence == 5  # type: ignore[union-attr]


def test_fund_is_idempotent_on_the_bank_reference(scene: Scene) -> None:
    s = scene
    data = s.tx(s.bank, t.Fund(NAM, 100_00, "DEP-X"))
    s.apply_ok(data)
    escrow = s.w.issuer(s.namur).escrow_cents  # type: ignore[union-attr]
    assert_rejected(s.w, data, Result.BAD_SEQUENCE)  # the very same bytes
    assert_rejected(s.w, s.tx(s.bank, t.Fund(NAM, 100_00, "DEP-X")), Result.DUPLICATE_REFERENCE)
    assert_rejected(s.w, s.tx(s.bank, t.Fund(NA1, 1, "DEP-X")), Result.DUPLICATE_REFERENCE)
    assert_rejected(s.w, s.tx(s.bank, t.Withdraw(NAM, 1, "DEP-X")), Result.DUPLICATE_REFERENCE)
    assert s.w.issuer(s.namur).escrow_cents == escrow  # type: ignore[union-attr]


def test_same_reference_twice_in_one_block_rejects_the_block(scene: Scene) -> None:
    s = scene
    txs = s.w.sign_block((s.bank, t.Fund(NAM, 1_00, "DEP-X")), (s.bank, t.Fund(NA1, 1_00, "DEP-X")))
    root = s.w.root()
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.DUPLICATE_REFERENCE]
    assert s.w.root() == root


def test_fund_up_to_the_escrow_cap(scene: Scene) -> None:
    s = scene
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    s.w.seed(r.issuer_key(pk(s.namur)),
             replace(issuer, escrow_cents=limits.BALANCE_MAX_CENTS - 1_00))  # fmt: skip
    assert s.do(s.bank, t.Fund(NAM, 1_00, "DEP-LAST"))
    assert s.w.issuer(s.namur).escrow_cents == limits.BALANCE_MAX_CENTS  # type: ignore[union-attr]


def test_allocate(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, allocate(NAM, (s.stranger, 12_34, "NA-2"), (s.alice, 10_00, "NA-1")))
    assert s.w.holder(s.stranger) == r.Holder(0, ((NAM, 12_34),))
    assert s.w.holder(s.alice).balance(NAM) == NAM_MAX  # type: ignore[union-attr]
    c = s.w.campaign(NAM)
    assert c is not None
    assert (c.budget_cents, c.allocated_cents, c.outstanding_cents) == (
        900_00 - 22_34, 100_00 + 22_34, 85_00 + 22_34,
    )  # fmt: skip
    assert s.w.view.get(r.campaign_holder_key(NAM, pk(s.stranger))) is not None


def test_allocate_the_exact_budget(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, allocate(LATER, (s.stranger, 45_00, "NA-1"), (s.app, 45_00, "NA-2")))
    assert s.w.campaign(LATER).budget_cents == 0  # type: ignore[union-attr]
    assert_rejected(s.w, _alloc(s, (s.bob, 1, "NA-1"), code=LATER), Result.INSUFFICIENT_BUDGET)


def test_allocate_before_the_campaign_opens(scene: Scene) -> None:
    applied(scene, scene.namur, allocate(LATER, (scene.bob, 1_00, "NA-2")))
    assert scene.w.holder(scene.bob).balance(LATER) == 1_00  # type: ignore[union-attr]


def test_allocate_one_ms_before_the_end(scene: Scene) -> None:
    scene.w.time_ms = NAM_UNTIL_MS - 1
    applied(scene, scene.namur, allocate(NAM, (scene.stranger, 1_00, "NA-2")))


def test_allocation_batch_of_5000_holders(scene: Scene) -> None:
    s = scene
    holders = [pk(h) for h in holder_keys(limits.ALLOCATIONS_PER_TX_MAX, "batch")]
    s.do(s.bank, t.Fund(NA1, 5_000 * 10_00 - 460_00, "DEP-BATCH"))
    payload = allocate(NA1, *((h, 10_00, ("NA-1", "NA-2")[n % 2]) for n, h in enumerate(holders)))
    data = s.tx(s.namur, payload)
    assert len(data) <= limits.TX_BYTES_MAX
    applied(s, s.namur, payload)
    c = s.w.campaign(NA1)
    assert c is not None
    assert (c.budget_cents, c.outstanding_cents) == (0, 40_00 + 5_000 * 10_00)
    for h in (holders[0], holders[2_500], holders[-1]):
        assert s.w.holder(h) == r.Holder(0, ((NA1, 10_00),))
    markers = list(s.w.view.iter_prefix(r.campaign_holders_prefix(NA1)))
    assert len(markers) == 5_001
    # Closing returns every one of them to the budget.
    s.close(NA1)
    c = s.w.campaign(NA1)
    assert c is not None
    assert (c.closed, c.budget_cents, c.outstanding_cents) == (True, 40_00 + 50_000_00, 0)
    assert s.w.holder(holders[-1]) == r.Holder(0, ())
    check_invariants(s.w.view.items())


def test_pay_credits_a_merchant_without_auto_redeem(scene: Scene) -> None:
    s = scene
    applied(s, s.alice, t.Pay(NAM, pk(s.bakery), 7_50, "tarte"))
    assert s.w.holder(s.alice) == r.Holder(2, ((LATER, 10_00), (NA1, 40_00), (NAM, 32_50)))
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 17_50),)  # type: ignore[union-attr]
    assert s.w.counter(r.spent_at_key(pk(s.alice), pk(s.bakery), NAM)) == 17_50
    c = s.w.campaign(NAM)
    assert c is not None
    assert (c.spent_cents, c.outstanding_cents) == (22_50, 77_50)
    assert s.w.issuer(s.namur).pending_cents == 5_00  # type: ignore[union-attr]


def test_pay_with_auto_redeem_opens_a_payout_named_by_the_tx_id(scene: Scene) -> None:
    s = scene
    data = s.tx(s.alice, t.Pay(NAM, pk(s.grocer), 12_00, "légumes"))
    tx_id = digest(t.codec.decode(data, limits.TX_BYTES_MAX)[0])  # type: ignore[index,arg-type]
    issuer_before = s.w.issuer(s.namur)
    assert issuer_before is not None
    s.apply_ok(data)
    check_invariants(s.w.view.items())
    assert s.w.payout(tx_id) == r.Payout(pk(s.grocer), pk(s.namur), 12_00, NOW_MS, "", 0, "")
    assert s.w.merchant(s.grocer).balances == ()  # type: ignore[union-attr]
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    assert issuer.pending_cents == issuer_before.pending_cents + 12_00
    assert issuer.redeemed_cents == issuer_before.redeemed_cents + 12_00
    assert issuer.escrow_cents == issuer_before.escrow_cents
    assert s.w.counter(r.spent_at_key(pk(s.alice), pk(s.grocer), NAM)) == 12_00


def test_pay_the_whole_balance_drops_the_row(scene: Scene) -> None:
    applied(scene, scene.bob, t.Pay(NAM, pk(scene.bakery), 15_00, ""))
    assert scene.w.holder(scene.bob) == r.Holder(2, ())


@pytest.mark.parametrize(
    ("code", "time_ms"),
    [(LATER, LATER_FROM_MS), (LATER, LATER_UNTIL_MS - 1), (NAM, T0_MS), (NAM, NAM_UNTIL_MS - 1)],
    ids=["later-at-open", "later-last-ms", "nam-at-open", "nam-last-ms"],
)
def test_pay_at_the_edges_of_the_window(scene: Scene, code: str, time_ms: int) -> None:
    scene.w.time_ms = time_ms
    applied(scene, scene.alice, t.Pay(code, pk(scene.bakery), 1_00, ""))


@pytest.mark.parametrize(
    ("prefixes", "category", "eligible"),
    [
        (("47",), "47.11", True),
        (("47.1",), "47.11", True),
        (("47.11",), "47.11", True),
        (("4",), "47.11", True),
        (("47.2",), "47.11", False),
        (("47.111",), "47.11", False),
        (("56", "47"), "47.11", True),
        (("10.7", "56"), "10.71", True),
        (("1",), "47.11", False),
        ((), "96.02", True),
    ],
    ids=lambda v: "/".join(v) if isinstance(v, tuple) else str(v),
)
def test_campaign_category_rule_matches_nace_prefixes(
    scene: Scene, prefixes: tuple[str, ...], category: str, eligible: bool
) -> None:
    s = scene
    s.block(
        (s.namur, register(s.app, "Commerce", category, "NA-1", False)),
        (s.namur, campaign("CAT", categories=prefixes)),
        (s.bank, t.Fund("CAT", 10_00, "DEP-CAT")),
        (s.namur, allocate("CAT", (s.stranger, 10_00, "NA-1"))),
    )
    data = s.tx(s.stranger, t.Pay("CAT", pk(s.app), 1_00, ""))
    if eligible:
        s.apply_ok(data)
        assert s.w.merchant(s.app).balance(pk(s.namur)) == 1_00  # type: ignore[union-attr]
    else:
        assert_rejected(s.w, data, Result.MERCHANT_NOT_ELIGIBLE)


def test_pay_authorized_bound_to_the_merchant(scene: Scene) -> None:
    s = scene
    auth = s.authorization(merchant=s.bakery, max_cents=12_00, expires_ms=NOW_MS)
    alice_before = s.w.holder(s.alice)
    assert alice_before is not None
    applied(s, s.bakery, s.pay_authorized(auth, 12_00))  # exactly max, at exactly expiry
    assert s.w.holder(s.alice) == replace(
        alice_before.with_balance(NAM, 28_00), sequence=alice_before.sequence
    )
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 22_00),)  # type: ignore[union-attr]
    assert s.w.merchant(s.bakery).sequence == 1  # type: ignore[union-attr]
    assert s.w.counter(r.authorization_key(auth.authorization_id)) == NOW_MS
    assert s.w.counter(r.spent_at_key(pk(s.alice), pk(s.bakery), NAM)) == 22_00


def test_pay_authorized_for_any_merchant(scene: Scene) -> None:
    s = scene
    auth = s.authorization(holder=s.bob, max_cents=15_00)
    pay_id = applied(s, s.grocer, s.pay_authorized(auth, 15_00, signed_by=s.bob))
    assert s.w.payout(pay_id) == r.Payout(pk(s.grocer), pk(s.namur), 15_00, NOW_MS, "", 0, "")
    assert s.w.holder(s.bob) == r.Holder(1, ())
    assert_rejected(s.w, s.tx(s.bakery, s.pay_authorized(auth, 1, signed_by=s.bob)),
                    Result.AUTHORIZATION_USED)  # fmt: skip


def test_same_authorization_twice_in_one_block(scene: Scene) -> None:
    s = scene
    auth = s.authorization(max_cents=5_00)
    txs = s.w.sign_block(
        (s.bakery, s.pay_authorized(auth, 5_00)), (s.grocer, s.pay_authorized(auth, 5_00))
    )
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.AUTHORIZATION_USED]


def test_sweep_moves_the_whole_voucher_to_an_app_key(scene: Scene) -> None:
    s = scene
    c_before = s.w.campaign(NAM)
    applied(s, s.voucher, t.Sweep(NAM, pk(s.app)))
    assert s.w.holder(s.voucher) == r.Holder(1, ())
    assert s.w.holder(s.app) == r.Holder(0, ((NAM, 30_00),))
    assert s.w.campaign(NAM) == c_before
    assert s.w.view.get(r.campaign_holder_key(NAM, pk(s.app))) is not None


def test_sweep_into_a_key_that_already_holds(scene: Scene) -> None:
    s = scene
    s.do(s.namur, allocate(NAM, (s.app, 20_00, "NA-2")))
    applied(s, s.voucher, t.Sweep(NAM, pk(s.app)))  # 20 + 30 = exactly the cap
    assert s.w.holder(s.app) == r.Holder(0, ((NAM, NAM_MAX),))


def test_sweep_of_an_expired_but_open_campaign(scene: Scene) -> None:
    scene.w.time_ms = NAM_UNTIL_MS + 1
    applied(scene, scene.voucher, t.Sweep(NAM, pk(scene.app)))


def test_refund(scene: Scene) -> None:
    s = scene
    c_before = s.w.campaign(NAM)
    assert c_before is not None
    applied(s, s.bakery, t.Refund(pk(s.alice), NAM, 4_00, "retour"))
    assert s.w.holder(s.alice).balance(NAM) == 44_00  # type: ignore[union-attr]
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 6_00),)  # type: ignore[union-attr]
    assert s.w.counter(r.spent_at_key(pk(s.alice), pk(s.bakery), NAM)) == 6_00
    c = s.w.campaign(NAM)
    assert c is not None
    assert c.refunded_cents == 4_00
    assert c.outstanding_cents == c_before.outstanding_cents + 4_00
    # The rest, exactly: the spent-at row goes.
    applied(s, s.bakery, t.Refund(pk(s.alice), NAM, 6_00, "solde"))
    assert s.w.view.get(r.spent_at_key(pk(s.alice), pk(s.bakery), NAM)) is None
    assert_rejected(s.w, _refund(s, 1), Result.REFUND_EXCEEDS_PAYMENTS)


def test_refund_of_an_authorized_payment(scene: Scene) -> None:
    s = scene
    s.do(s.bakery, s.pay_authorized(s.authorization(holder=s.bob), 3_00, signed_by=s.bob))
    applied(s, s.bakery, t.Refund(pk(s.bob), NAM, 3_00, ""))
    assert s.w.holder(s.bob).balance(NAM) == 15_00  # type: ignore[union-attr]


def test_refund_after_the_campaign_ended_but_before_close(scene: Scene) -> None:
    scene.w.time_ms = NAM_UNTIL_MS + 1
    applied(scene, scene.bakery, t.Refund(pk(scene.alice), NAM, 10_00, ""))


def test_refund_cannot_push_a_holder_past_the_row_limit(scene: Scene) -> None:
    """BALANCE_ROWS_PER_ACCOUNT_MAX caps the campaigns a holder key holds at once.

    ``allocate``, ``sweep`` and ``reissue`` refuse a 65th row with LIMIT_EXCEEDED;
    a refund into a campaign the holder had spent down to zero must too.
    """
    s = scene
    full = s.full_holder()
    s.do(full, t.Pay("K00", pk(s.bakery), 1, ""))  # K00 row gone: 63 rows
    s.do(s.namur, allocate(NAM, (full, 1_00, "NA-1")))  # 64 rows again
    assert len(s.w.holder(full).balances) == limits.BALANCE_ROWS_PER_ACCOUNT_MAX  # type: ignore[union-attr]
    assert_rejected(s.w, s.tx(s.bakery, t.Refund(pk(full), "K00", 1, "")), Result.LIMIT_EXCEEDED)


def test_reissue_moves_the_whole_remaining_balance(scene: Scene) -> None:
    s = scene
    s.do(s.voucher, t.Pay(NAM, pk(s.bakery), 7_00, ""))
    applied(s, s.namur, t.Reissue(NAM, pk(s.voucher), pk(s.app)))
    assert s.w.holder(s.voucher) == r.Holder(1, ())
    assert s.w.holder(s.app) == r.Holder(0, ((NAM, 23_00),))
    assert s.w.holder(s.voucher).sequence == 1  # type: ignore[union-attr]


def test_reissue_moves_only_the_named_campaign(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, t.Reissue(NA1, pk(s.alice), pk(s.app)))
    assert s.w.holder(s.alice) == r.Holder(1, ((LATER, 10_00), (NAM, 40_00)))
    assert s.w.holder(s.app) == r.Holder(0, ((NA1, 40_00),))


def test_transfer_between_merchants(scene: Scene) -> None:
    s = scene
    applied(s, s.bakery, t.Transfer(pk(s.supplier), pk(s.namur), 10_00, "farine"))
    assert s.w.merchant(s.bakery).balances == ()  # type: ignore[union-attr]
    assert s.w.merchant(s.supplier).balances == ((pk(s.namur), 10_00),)  # type: ignore[union-attr]
    # Across issuers too: Liège's units at a Namur merchant.
    applied(s, s.liege_shop, t.Transfer(pk(s.supplier), pk(s.liege), 15_00, ""))
    assert dict(s.w.merchant(s.supplier).balances) == {  # type: ignore[union-attr]
        pk(s.namur): 10_00, pk(s.liege): 15_00,
    }  # fmt: skip
    # And the supplier redeems them.
    payout_id = applied(s, s.supplier, t.Redeem(pk(s.liege), 15_00))
    assert s.w.payout(payout_id) == r.Payout(pk(s.supplier), pk(s.liege), 15_00, NOW_MS, "", 0, "")


def test_transfer_to_an_auto_redeem_merchant_credits_units(scene: Scene) -> None:
    applied(scene, scene.bakery, t.Transfer(pk(scene.grocer), pk(scene.namur), 1_00, ""))
    assert scene.w.merchant(scene.grocer).balances == ((pk(scene.namur), 1_00),)  # type: ignore[union-attr]


def test_redeem(scene: Scene) -> None:
    s = scene
    issuer_before = s.w.issuer(s.namur)
    assert issuer_before is not None
    payout_id = applied(s, s.bakery, t.Redeem(pk(s.namur), 6_00))
    assert s.w.payout(payout_id) == r.Payout(pk(s.bakery), pk(s.namur), 6_00, NOW_MS, "", 0, "")
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 4_00),)  # type: ignore[union-attr]
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    assert issuer.pending_cents == issuer_before.pending_cents + 6_00
    assert issuer.escrow_cents == issuer_before.escrow_cents


def test_settle_exactly_once(scene: Scene) -> None:
    s = scene
    redeem_id = s.do(s.bakery, t.Redeem(pk(s.namur), 10_00))
    s.w.time_ms = NOW_MS + 5
    before = s.w.issuer(s.namur)
    assert before is not None
    applied(s, s.bank, t.Settle((t.Settlement(s.bob_payout, "VIR-1"),
                                 t.Settlement(redeem_id, "VIR-2"))))  # fmt: skip
    assert s.w.payout(s.bob_payout) == r.Payout(
        pk(s.grocer), pk(s.namur), 5_00, NOW_MS, "VIR-1", NOW_MS + 5, ""
    )
    assert s.w.payout(redeem_id).bank_reference == "VIR-2"  # type: ignore[union-attr]
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    assert issuer.escrow_cents == before.escrow_cents - 15_00
    assert issuer.pending_cents == before.pending_cents - 15_00 == 0
    assert issuer.settled_cents == before.settled_cents + 15_00
    for payout in (s.bob_payout, redeem_id):
        assert_rejected(s.w, _settle(s, (payout, "VIR-9")), Result.PAYOUT_ALREADY_SETTLED)


def test_return_payout_credits_the_merchant_once(scene: Scene) -> None:
    s = scene
    redeem_id = s.do(s.bakery, t.Redeem(pk(s.namur), 6_00))
    before, bakery_before = s.w.issuer(s.namur), s.w.merchant(s.bakery)
    assert before is not None and bakery_before is not None
    assert bakery_before.balances == ((pk(s.namur), 4_00),)
    applied(s, s.bank, t.ReturnPayout(redeem_id, "AC04", "RLF1T1"))
    assert s.w.payout(redeem_id) == r.Payout(pk(s.bakery), pk(s.namur), 6_00, NOW_MS, "", 0, "AC04")
    assert s.w.payout(redeem_id).returned  # type: ignore[union-attr]
    assert not s.w.payout(redeem_id).settled  # type: ignore[union-attr]
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 10_00),)  # type: ignore[union-attr]
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    assert issuer.escrow_cents == before.escrow_cents
    assert issuer.pending_cents == before.pending_cents - 6_00
    assert issuer.redeemed_cents == before.redeemed_cents - 6_00
    assert issuer.settled_cents == before.settled_cents
    # An auto-redeem payout opens a balance row for a merchant that held none.
    assert s.w.merchant(s.grocer).balances == ()  # type: ignore[union-attr]
    applied(s, s.bank, t.ReturnPayout(s.bob_payout, "AC01", "RLF1T2"))
    assert s.w.merchant(s.grocer).balances == ((pk(s.namur), 5_00),)  # type: ignore[union-attr]
    assert s.w.issuer(s.namur).pending_cents == 0  # type: ignore[union-attr]
    # Closed for good: neither settled nor returned again; the units can be redeemed anew.
    for payout in (s.bob_payout, redeem_id):
        assert_rejected(s.w, _settle(s, (payout, "VIR-9")), Result.PAYOUT_RETURNED)
        assert_rejected(s.w, _return(s, payout, ref="RLF9T9"), Result.PAYOUT_RETURNED)
    again = applied(s, s.bakery, t.Redeem(pk(s.namur), 10_00))
    applied(s, s.bank, t.Settle((t.Settlement(again, "VIR-10"),)))
    assert s.w.issuer(s.namur).settled_cents == before.settled_cents + 10_00  # type: ignore[union-attr]


def test_close_campaign_returns_every_unspent_holder_balance(scene: Scene) -> None:
    s = scene
    s.w.time_ms = NAM_UNTIL_MS
    alice_before = s.w.holder(s.alice)
    assert alice_before is not None
    applied(s, s.namur, t.CloseCampaign(NAM))
    c = s.w.campaign(NAM)
    assert c is not None
    assert (c.closed, c.outstanding_cents, c.budget_cents, c.returned_cents) == (
        True, 0, 900_00 + 85_00, 85_00,
    )  # fmt: skip
    assert s.w.holder(s.alice) == r.Holder(alice_before.sequence, ((LATER, 10_00), (NA1, 40_00)))
    assert s.w.holder(s.bob) == r.Holder(1, ())
    assert s.w.holder(s.voucher) == r.Holder(0, ())
    assert list(s.w.view.iter_prefix(r.campaign_holders_prefix(NAM))) == []
    # Merchant units and payouts are not the campaign's: they stay.
    assert s.w.merchant(s.bakery).balances == ((pk(s.namur), 10_00),)  # type: ignore[union-attr]
    assert s.w.payout(s.bob_payout) is not None
    # Liège's campaign is untouched.
    assert s.w.holder(s.dora).balance(LG) == 45_00  # type: ignore[union-attr]


def test_close_a_campaign_nobody_holds(scene: Scene) -> None:
    s = scene
    s.do(s.namur, campaign("EMPTY", valid_until_ms=NOW_MS + 1))
    s.w.time_ms = NOW_MS + 1
    applied(s, s.namur, t.CloseCampaign("EMPTY"))
    assert s.w.campaign("EMPTY").closed is True  # type: ignore[union-attr]


def test_withdraw_returns_unallocated_budget_only(scene: Scene) -> None:
    s = scene
    before = s.w.issuer(s.namur)
    assert before is not None
    applied(s, s.bank, t.Withdraw(NAM, 900_00, "RET-1"))
    c = s.w.campaign(NAM)
    assert c is not None
    assert (c.budget_cents, c.withdrawn_cents) == (0, 900_00)
    assert s.w.issuer(s.namur).escrow_cents == before.escrow_cents - 900_00  # type: ignore[union-attr]
    assert s.w.counter(r.reference_key("RET-1")) == 900_00
    assert_rejected(s.w, _withdraw(s, 1, ref="RET-2"), Result.INSUFFICIENT_BUDGET)


def test_full_life_of_a_campaign_ends_with_empty_escrow(scene: Scene) -> None:
    s = scene
    # Spend, refund, transfer, redeem, settle every payout, close, withdraw the rest.
    s.do(s.bakery, t.Refund(pk(s.alice), NAM, 2_00, ""))
    s.do(s.bakery, t.Transfer(pk(s.supplier), pk(s.namur), 3_00, ""))
    p1 = s.do(s.bakery, t.Redeem(pk(s.namur), 5_00))
    p2 = s.do(s.supplier, t.Redeem(pk(s.namur), 3_00))
    s.do(s.bank, t.Settle(tuple(t.Settlement(p, f"VIR-{n}")
                                for n, p in enumerate((p1, p2, s.bob_payout)))))  # fmt: skip
    for code in (NAM, NA1, LATER):
        s.close(code)
        budget = s.w.campaign(code).budget_cents  # type: ignore[union-attr]
        applied(s, s.bank, t.Withdraw(code, budget, f"RET-{code}"))
    issuer = s.w.issuer(s.namur)
    assert issuer is not None
    assert (issuer.escrow_cents, issuer.pending_cents) == (0, 0)
    assert issuer.settled_cents == 5_00 + 5_00 + 3_00
    check_invariants(s.w.view.items())
